"""The one place that owns Spark configuration.

The operator passes SPARK_CONF to spark-submit (`--conf`), and `get_spark()` applies the same
settings when a job or a test builds its session; whatever spark-submit already set wins.
The master is never set here: it comes from the `spark_default` connection (or the test fixture).
"""

from __future__ import annotations

import json
import os
import time

# Seconds the job spent building its SparkSession (JVM gateway, executors): reported in results.
startup_seconds = 0.0
# Set by musicrec.job.run for a job script: its session logs progress lines until the process exits.
# Unset when tests call a job's work() directly, so no reporter outlives them on a shared session.
progress_step: str | None = None

EXTRA_CONF_ENV = "MUSICREC_SPARK_CONF"  # JSON object of Spark settings, merged over the defaults


def extra_conf(text: str | None) -> dict[str, str]:
    """Settings from $MUSICREC_SPARK_CONF, e.g. {"spark.driver.host": "10.0.0.5"} on a cluster."""
    if not (text or "").strip():
        return {}
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"${EXTRA_CONF_ENV} is not valid JSON ({error}): {text!r}") from None
    if not isinstance(conf, dict) or not all(isinstance(k, str) and k.startswith("spark.") for k in conf):
        raise ValueError(f'${EXTRA_CONF_ENV} must be a JSON object of "spark.*" settings, got {text!r}')
    return {key: str(value) for key, value in conf.items()}


# Tuned for data that fits one machine; on a cluster raise the shuffle partitions
# (MUSICREC_SHUFFLE_PARTITIONS) and driver memory (MUSICREC_DRIVER_MEMORY), or set anything
# through $MUSICREC_SPARK_CONF.
SPARK_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",  # no web UI port to bind for a batch job
    "spark.ui.showConsoleProgress": "false",  # progress bars garble task logs
    "spark.sql.shuffle.partitions": os.environ.get("MUSICREC_SHUFFLE_PARTITIONS", "8"),
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": os.environ.get("MUSICREC_DRIVER_MEMORY", "2g"),
    # Short-lived single-driver JVMs: a serial collector and C1-only JIT start faster (bench/).
    "spark.driver.extraJavaOptions": os.environ.get(
        "MUSICREC_DRIVER_JAVA_OPTIONS", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
    ),
    **extra_conf(os.environ.get(EXTRA_CONF_ENV)),
}


def get_spark(app_name: str):
    """Return the job's SparkSession, configured from SPARK_CONF."""
    global startup_seconds
    started = time.perf_counter()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    startup_seconds += time.perf_counter() - started
    if progress_step:
        from musicrec.progress import report_until_exit

        report_until_exit(spark, progress_step)  # a line every 15 s in the task log
    return spark
