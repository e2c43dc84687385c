"""Regenerate the embedded sample dataset (deterministic): python scripts/make_sample.py"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spark_jobs"))

from musicrec import sample  # noqa: E402
from musicrec.sources import SAMPLE_ARCHIVE  # noqa: E402

SAMPLE_ARCHIVE.write_bytes(sample.build_zip())
print(f"wrote {SAMPLE_ARCHIVE} ({SAMPLE_ARCHIVE.stat().st_size} bytes)")
