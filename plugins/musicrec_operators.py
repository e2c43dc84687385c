"""SparkJobOperator: submit one spark_jobs/<job>.py with spark-submit and return its result.

A thin subclass of the provider's SparkSubmitOperator that adds what the pipeline needs:
  - the job's common arguments (run folder, result file) and its own, from a templated dict;
  - the shared library `musicrec`, zipped and shipped with `--py-files` so a cluster runs the
    same code;
  - the job's result JSON (the XCom contract in musicrec.result) returned as the task's XCom;
  - a bad-input failure raised with the job's own message and no retry (the same input fails
    the same way); unexpected failures stay retryable;
  - the run's ID and logical date passed to every job (dated snapshots, publication order);
  - for a task with Asset outlets (recommend): the publication's facts as the asset event's
    metadata, and "skipped" when a newer date was already published (no asset event then).
The master, deploy mode and queue come from the `spark_default` connection, as usual.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

JOBS_DIR = Path(__file__).resolve().parents[1] / "spark_jobs"
if str(JOBS_DIR) not in sys.path:  # the library the jobs share; no Spark is imported by this
    sys.path.insert(0, str(JOBS_DIR))

from musicrec import history, paths, result  # noqa: E402
from musicrec.datasets import FORMAT_NAMES  # noqa: E402,F401  (the DAG's dataset_format choices)
from musicrec.errors import PipelineError, TransientError  # noqa: E402
from musicrec.evaluation import MIN_RANKING_USERS, RANKING_USERS  # noqa: E402,F401  (the DAG's ranking_users param)
from musicrec.model import AlsParams  # noqa: E402
from musicrec.spark_config import SPARK_CONF, sized_conf  # noqa: E402
from musicrec.splits import DEFAULT_SPLIT, SPLITS  # noqa: E402,F401  (the DAG's split choices)

DAG_ID = "music_recommendation"  # the DAG file's id; the report plugin serves only its runs
ALS_DEFAULTS = AlsParams()  # the DAG's param defaults
SPARK_POOL = "musicrec_spark"  # created by `airflow pools set` (docker-compose's airflow-init, README)
PUBLISHED_CSV_URI = (paths.published_dir(paths.data_root()) / paths.RECOMMENDATIONS_FILE).as_uri()
SPARK_SUBMIT_ENV = "MUSICREC_SPARK_SUBMIT"  # path of spark-submit; default: the pyspark package's
PYSPARK_PYTHON_ENV = "MUSICREC_PYSPARK_PYTHON"  # python for driver and executors; default: Airflow's


def upstream(task_id: str, key: str) -> str:
    """A template for one key of an upstream task's result, e.g. upstream("download", "archive_path")."""
    return "{{ ti.xcom_pull(task_ids='%s')['%s'] }}" % (task_id, key)


def upstream_if_any(task_id: str, key: str) -> str:
    """`upstream`, rendered empty when the task's result lacks the key (a result of older code): the
    job then says what to do, where a missing key would fail the rendering with Jinja's message.
    A task with no result at all still fails the rendering, as with `upstream`."""
    return "{{ ti.xcom_pull(task_ids='%s').get('%s', '') }}" % (task_id, key)


def upstream_result(task_id: str) -> str:
    """A template for an upstream task's whole result as JSON (for a job's report and history)."""
    return "{{ ti.xcom_pull(task_ids='%s') | tojson }}" % task_id


def default_spark_submit() -> str:
    """The spark-submit inside the installed pyspark package: it finds its own SPARK_HOME."""
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise AirflowFailException(f"pyspark is not installed; install requirements.txt or set {SPARK_SUBMIT_ENV}")
    return str(Path(spec.submodule_search_locations[0]) / "bin" / "spark-submit")


def build_library_zip(target: Path) -> Path:
    """Zip the `musicrec` package (code only) for --py-files."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for source in sorted((JOBS_DIR / "musicrec").rglob("*.py")):
            zf.write(source, source.relative_to(JOBS_DIR))
    os.replace(tmp, target)
    return target


def as_cli_args(job_args: dict[str, Any]) -> list[str]:
    """{"max_iter": 10, "url": ""} -> ["--max-iter", "10", "--url", ""]."""
    args: list[str] = []
    for name, value in job_args.items():
        args += [f"--{name.replace('_', '-')}", "" if value is None else str(value)]
    return args


def rows_of(text: str | int | None) -> int | None:
    """A rendered row count, or None when it is missing or not a number (then sizes are not tuned)."""
    try:
        return int(float(str(text).strip())) if text is not None else None
    except ValueError:
        return None


def run_date(context):
    """The run's logical date; a run triggered without one (Airflow 3 allows it) uses its run_after."""
    return context.get("logical_date") or context["dag_run"].run_after


