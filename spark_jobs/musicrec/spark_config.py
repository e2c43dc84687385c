"""The one place that owns Spark configuration.

The operator passes SPARK_CONF to spark-submit (`--conf`), and `get_spark()` applies the same
settings when a job or a test builds its session; whatever spark-submit already set wins.
The master is never set here: it comes from the `spark_default` connection (or the test fixture).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from musicrec.jvm_archive import sharing_options

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


DRIVER_JAVA_OPTIONS_ENV = "MUSICREC_DRIVER_JAVA_OPTIONS"  # fixes the driver's JVM options, whatever the size
DRIVER_MEMORY_ENV = "MUSICREC_DRIVER_MEMORY"
SHUFFLE_PARTITIONS_ENV = "MUSICREC_SHUFFLE_PARTITIONS"
# A single-driver JVM: the serial collector. On small data, C1-only JIT starts faster; from
# SMALL_DATA_ROWS on, C2's compiled code wins (bench/ on 2 cores: at 57k ratings C1 saves ~2 s per
# job; at 1M an ALS fit takes 27 s under C1 and 13 s with C2). From LARGE_DATA_ROWS on, the
# parallel collector: its pauses use every core, and 25M plays' train step took 129.9 and 132.6 s
# against 138.3 and 140.0 s under the serial one (alternating runs; its other steps and 5M's
# train were unchanged).
SERIAL_GC, PARALLEL_GC, C1_ONLY = "-XX:+UseSerialGC", "-XX:+UseParallelGC", "-XX:TieredStopAtLevel=1"
SMALL_DATA_ROWS = 300_000
# Below SMALL_DATA_ROWS a job is dozens of tiny Spark jobs: adaptive execution's extra jobs per
# shuffle and 8 partitions cost more than they save (bench/: the sample's DAG 115.7 -> 90.7 s).
SMALL_DATA_PARTITIONS = min(os.cpu_count() or 2, 4)
# Spark sizes its memory pages from the driver's memory (16 MB at 2g on 2 cores), and every sort,
# aggregation and broadcast hash table takes at least one: a job of dozens of tiny joins then
# holds up to gigabytes of pages, mostly empty. Below SMALL_DATA_ROWS, 1 MB pages (the smallest
# Spark derives itself): on the sample, evaluate's collector pauses 2.2 -> 0.65 s and its job
# 15.0-15.5 -> 12.3-12.8 s (alternating runs), every step's driver peak below 0.6 GB (evaluate's
# was 2.1 GB). At 25M plays 4 MB pages changed nothing (the recommend step, bench/results).
SMALL_DATA_PAGE_SIZE = "1m"
LARGE_DATA_ROWS = 5_000_000  # from here the driver (local mode: also the executor) gets LARGE_DRIVER_MEMORY
LARGE_DRIVER_MEMORY = "4g"
BYTES_PER_ROW = 25  # a MovieLens ratings.csv line ("1,999,3.0,1675967274"): rows estimated from bytes
BASE_DRIVER_JAVA_OPTIONS = os.environ.get(DRIVER_JAVA_OPTIONS_ENV, f"{SERIAL_GC} {C1_ONLY}")

# Tuned for data that fits one machine; on a cluster raise the shuffle partitions
# (MUSICREC_SHUFFLE_PARTITIONS) and driver memory (MUSICREC_DRIVER_MEMORY), or set anything
# through $MUSICREC_SPARK_CONF.
SPARK_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",  # no web UI port to bind for a batch job
    "spark.ui.showConsoleProgress": "false",  # progress bars garble task logs
    "spark.sql.shuffle.partitions": os.environ.get(SHUFFLE_PARTITIONS_ENV, "8"),
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": os.environ.get(DRIVER_MEMORY_ENV, "2g"),
    # Plus Spark's classes pre-parsed (musicrec.jvm_archive) when the archive was built.
    "spark.driver.extraJavaOptions": BASE_DRIVER_JAVA_OPTIONS + sharing_options(),
    **extra_conf(os.environ.get(EXTRA_CONF_ENV)),
}


def sized_conf(rows: int | None) -> dict[str, str]:
    """The settings that depend on how many interactions a job reads (None: unknown, small).

    Over SPARK_CONF: below SMALL_DATA_ROWS no adaptive execution, few shuffle partitions and
    small memory pages;
    from SMALL_DATA_ROWS on, C2 JIT; from LARGE_DATA_ROWS on, more driver memory and the
    parallel collector. What the user
    set ($MUSICREC_DRIVER_JAVA_OPTIONS, _DRIVER_MEMORY, _SHUFFLE_PARTITIONS, _SPARK_CONF) wins.
    """
    conf: dict[str, str] = {}
    if rows is None:
        return conf
    if rows < SMALL_DATA_ROWS:
        conf["spark.sql.adaptive.enabled"] = "false"
        conf["spark.buffer.pageSize"] = SMALL_DATA_PAGE_SIZE
        if SHUFFLE_PARTITIONS_ENV not in os.environ:
            conf["spark.sql.shuffle.partitions"] = str(SMALL_DATA_PARTITIONS)
    if DRIVER_JAVA_OPTIONS_ENV not in os.environ and rows >= SMALL_DATA_ROWS:
        collector = PARALLEL_GC if rows >= LARGE_DATA_ROWS else SERIAL_GC
        conf["spark.driver.extraJavaOptions"] = collector + sharing_options()
    if DRIVER_MEMORY_ENV not in os.environ and rows >= LARGE_DATA_ROWS:
        conf["spark.driver.memory"] = LARGE_DRIVER_MEMORY
    overrides = extra_conf(os.environ.get(EXTRA_CONF_ENV))
    return {key: value for key, value in conf.items() if key not in overrides}


def estimated_rows(data_bytes: int) -> int:
    """Interactions in `data_bytes` of text data, before preprocess has counted them."""
    return data_bytes // BYTES_PER_ROW


def als_blocks(spark) -> int:
    """ALS's user and item blocks: one per core Spark has ($MUSICREC_ALS_BLOCKS overrides).

    ALS's default of 10 suits a cluster; on 2 cores its 10 tasks per stage, over ~30 stages per
    fit, cost 2.5-4 s of a 5-8 s fit on the sample (bench/), and bigger blocks cost nothing.
    """
    configured = os.environ.get("MUSICREC_ALS_BLOCKS", "").strip()
    return int(configured) if configured else max(1, spark.sparkContext.defaultParallelism)


# Files are read in at least this many splits per core. Spark aims at one per core, each at most
# 128 MB: it cut 25M plays' 600 MB CSV into 5 splits on 2 cores and read its 8 parquet files of
# interactions as 3, each time with a last wave on one core. Four per core keep the waves even
# (bench/, the step alone at 25M, alternating: preprocess 48.7 and 52.1 s against 54.5 and 54.3 s;
# recommend's seen-songs grouping ends 1.4 s sooner; train and evaluate unchanged). No split is
# cut below Spark's open cost (4 MB), so a small file is still read whole.
FILE_SPLITS_PER_CORE = 4
MIN_FILE_SPLITS = "spark.sql.files.minPartitionNum"


def split_files_per_core(spark) -> None:
    """Set MIN_FILE_SPLITS to FILE_SPLITS_PER_CORE x the cores Spark has, unless it is set
    (spark-submit's --conf or $MUSICREC_SPARK_CONF win)."""
    if spark.conf.get(MIN_FILE_SPLITS, None) is None:
        spark.conf.set(MIN_FILE_SPLITS, str(FILE_SPLITS_PER_CORE * spark.sparkContext.defaultParallelism))


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
    split_files_per_core(spark)
    startup_seconds += time.perf_counter() - started
    if progress_step:
        from musicrec.progress import report_until_exit

        report_until_exit(spark, progress_step)  # a line every 15 s in the task log
    return spark


# Spark's partial aggregation before a shuffle pays when it merges rows; over keys that are mostly
# distinct it only builds and spills a hash map as big as the data.
BYPASS_PARTIAL_AGGREGATION = {"spark.sql.execution.bypassPartialAggregation": "true"}
# A cache scanned a few times soon after it is built: compressing it costs more than it saves.
UNCOMPRESSED_CACHE = {"spark.sql.inMemoryColumnarStorage.compressed": "false"}


@contextmanager
def session_settings(spark, settings: dict[str, str]) -> Iterator[None]:
    """Runtime SQL settings for the queries planned and run inside the block, restored after
    (a cached frame is planned when `.cache()` is called: call it inside)."""
    before = {key: spark.conf.get(key, None) for key in settings}
    try:
        for key, value in settings.items():
            spark.conf.set(key, value)
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
