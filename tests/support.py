"""What tests in several folders share. Imported as `support` (pytest puts tests/ on sys.path);
not from `conftest`, a name that every conftest.py in the tree claims in sys.modules."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


def shared_dataset(name: str) -> Path:
    """A dataset from ../shared/datasets, or a clean skip when this checkout has none."""
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return path


class FixedFactors:
    """An ALSModel stand-in with hand-set factors (what RecommenderModel and evaluate use of it)."""

    def __init__(self, spark, users: dict[int, list[float]], items: dict[int, list[float]]):
        schema = "id int, features array<float>"
        self.userFactors = spark.createDataFrame([(k, v) for k, v in users.items()], schema)
        self.itemFactors = spark.createDataFrame([(k, v) for k, v in items.items()], schema)

    def transform(self, frame):
        from pyspark.sql import functions as F

        from musicrec import columns as C

        users = self.userFactors.select(F.col("id").alias(C.USER_INDEX), F.col("features").alias("_uf"))
        items = self.itemFactors.select(F.col("id").alias(C.ITEM_INDEX), F.col("features").alias("_if"))
        dot = F.expr("aggregate(zip_with(_uf, _if, (x, y) -> x * y), 0D, (acc, v) -> acc + v)")
        return frame.join(users, C.USER_INDEX).join(items, C.ITEM_INDEX).withColumn(C.PREDICTION, dot.cast("float")).drop("_uf", "_if")


def cached_rdd_ids(spark) -> set[int]:
    """IDs of the RDDs with blocks in Spark's storage now. A call that leaves nothing cached
    behind leaves no ID that was not there before; IDs can also go, when Spark's cleaner drops
    an RDD nobody references any more (ALS's factors), so compare sets, not counts."""
    return {info.id() for info in spark.sparkContext._jsc.sc().getRDDStorageInfo()}


def job_module(name: str):
    """A job script of spark_jobs/ (`spark_jobs/<name>.py`) as a module, to call its work()."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_job", Path(__file__).resolve().parents[1] / "spark_jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
