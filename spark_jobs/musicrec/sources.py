"""Where a run's data comes from: a URL, or the sample embedded in this package."""

from __future__ import annotations

from pathlib import Path

SAMPLE_ARCHIVE = Path(__file__).resolve().parent / "sample_data" / "music-sample.zip"


def resolve_dataset_url(url: str | None) -> str:
    """An empty dataset_url means the embedded sample."""
    url = (url or "").strip()
    return url or SAMPLE_ARCHIVE.as_uri()
