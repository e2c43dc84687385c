"""The operator's small pieces: the run's date, the failure line, Spark settings from the env."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from musicrec.spark_config import extra_conf


def test_run_date_is_the_logical_date_or_else_run_after():
    from musicrec_operators import run_date

    logical = datetime(2026, 3, 1, tzinfo=timezone.utc)
    after = datetime(2026, 11, 25, 8, 30, tzinfo=timezone.utc)
    assert run_date({"logical_date": logical, "dag_run": SimpleNamespace(run_after=after)}) == logical
    assert run_date({"logical_date": None, "dag_run": SimpleNamespace(run_after=after)}) == after


def test_failure_callback_logs_one_line_with_task_run_error_and_log(caplog):
    from musicrec_operators import log_task_failure

    ti = SimpleNamespace(dag_id="music_recommendation", task_id="train", run_id="scheduled__2026-03-01",
                         try_number=2, log_url="http://airflow/dags/x/runs/y/tasks/train")
    error = RuntimeError("train failed:\n  Java heap space " + "x" * 1000)
    with caplog.at_level(logging.ERROR, logger="musicrec"):
        log_task_failure({"ti": ti, "exception": error})
    (record,) = caplog.records
    line = record.getMessage()
    assert "\n" not in line and len(line) < 600
    for part in ("task=train", "run=scheduled__2026-03-01", "try=2", "error=train failed: Java heap space",
                 "log=http://airflow/dags/x/runs/y/tasks/train"):
        assert part in line, line


def test_extra_spark_conf_from_the_environment():
    assert extra_conf("") == {} and extra_conf(None) == {}
    assert extra_conf('{"spark.driver.host": "10.0.0.5", "spark.executor.cores": 2}') == {
        "spark.driver.host": "10.0.0.5", "spark.executor.cores": "2",
    }
    with pytest.raises(ValueError, match="not valid JSON"):
        extra_conf("spark.driver.host=x")
    with pytest.raises(ValueError, match='"spark.\\*" settings'):
        extra_conf('{"driver.host": "x"}')


def test_every_job_gets_the_run_id_and_logical_date(tmp_path, monkeypatch):
    """What the operator hands spark-submit, without running it."""
    from musicrec_operators import SparkJobOperator

    monkeypatch.setenv("MUSICREC_DATA_ROOT", str(tmp_path))
    op = SparkJobOperator(task_id="extract", job="extract", job_args={"archive": "/a.zip"})
    captured = {}
    monkeypatch.setattr(type(op).__mro__[1], "execute", lambda self, context: captured.update(args=self.application_args))
    context = {"run_id": "backfill__2026-03-02T00:00:00+00:00", "logical_date": datetime(2026, 3, 2, tzinfo=timezone.utc),
               "dag_run": SimpleNamespace(run_after=None)}
    with pytest.raises(Exception):  # no result file: spark-submit never ran
        op.execute(context)
    args = captured["args"]
    assert args[args.index("--run-id") + 1] == "backfill__2026-03-02T00:00:00+00:00"
    assert args[args.index("--logical-date") + 1] == "2026-03-02T00:00:00+00:00"
    assert args[args.index("--archive") + 1] == "/a.zip"
