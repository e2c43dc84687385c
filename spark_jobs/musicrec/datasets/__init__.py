"""Dataset formats: each adapter finds its files in an extracted folder and reads them raw.

Adapters return string columns only (see `base.RawDataset`); validation, casting and rejects
happen once, for every format, in `musicrec.prepare`.
"""

from __future__ import annotations

from pathlib import Path

from musicrec.datasets.base import DatasetFormat
from musicrec.datasets.movielens import MOVIELENS_CSV
from musicrec.errors import PipelineError

FORMATS: dict[str, DatasetFormat] = {fmt.name: fmt for fmt in (MOVIELENS_CSV,)}


def detect_format(folder: Path, forced: str | None = None) -> tuple[DatasetFormat, Path]:
    """Return the dataset's format and the folder that holds its files."""
    if forced and forced != "auto":
        if forced not in FORMATS:
            raise PipelineError(f"unknown dataset_format {forced!r}; choose one of {sorted(FORMATS)} or 'auto'")
        base = FORMATS[forced].locate(folder)
        if base is None:
            raise PipelineError(f"dataset_format {forced!r} was forced, but {folder} has none of its files")
        return FORMATS[forced], base
    for fmt in FORMATS.values():
        base = fmt.locate(folder)
        if base is not None:
            return fmt, base
    listing = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())[:20]
    raise PipelineError(
        f"no known dataset layout in {folder} (files: {listing}); known formats: {sorted(FORMATS)}. "
        "Point dataset_url at one of them, or set dataset_format."
    )
