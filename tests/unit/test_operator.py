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


@pytest.fixture
def fake_submit(tmp_path, monkeypatch):
    """The operator with spark-submit replaced: `job_does(result_file)` plays the job's part."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from musicrec_operators import SparkJobOperator

    monkeypatch.setenv("MUSICREC_DATA_ROOT", str(tmp_path))
    context = {"run_id": "manual__r1", "logical_date": datetime(2026, 3, 2, tzinfo=timezone.utc), "dag_run": None}
    result_file = tmp_path / "runs" / "manual__r1" / "results" / "extract.json"

    def run(job_does):
        def submit(self, ctx):
            job_does(result_file)

        monkeypatch.setattr(SparkSubmitOperator, "execute", submit)
        return SparkJobOperator(task_id="extract", job="extract", job_args={"archive": "/a.zip"}).execute(context)

    return run, result_file


def _fails_with(record):
    from airflow.sdk.exceptions import AirflowException

    def job(result_file):
        result_file.parent.mkdir(parents=True, exist_ok=True)
        if record is not None:
            result_file.write_text(record)
        raise AirflowException("Cannot execute: spark-submit ... Error code is: 2.")

    return job


def test_bad_input_fails_at_once_with_the_jobs_message(fake_submit):
    from airflow.sdk.exceptions import AirflowFailException

    run, _ = fake_submit
    with pytest.raises(AirflowFailException, match="extract failed: archive.zip is corrupt"):
        run(_fails_with('{"step": "extract", "error": "archive.zip is corrupt", "retryable": false}'))


@pytest.mark.parametrize(
    "record, says",
    [
        ('{"step": "extract", "error": "disk full", "retryable": true}', "extract failed: disk full"),
        (None, "Error code is: 2"),  # crashed before writing anything: unexpected
        ('{"step": "extract", "err', "result file .* is unreadable"),  # killed while writing it
    ],
)
def test_transient_unexpected_and_unreadable_failures_stay_retryable(fake_submit, record, says):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    run, _ = fake_submit
    with pytest.raises(AirflowException, match=says) as raised:
        run(_fails_with(record))
    assert not isinstance(raised.value, AirflowFailException)


def test_a_previous_tries_result_is_never_returned(fake_submit):
    run, result_file = fake_submit
    result_file.parent.mkdir(parents=True)
    result_file.write_text('{"step": "extract", "dataset_dir": "/stale", "file_count": 1, "job_seconds": 1, "session_seconds": 0}')
    with pytest.raises(FileNotFoundError):  # spark-submit "succeeded" but this try wrote nothing
        run(lambda result_file: None)
    fresh = '{"step": "extract", "dataset_dir": "/fresh", "file_count": 2, "job_seconds": 1, "session_seconds": 0}'
    assert run(lambda result_file: result_file.write_text(fresh))["dataset_dir"] == "/fresh"


def test_spark_settings_follow_the_data_size(monkeypatch):
    from musicrec import spark_config as S

    for name in (S.DRIVER_JAVA_OPTIONS_ENV, S.DRIVER_MEMORY_ENV, S.SHUFFLE_PARTITIONS_ENV, S.EXTRA_CONF_ENV):
        monkeypatch.delenv(name, raising=False)
    assert S.sized_conf(None) == {}
    small = S.sized_conf(S.SMALL_DATA_ROWS - 1)  # SPARK_CONF's C1-only JIT stays; no AQE, few partitions, small pages
    assert small == {"spark.sql.adaptive.enabled": "false", "spark.sql.shuffle.partitions": str(S.SMALL_DATA_PARTITIONS),
                     "spark.buffer.pageSize": S.SMALL_DATA_PAGE_SIZE}
    mid = S.sized_conf(S.SMALL_DATA_ROWS)
    assert mid["spark.driver.extraJavaOptions"].startswith(S.SERIAL_GC) and S.C1_ONLY not in mid["spark.driver.extraJavaOptions"]
    assert "spark.driver.memory" not in mid and "spark.sql.adaptive.enabled" not in mid and "spark.buffer.pageSize" not in mid
    large = S.sized_conf(S.LARGE_DATA_ROWS)
    assert large["spark.driver.memory"] == S.LARGE_DRIVER_MEMORY
    assert large["spark.driver.extraJavaOptions"].startswith(S.PARALLEL_GC) and S.SERIAL_GC not in large["spark.driver.extraJavaOptions"]
    assert S.sized_conf(S.LARGE_DATA_ROWS - 1)["spark.driver.extraJavaOptions"].startswith(S.SERIAL_GC)
    # What the user fixed wins over the size.
    monkeypatch.setenv(S.DRIVER_JAVA_OPTIONS_ENV, "-XX:+UseG1GC")
    monkeypatch.setenv(S.EXTRA_CONF_ENV, '{"spark.driver.memory": "12g"}')
    assert S.sized_conf(S.LARGE_DATA_ROWS) == {}
    monkeypatch.setenv(S.SHUFFLE_PARTITIONS_ENV, "64")
    assert S.sized_conf(10) == {"spark.sql.adaptive.enabled": "false", "spark.buffer.pageSize": S.SMALL_DATA_PAGE_SIZE}
    assert S.estimated_rows(25 * 1000) == 1000


def test_the_operator_submits_with_the_settings_of_the_rendered_row_count(tmp_path, monkeypatch):
    from musicrec import spark_config as S
    from musicrec_operators import SparkJobOperator, rows_of

    for name in (S.DRIVER_JAVA_OPTIONS_ENV, S.DRIVER_MEMORY_ENV, S.SHUFFLE_PARTITIONS_ENV, S.EXTRA_CONF_ENV):
        monkeypatch.delenv(name, raising=False)
    assert rows_of("1200000") == 1_200_000 and rows_of(" 5e6 ") == 5_000_000 and rows_of("None") is None and rows_of(None) is None
    monkeypatch.setenv("MUSICREC_DATA_ROOT", str(tmp_path))
    submitted = {}
    monkeypatch.setattr(type(SparkJobOperator(task_id="t", job="train")).__mro__[1], "execute",
                        lambda self, context: submitted.update(self.conf))
    context = {"run_id": "manual__r1", "logical_date": datetime(2026, 3, 2, tzinfo=timezone.utc), "dag_run": None}
    for rows, c1_only, memory in (("57000", True, S.SPARK_CONF["spark.driver.memory"]), ("25000000", False, S.LARGE_DRIVER_MEMORY)):
        submitted.clear()
        with pytest.raises(Exception):  # no result file: spark-submit never ran
            SparkJobOperator(task_id="train", job="train", data_rows=rows).execute(context)
        assert (S.C1_ONLY in submitted["spark.driver.extraJavaOptions"]) is c1_only, (rows, submitted)
        assert submitted["spark.driver.memory"] == memory
