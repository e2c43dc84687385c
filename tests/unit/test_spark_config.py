"""musicrec.spark_config: runtime settings scoped to a block, and where preprocess uses them."""

import pytest

from musicrec import columns as C
from musicrec.prepare import sum_repeated_plays
from musicrec.spark_config import BYPASS_PARTIAL_AGGREGATION, session_settings

KEY = "spark.sql.execution.bypassPartialAggregation"


def test_settings_hold_inside_the_block_and_are_restored_after_it_even_on_error(spark):
    spark.conf.set("spark.sql.musicrec.test", "before")
    with pytest.raises(RuntimeError, match="inside"):
        with session_settings(spark, {"spark.sql.musicrec.test": "inside", "spark.sql.musicrec.unset": "x"}):
            assert spark.conf.get("spark.sql.musicrec.test") == "inside"
            assert spark.conf.get("spark.sql.musicrec.unset") == "x"
            raise RuntimeError("inside")
    assert spark.conf.get("spark.sql.musicrec.test") == "before"
    assert spark.conf.get("spark.sql.musicrec.unset", None) is None
    spark.conf.unset("spark.sql.musicrec.test")


def test_inside_the_block_an_aggregation_is_planned_in_one_phase(spark):
    frame = spark.createDataFrame([("u1", "s1", 2.0, 10), ("u1", "s1", 3.0, 20)], f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RATING} double, {C.TIMESTAMP} long")

    def plan():
        return sum_repeated_plays(frame)._jdf.queryExecution().executedPlan().toString()

    assert "partial_sum" in plan()
    with session_settings(spark, BYPASS_PARTIAL_AGGREGATION):
        assert "partial_sum" not in plan() and "sum(" in plan()


def test_preprocess_sums_play_counts_inside_the_block_and_nothing_else(spark, monkeypatch):
    from musicrec import prepare as prepare_module

    seen = []  # the setting when the sum is built, cached (planned) and counted (run)
    summed = []

    def recording(kept):
        seen.append(("build", spark.conf.get(KEY, None)))
        summed.append(sum_repeated_plays(kept))
        return summed[-1]

    frame_class = type(spark.range(1))  # the classic DataFrame, which defines cache and count

    def watched(name):
        original = getattr(frame_class, name)

        def call(frame, *args):
            if summed and frame is summed[-1]:
                seen.append((name, spark.conf.get(KEY, None)))
            return original(frame, *args)
        return call

    monkeypatch.setattr(prepare_module, "sum_repeated_plays", recording)
    for name in ("cache", "count"):
        monkeypatch.setattr(frame_class, name, watched(name))
    raw = spark.createDataFrame(
        [("u1", "s1", "2", "10", None), ("u1", "s1", "3", "20", None), ("u2", "s1", "1", "5", None)],
        f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RATING} string, {C.TIMESTAMP} string, {C.RAW_LINE} string",
    )
    items = spark.createDataFrame([("s1", "Song", "Artist")], f"{C.ITEM_ID} string, {C.TITLE} string, {C.ARTIST} string")
    prepared = prepare_module.prepare(raw, items, "implicit", None)
    assert seen == [("build", "true"), ("cache", "true"), ("count", "true")]
    assert sorted((r[C.USER_ID], r[C.RATING]) for r in prepared.interactions.collect()) == [("u1", 5.0), ("u2", 1.0)]
    assert spark.conf.get(KEY, None) in (None, "false")