def log_task_failure(context) -> None:
    """on_failure_callback: one line an operator can grep, with the error and where the full log is."""
    ti = context["ti"]
    error = " ".join(str(context.get("exception") or "unknown error").split())
    if len(error) > 300:
        error = error[:300] + "..."
    logging.getLogger("musicrec").error(
        "musicrec task failed: dag=%s task=%s run=%s try=%s error=%s log=%s",
        ti.dag_id, ti.task_id, ti.run_id, ti.try_number, error, getattr(ti, "log_url", "-"),
    )
    try:  # the run history keeps failed runs too; a broken history must not hide the failure
        history.record_failure(paths.data_root(), ti.run_id, ti.task_id, error, logical_date=run_date(context).isoformat())
    except Exception as problem:  # noqa: BLE001
        logging.getLogger("musicrec").warning("could not record the failure in the run history: %s", problem)


class SparkJobOperator(SparkSubmitOperator):
    """Run `spark_jobs/<job>.py` and return its result dict (see musicrec.result.STEP_OUTPUTS)."""

    template_fields = (*SparkSubmitOperator.template_fields, "job_args", "data_rows")
    template_fields_renderers = {"job_args": "json"}
    ui_color = "#fdf0e1"

    def __init__(
        self, *, job: str, job_args: dict[str, Any] | None = None, data_rows: str | int | None = None, **kwargs: Any
    ) -> None:
        if job not in result.STEPS:
            raise ValueError(f"unknown job {job!r}; the jobs are {result.STEPS}")
        kwargs.setdefault("name", f"musicrec-{job}")
        kwargs.setdefault("conf", dict(SPARK_CONF))
        kwargs.setdefault("spark_binary", os.environ.get(SPARK_SUBMIT_ENV) or default_spark_submit())
        super().__init__(application=str(JOBS_DIR / f"{job}.py"), **kwargs)
        self.job = job
        self.job_args = job_args or {}
        # How many interactions the job reads (a template of an upstream count): the Spark
        # settings that depend on size follow it (musicrec.spark_config.sized_conf).
        self.data_rows = data_rows

    def execute(self, context) -> dict[str, Any]:
        run = paths.run_dir(paths.data_root(), context["run_id"])
        result_file = run / "results" / f"{self.task_id}.json"
        result_file.unlink(missing_ok=True)  # never return a previous try's result
        self.application_args = [
            *as_cli_args(self.job_args),
            *as_cli_args({
                "run_dir": run, "result_file": result_file,
                "run_id": context["run_id"], "logical_date": run_date(context).isoformat(),
            }),
        ]
        self.py_files = str(build_library_zip(run / "lib" / "musicrec.zip"))
        self.conf = {
            "spark.pyspark.python": os.environ.get(PYSPARK_PYTHON_ENV, sys.executable),
            **(self.conf or {}),
            **sized_conf(rows_of(self.data_rows)),
        }
        started = time.monotonic()
        try:
            super().execute(context)
        except AirflowException:
            self._raise_job_error(result_file)
            raise
        facts = result.read_result(result_file)
        facts["task_seconds"] = round(time.monotonic() - started, 3)
        # Start-up: launching spark-submit, the JVM and Python, plus building the SparkSession.
        overhead = facts["task_seconds"] - facts["job_seconds"] + facts["session_seconds"]
        facts["startup_seconds"] = round(overhead, 3)
        if self.outlets:
            self._announce_publication(context, facts)
        return facts

    def _announce_publication(self, context, facts: dict[str, Any]) -> None:
        """Attach the publication's facts to the outlet asset events, or skip when nothing was published."""
        if not facts.get("published"):
            context["ti"].xcom_push(key="return_value", value=facts)  # the run's own CSV stays findable
            raise AirflowSkipException(facts.get("publication") or "nothing was published")
        extra = {
            key: facts[key]
            for key in ("rows", "users", "top_n", "published_csv_path", "published_version_path")
            if key in facts
        }
        extra.update(run_id=context["run_id"], logical_date=run_date(context).isoformat())
        extra.update({key: facts[key] for key in ("headline_metric", "headline_score") if facts.get(key) is not None})
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra

    def _raise_job_error(self, result_file: Path) -> None:
        """Re-raise a job's recorded error with its own message."""
        if not result_file.exists():
            return
        try:
            result.read_result(result_file)
        except TransientError as error:
            raise AirflowException(f"{self.job} failed: {error}") from None
        except PipelineError as error:  # bad input: retrying cannot help
            raise AirflowFailException(f"{self.job} failed: {error}") from None
        except ValueError as error:  # a half-written result file: the machine's fault, retry
            raise AirflowException(f"{self.job} failed and its result file {result_file} is unreadable: {error}") from None
