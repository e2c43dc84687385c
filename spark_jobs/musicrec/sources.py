"""Where a run's data comes from: a URL, or the sample embedded in this package.

A URL may name the run's logical date, so that each nightly run and each backfilled date reads
its own snapshot: `https://example.org/plays-{{ ds }}.zip` or `.../{{ ds_nodash }}/plays.zip`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from musicrec.errors import PipelineError

SAMPLE_ARCHIVE = Path(__file__).resolve().parent / "sample_data" / "music-sample.zip"
DATE_VARIABLES = ("ds", "ds_nodash")


def resolve_dataset_url(url: str | None, logical_date: str | None = None) -> str:
    """An empty dataset_url means the embedded sample; `{{ ds }}` / `{{ ds_nodash }}` become the date."""
    url = (url or "").strip()
    if not url:
        return SAMPLE_ARCHIVE.as_uri()
    if "{{" not in url and "{%" not in url:
        return url
    return render_dated_url(url, logical_date)


def render_dated_url(url: str, logical_date: str | None) -> str:
    """Render a URL template with the run's logical date (Jinja, only DATE_VARIABLES known)."""
    from jinja2 import StrictUndefined, TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    if not logical_date:
        raise PipelineError(f"dataset_url {url!r} names a date, but this run has no logical date")
    day = datetime.fromisoformat(logical_date).date()
    values = {"ds": day.isoformat(), "ds_nodash": day.strftime("%Y%m%d")}
    try:
        return SandboxedEnvironment(undefined=StrictUndefined).from_string(url).render(values)
    except TemplateError as error:
        raise PipelineError(
            f"dataset_url {url!r} is not a valid template ({error}); it may use only "
            + ", ".join("{{ %s }}" % name for name in DATE_VARIABLES)
        ) from None
