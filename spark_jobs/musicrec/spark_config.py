"""The one place that owns Spark configuration.

The operator passes SPARK_CONF to spark-submit (`--conf`), and `get_spark()` applies the same
settings when a job or a test builds its session; whatever spark-submit already set wins.
The master is never set here: it comes from the `spark_default` connection (or the test fixture).
"""

from __future__ import annotations

import os
import time

# Seconds the job spent building its SparkSession (JVM gateway, executors): reported in results.
startup_seconds = 0.0

# Tuned for data that fits one machine; on a cluster raise the shuffle partitions
# (MUSICREC_SHUFFLE_PARTITIONS) and driver memory (MUSICREC_DRIVER_MEMORY).
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
    return spark
