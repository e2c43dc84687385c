"""SparkJobOperator: submit one spark_jobs/<job>.py with spark-submit and return its result.

A thin subclass of the provider's SparkSubmitOperator that adds what the pipeline needs:
  - the job's common arguments (run folder, result file) and its own, from a templated dict;
  - the shared library `musicrec`, zipped and shipped with `--py-files` so a cluster runs the
    same code;
  - the job's result JSON (the XCom contract in musicrec.result) returned as the task's XCom;
  - a bad-input failure raised with the job's own message and no retry (the same input fails
    the same way); unexpected failures stay retryable.
The master, deploy mode and queue come from the `spark_default` connection, as usual.
"""

from __future__ import annotations

import os
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

JOBS_DIR = Path(__file__).resolve().parents[1] / "spark_jobs"
if str(JOBS_DIR) not in sys.path:  # the library the jobs share; no Spark is imported by this
    sys.path.insert(0, str(JOBS_DIR))

from musicrec import paths, result  # noqa: E402
from musicrec.datasets import FORMAT_NAMES  # noqa: E402,F401  (the DAG's dataset_format choices)
from musicrec.errors import TransientError  # noqa: E402
from musicrec.model import AlsParams  # noqa: E402
from musicrec.spark_config import SPARK_CONF  # noqa: E402

ALS_DEFAULTS = AlsParams()  # the DAG's param defaults
SPARK_SUBMIT_ENV = "MUSICREC_SPARK_SUBMIT"  # path of spark-submit; default: the pyspark package's
PYSPARK_PYTHON_ENV = "MUSICREC_PYSPARK_PYTHON"  # python for driver and executors; default: Airflow's


def upstream(task_id: str, key: str) -> str:
    """A template for one key of an upstream task's result, e.g. upstream("download", "archive_path")."""
    return "{{ ti.xcom_pull(task_ids='%s')['%s'] }}" % (task_id, key)


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


class SparkJobOperator(SparkSubmitOperator):
    """Run `spark_jobs/<job>.py` and return its result dict (see musicrec.result.STEP_OUTPUTS)."""

    template_fields = (*SparkSubmitOperator.template_fields, "job_args")
    template_fields_renderers = {"job_args": "json"}
    ui_color = "#fdf0e1"

    def __init__(self, *, job: str, job_args: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if job not in result.STEPS:
            raise ValueError(f"unknown job {job!r}; the jobs are {result.STEPS}")
        kwargs.setdefault("name", f"musicrec-{job}")
        kwargs.setdefault("conf", dict(SPARK_CONF))
        super().__init__(application=str(JOBS_DIR / f"{job}.py"), **kwargs)
        self.job = job
        self.job_args = job_args or {}

    def execute(self, context) -> dict[str, Any]:
        run = paths.run_dir(paths.data_root(), context["run_id"])
        result_file = run / "results" / f"{self.task_id}.json"
        result_file.unlink(missing_ok=True)  # never return a previous try's result
        self.application_args = [*as_cli_args(self.job_args), "--run-dir", str(run), "--result-file", str(result_file)]
        self.py_files = str(build_library_zip(run / "lib" / "musicrec.zip"))
        self.conf = {"spark.pyspark.python": os.environ.get(PYSPARK_PYTHON_ENV, sys.executable), **(self.conf or {})}
        self._spark_binary = self._spark_binary or os.environ.get(SPARK_SUBMIT_ENV) or default_spark_submit()
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
        return facts

    def _raise_job_error(self, result_file: Path) -> None:
        """Re-raise a job's recorded error with its own message."""
        if not result_file.exists():
            return
        try:
            result.read_result(result_file)
        except TransientError as error:
            raise AirflowException(f"{self.job} failed: {error}") from None
        except Exception as error:  # PipelineError: bad input, retrying cannot help
            raise AirflowFailException(f"{self.job} failed: {error}") from None
