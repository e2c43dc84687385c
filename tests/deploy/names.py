"""Names the deployment tests share (imported as `names`, never from `conftest`: every conftest.py
in the tree claims that module name)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
DAG_ID = "music_recommendation"
POOL = "musicrec_spark"
SAMPLE = ROOT / "spark_jobs" / "musicrec" / "sample_data" / "music-sample.zip"
BACKFILL_DAYS = ("2026-03-01", "2026-03-02", "2026-03-03")
