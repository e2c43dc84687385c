"""musicrec.side_by_side: independent Spark work overlapped on small data, one after the other on big."""

import threading

import pytest

from musicrec import side_by_side
from musicrec.spark_config import SMALL_DATA_ROWS


def test_small_data_only():
    assert side_by_side.pays_off(56_839) and side_by_side.pays_off(SMALL_DATA_ROWS - 1)
    assert not side_by_side.pays_off(SMALL_DATA_ROWS) and not side_by_side.pays_off(25_000_000)
    assert not side_by_side.pays_off(None)  # not known: as if big


def test_together_the_calls_really_overlap():
    # Each call waits for the other at a barrier: only calls that run at the same time get past it.
    meet = threading.Barrier(2, timeout=60)
    results, seconds = side_by_side.run_timed({"fit": lambda: meet.wait() is not None and "a",
                                               "refit": lambda: meet.wait() is not None and "b"}, together=True)
    assert results == {"fit": "a", "refit": "b"}
    assert list(seconds) == ["fit + refit (side by side)"] and seconds["fit + refit (side by side)"] >= 0


def test_apart_each_call_has_its_own_time_and_runs_in_order():
    order = []
    results, seconds = side_by_side.run_timed({"fit": lambda: order.append("fit") or 1,
                                               "refit": lambda: order.append("refit") or 2}, together=False)
    assert results == {"fit": 1, "refit": 2} and order == ["fit", "refit"] and list(seconds) == ["fit", "refit"]


def test_an_error_is_raised_after_every_call_has_stopped():
    finished = threading.Event()

    def slow():
        finished.wait(0.5)
        finished.set()
        return "done"

    def broken():
        raise RuntimeError("no factors")

    with pytest.raises(RuntimeError, match="no factors"):
        side_by_side.run_timed({"broken": broken, "slow": slow}, together=True)
    assert finished.is_set()  # the other call was not abandoned mid-way


def test_the_threads_keep_the_callers_spark_properties(spark):
    # Job groups and descriptions are Spark local properties: each thread of PySpark has its own.
    context = spark.sparkContext
    context.setLocalProperty("musicrec.test", "tonight")
    try:
        results, _ = side_by_side.run_timed({
            "a": lambda: (context.getLocalProperty("musicrec.test"), spark.range(10).count()),
            "b": lambda: (context.getLocalProperty("musicrec.test"), spark.range(5).count()),
        }, together=True)
    finally:
        context.setLocalProperty("musicrec.test", None)
    assert results == {"a": ("tonight", 10), "b": ("tonight", 5)}


def test_when_both_fail_the_first_is_raised_and_the_other_logged(caplog):
    def broken(message):
        def call():
            raise ValueError(message)
        return call

    with pytest.raises(ValueError, match="first"):
        side_by_side.run_timed({"fit": broken("first"), "refit": broken("second")}, together=True)
    assert "refit failed too: second" in caplog.text
