"""Dataset formats: each adapter finds its files in an extracted folder and reads them raw.

Adapters return string columns only (see `base.RAW_INTERACTION_COLUMNS`); validation, casting
and rejects happen once, for every format, in `musicrec.prepare`.
"""

from __future__ import annotations

from pathlib import Path

from musicrec.datasets.base import DatasetFormat
from musicrec.datasets.generic import generic_format
from musicrec.datasets.lastfm import LASTFM_360K, LASTFM_HETREC
from musicrec.datasets.listenbrainz import LISTENBRAINZ
from musicrec.datasets.movielens import MOVIELENS_100K, MOVIELENS_CSV, MOVIELENS_DAT
from musicrec.errors import PipelineError

# Detection order: the first whose files are present wins. ListenBrainz comes last: its `.json`
# files are recognised by their first line, but a known layout's fixed file names are surer.
FORMATS: dict[str, DatasetFormat] = {
    fmt.name: fmt for fmt in (LASTFM_360K, LASTFM_HETREC, MOVIELENS_100K, MOVIELENS_DAT, MOVIELENS_CSV, LISTENBRAINZ)
}
FORMAT_NAMES = ("auto", "generic", *FORMATS)


def detect_format(folder: Path, forced: str | None = None, options: dict | None = None) -> tuple[DatasetFormat, Path]:
    """Return the dataset's format and the folder that holds its files.

    A `column_mapping` (options) selects the generic format; otherwise the files decide, unless
    `forced` names a format.
    """
    options = options or {}
    if forced == "generic" or (options and forced in (None, "", "auto")):
        if not options:
            raise PipelineError("dataset_format 'generic' needs a column_mapping param (see README)")
        candidates = [generic_format(options)]
    elif forced and forced != "auto":
        if forced not in FORMATS:
            raise PipelineError(f"unknown dataset_format {forced!r}; choose one of {list(FORMAT_NAMES)}")
        candidates = [FORMATS[forced]]
    else:
        candidates = list(FORMATS.values())
    for fmt in candidates:
        base = fmt.locate(folder, options)
        if base is not None:
            return fmt, base
    listing = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())[:20]
    wanted = f"the files of {candidates[0].name}" if len(candidates) == 1 else f"a known layout ({', '.join(FORMATS)})"
    raise PipelineError(
        f"{folder} does not hold {wanted}; it has: {listing}. Point dataset_url at a supported "
        "dataset, set dataset_format, or describe your files with column_mapping."
    )
