"""The driver JVM's class-data-sharing archive (JDK CDS): Spark's classes parsed once, then mapped
by every later spark-submit, which starts in about half the time (bench/: a trivial submit went
from 11.7 s to 6.0 s on the 2-core machine; the archive is ~200 MB).

Built once per installation (`make install`, the Docker image) by `python -m musicrec.jvm_archive`:
a small Spark workload that touches what the jobs use (parquet, CSV, shuffles, windows,
StringIndexer, ALS, Arrow UDFs) runs with -XX:ArchiveClassesAtExit. `spark_config` then adds
-XX:SharedArchiveFile to the driver's options when the file exists. The JVM checks that the
archive matches its own build and Spark's class path and otherwise ignores it (-Xshare:auto):
a stale archive costs the speed-up, never a run. $MUSICREC_JVM_ARCHIVE moves it; empty turns it off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ARCHIVE_ENV = "MUSICREC_JVM_ARCHIVE"


def archive_path() -> Path | None:
    """Where the archive is (or would be built): $MUSICREC_JVM_ARCHIVE, else beside this Python's
    packages, where pyspark is; None when turned off."""
    configured = os.environ.get(ARCHIVE_ENV)
    if configured is not None:
        return Path(configured) if configured.strip() else None
    return Path(sys.prefix) / "share" / "musicrec" / "spark-driver.jsa"


def sharing_options() -> str:
    """The driver JVM option that maps the archive, or "" when there is none."""
    path = archive_path()
    return f" -XX:SharedArchiveFile={path}" if path is not None and path.is_file() else ""


def build(java_options: str, conf: dict[str, str]) -> Path:
    """Run the workload below in a spark-submit that writes the archive at exit; return its path.

    Written to a temporary name and renamed: a failed or concurrent build never leaves a torn file.
    """
    import importlib.util

    target = archive_path()
    if target is None:
        raise SystemExit(f"${ARCHIVE_ENV} is empty: the archive is turned off")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pyspark is not installed; install requirements.txt first")
    spark_submit = Path(spec.submodule_search_locations[0]) / "bin" / "spark-submit"
    options = f"{java_options} -XX:ArchiveClassesAtExit={partial}"
    settings = {**conf, "spark.driver.extraJavaOptions": options, "spark.pyspark.python": sys.executable}
    command = [str(spark_submit), "--master", "local[2]"]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    done = subprocess.run([*command, __file__, "--workload"], capture_output=True, text=True)
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise SystemExit(f"building the JVM archive failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    partial.replace(target)
    return target


def workload() -> None:
    """What the jobs do, in miniature: every class it loads goes into the archive."""
    import pandas as pd
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS, ALSModel
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F

    spark = SparkSession.builder.appName("musicrec-jvm-archive").getOrCreate()
    with tempfile.TemporaryDirectory(prefix="musicrec-jvm-archive-") as scratch:
        spark.sparkContext.setCheckpointDir(f"{scratch}/checkpoints")
        rows = [(f"u{u}", f"s{(u * 7 + i) % 40}", float((u + i) % 5 + 1), 1_600_000_000 + u * i) for u in range(60) for i in range(12)]
        raw = spark.createDataFrame(rows, "user_id string, song_id string, rating double, timestamp long")
        raw.write.option("header", True).csv(f"{scratch}/csv")
        read = spark.read.option("header", True).schema("user_id string, song_id string, rating string, timestamp string").csv(f"{scratch}/csv")
        typed = read.select("user_id", "song_id", F.col("rating").try_cast("double").alias("rating"), F.col("timestamp").try_cast("long").alias("timestamp"))
        latest = Window.partitionBy("user_id", "song_id").orderBy(F.col("timestamp").desc())
        kept = typed.withColumn("n", F.row_number().over(latest)).filter("n = 1").drop("n")
        indexed = StringIndexer(inputCols=["user_id", "song_id"], outputCols=["u", "i"]).fit(kept).transform(kept)
        indexed = indexed.select(F.col("u").cast("int").alias("u"), F.col("i").cast("int").alias("i"), "rating", "timestamp")
        indexed.write.parquet(f"{scratch}/parquet")
        frame = spark.read.parquet(f"{scratch}/parquet").cache()
        frame.groupBy("i").agg(F.count("*"), F.avg("rating"), F.max("timestamp")).join(frame, "i").count()
        model = ALS(userCol="u", itemCol="i", ratingCol="rating", rank=2, maxIter=2, checkpointInterval=1).fit(frame)
        model.write().save(f"{scratch}/model")
        model = ALSModel.load(f"{scratch}/model")
        model.transform(frame).agg(F.avg("prediction")).collect()

        def double(batches):
            for batch in batches:
                yield pd.DataFrame({"u": batch["u"], "score": batch["rating"] * 2})

        frame.mapInPandas(double, "u int, score double").coalesce(1).write.csv(f"{scratch}/out")
    spark.stop()


if __name__ == "__main__":
    if sys.argv[1:] == ["--workload"]:
        workload()
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from musicrec.spark_config import BASE_DRIVER_JAVA_OPTIONS, SPARK_CONF

        print(f"JVM class-data-sharing archive: {build(BASE_DRIVER_JAVA_OPTIONS, SPARK_CONF)}")
