"""The benchmark harness at a tiny generated size: the real sizes (1m, 5m, 25m) are run by hand
with `make bench SIZE=...`; this checks that the harness still produces what they rely on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import ROOT

pytestmark = pytest.mark.e2e


def test_bench_harness_on_a_tiny_generated_dataset(tmp_path, monkeypatch):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_bench.py"), "--sizes", "20k", "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (record,) = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert record["state"] == "success" and record["dataset"] == "gen-20k" and record["interactions"] == 20_000
    assert set(record["task_seconds"]) == {"download", "extract", "preprocess", "train", "evaluate", "recommend"}
    # Each Spark step's driver JVM was seen and measured (a few hundred MB each).
    assert {"preprocess", "train", "evaluate", "recommend"} <= set(record["driver_peak_rss_mb"])
    assert all(100 < mb < 8192 for mb in record["driver_peak_rss_mb"].values())
    single = record["single_script"]
    assert 0 < single["rmse_value"] < 2 and single["wall_seconds"] > single["read_and_fit"] > 0
    assert record["trivial_submit_seconds"] > 0 and record["trivial_tuned_seconds"] > 0
    users = record["rows"]["recommend"][0]
    assert record["rows"]["recommend"][1] == 10 * users  # top 10 for every user
    # Spark's top-N and the project's, on the DAG's own model: every user, 10 songs each (fewer
    # once Spark's lists lose the songs users already have).
    baselines = record["recommend_baselines"]
    assert baselines["top_n_unseen"]["rows"] == baselines["recommendForAllUsers"]["rows"] == 10 * users
    assert baselines["top_n_unseen_in_files"]["rows"] == 10 * users
    assert baselines["recommendForAllUsers_unseen"]["mean_list_length"] < 10
    assert all(variant["seconds"] > 0 for variant in baselines.values())
    table = (tmp_path / "latest.md").read_text()
    assert "| gen-20k | 20000 |" in table and "DAG / single" in table and "recommendForAllUsers" in table
