"""Train/test splits of the interactions: random, stratified by user, or temporal.

  random      each interaction goes to test with probability `fraction`
  stratified  each user's interactions are split by the fraction (round half up, at least one
              kept for training), so every test user is known to the model
  temporal    the latest `fraction` of interactions by timestamp go to test; every test
              timestamp is after every training timestamp (a tie at the cut stays in training)

Random and stratified draw from a hash of (seed, user ID, song ID), not from Spark's
partition-dependent randomSplit: the same interaction lands on the same side in every run and
every snapshot that has it. The quality gate relies on that: last night's model never trained on
an interaction that tonight's split holds out (musicrec.gate).
"""

from __future__ import annotations

from pathlib import Path

from musicrec import columns as C
from musicrec.errors import PipelineError
from musicrec.id_tables import IdTables, with_ids, without_ids

RANDOM, STRATIFIED, TEMPORAL = "random", "stratified", "temporal"
SPLITS = (RANDOM, STRATIFIED, TEMPORAL)
DEFAULT_SPLIT = STRATIFIED  # README, "Evaluation": a held-out user the model never saw measures nothing
DRAW = "_draw"
SIDE, TRAIN, TEST = "_side", "train", "test"


def check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise PipelineError(f"test_fraction must be between 0 and 1 (exclusive), got {fraction}")


def draw(seed: int):
    """A uniform number in [0, 1) fixed by (seed, user ID, song ID): the interaction's lot."""
    from pyspark.sql import functions as F

    hashed = F.xxhash64(F.lit(int(seed)), F.col(C.USER_ID), F.col(C.ITEM_ID))
    return (F.pmod(hashed, F.lit(1 << 30)) / F.lit(float(1 << 30))).alias(DRAW)


def split_interactions(interactions, kind: str, fraction: float, seed: int):
    """(train, test) of `interactions` (user_id, song_id, ..., timestamp) by `kind`."""
    from pyspark.sql import functions as F

    sided = with_side(interactions, kind, fraction, seed)
    return (sided.filter(F.col(SIDE) == TRAIN).drop(SIDE), sided.filter(F.col(SIDE) == TEST).drop(SIDE))


def write_split(interactions, kind: str, fraction: float, seed: int, folder: Path,
                ids: IdTables | None = None) -> tuple[Path, Path]:
    """Write the split as parquet folders `folder`/train and `folder`/test in one pass over the
    data (writing each side apart would compute the split twice), without the string IDs (as
    preprocess writes the interactions). A side without rows is an empty table with the schema.
    `folder` must be new or empty (train writes into a fresh staging folder).

    The random and stratified draws hash the IDs: `interactions` carries them, or `ids` (the ID
    tables) puts them back."""
    import shutil

    if kind != TEMPORAL:
        interactions = with_ids(interactions, ids)
    sided = without_ids(with_side(interactions, kind, fraction, seed))
    both = folder / "_sides"
    sided.write.partitionBy(SIDE).parquet(str(both))
    for side in (TRAIN, TEST):
        written = both / f"{SIDE}={side}"
        if written.exists():
            written.rename(folder / side)
        else:
            sided.drop(SIDE).limit(0).write.parquet(str(folder / side))
    shutil.rmtree(both)
    return folder / TRAIN, folder / TEST


def newest_timestamp(folder: Path):
    """The latest timestamp in the parquet files under `folder` (None when none has one), from
    the files' footers: the row groups' statistics, not a scan of the rows."""
    import pyarrow.parquet as pq

    newest = None
    for part in sorted(Path(folder).glob("*.parquet")):
        metadata = pq.read_metadata(part)
        column = next((i for i in range(metadata.num_columns) if metadata.schema.column(i).path == C.TIMESTAMP), None)
        if column is None:
            continue
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(column).statistics
            if stats is not None and stats.has_min_max and (newest is None or stats.max > newest):
                newest = stats.max
    return newest


def with_side(interactions, kind: str, fraction: float, seed: int):
    """`interactions` with SIDE: TRAIN or TEST, by `kind`."""
    check_fraction(fraction)
    if kind == RANDOM:
        return _random(interactions, fraction, seed)
    if kind == STRATIFIED:
        return _stratified(interactions, fraction, seed)
    if kind == TEMPORAL:
        return _temporal(interactions, fraction)
    raise PipelineError(f"unknown split {kind!r}; choose one of {list(SPLITS)}")


def _sided(frame, is_test):
    from pyspark.sql import functions as F

    return frame.withColumn(SIDE, F.when(is_test, F.lit(TEST)).otherwise(F.lit(TRAIN)))


def _random(interactions, fraction: float, seed: int):
    from pyspark.sql import functions as F

    lots = interactions.withColumn(DRAW, draw(seed))
    return _sided(lots, F.col(DRAW) < fraction).drop(DRAW)


def held_out_count(n, fraction: float):
    """How many of a user's `n` interactions (a bigint column) stratified holds out: n * fraction
    rounded half up, as people count, in integers (0.29 * 50 is 14.4999... in floating point);
    at most n - 1, so that the user stays known."""
    from pyspark.sql import functions as F

    per_million = int(round(fraction * 1_000_000))
    return F.least(F.floor((n * F.lit(per_million) + F.lit(500_000)) / F.lit(1_000_000)), n - 1).cast("int")


def _stratified(interactions, fraction: float, seed: int):
    """Each user's first `held_out_count` interactions by (draw, song ID) go to test. Expects
    what preprocess writes: one row per user and song, no null IDs.

    Found from each user's sorted draws (one small aggregate, broadcast back), not a window over
    every row, which shuffled and sorted every column: `write_split` of 25M play counts took
    45.6 s with the window and 38.2 s so, of 5M 14.1-14.7 s and 13.0-13.4 s (a fresh session
    each; most of what remains is writing the parquet). Where a user's cut falls inside a run of
    equal draws (rare: draws have 2^30 values), song IDs decide among the tied rows, in a second
    aggregate over those rows alone. The cuts are cached (deciding whether any cut is tied is one
    job) and stay so for the rest of the job: a few MB at 162k users."""
    from pyspark.sql import functions as F

    key = C.USER_INDEX if C.USER_INDEX in interactions.columns else C.USER_ID
    lots = interactions.withColumn(DRAW, draw(seed))
    draws = F.col("_draws")
    held_out = held_out_count(F.size(draws).cast("bigint"), fraction)
    cut_draw = F.element_at(draws, F.greatest(held_out, F.lit(1)))
    cuts = (
        lots.groupBy(key).agg(F.sort_array(F.collect_list(DRAW)).alias("_draws"))
        .select(
            key,
            F.when(held_out > 0, cut_draw).alias("_cut"),
            # The cut splits a run of equal draws: of those rows, this many go to test.
            F.when((held_out > 0) & (F.element_at(draws, held_out + 1) == cut_draw),
                   held_out - F.size(F.filter(draws, lambda d: d < cut_draw))).alias("_tied_in"),
        )
        .cache()
    )
    tied_cuts = cuts.filter(F.col("_tied_in").isNotNull())
    at_cut = F.col(DRAW) == F.col("_cut")
    if tied_cuts.isEmpty():
        cuts = cuts.withColumn("_cut_song", F.lit(None).cast("string"))
    else:
        song_cuts = (
            lots.join(F.broadcast(tied_cuts), key).filter(at_cut)
            .groupBy(key).agg(F.sort_array(F.collect_list(C.ITEM_ID)).alias("_songs"), F.first("_tied_in").alias("_tied_in"))
            .select(key, F.element_at("_songs", F.col("_tied_in")).alias("_cut_song"))
        )
        cuts = cuts.join(song_cuts, key, "left")
    # Without a song cut (no tie at the user's cut) this is draw <= cut.
    is_test = (F.col(DRAW) < F.col("_cut")) | (
        at_cut & (F.col("_cut_song").isNull() | (F.col(C.ITEM_ID) <= F.col("_cut_song")))
    )
    with_cut = lots.join(F.broadcast(cuts.drop("_tied_in")), key, "left")
    return _sided(with_cut, F.coalesce(is_test, F.lit(False))).select(*interactions.columns, SIDE)


def _temporal(interactions, fraction: float):
    from pyspark.sql import functions as F

    stamps = interactions.agg(
        F.count("*").alias("rows"), F.count(C.TIMESTAMP).alias("stamped"),
        F.percentile_approx(C.TIMESTAMP, 1.0 - fraction, 100_000).alias("cut"),  # any cut keeps the order
    ).first()
    if stamps["stamped"] == 0:
        raise PipelineError(
            "split 'temporal' needs timestamps, and this dataset has none; use split 'random' or 'stratified'"
        )
    if stamps["stamped"] < stamps["rows"]:
        raise PipelineError(
            f"split 'temporal' needs a timestamp on every interaction; {stamps['rows'] - stamps['stamped']} of "
            f"{stamps['rows']} have none. Use split 'random' or 'stratified', or fix the data."
        )
    return _sided(interactions, F.col(C.TIMESTAMP) > stamps["cut"])


def validation_split(train, kind: str, fraction: float, seed: int, ids: IdTables | None = None):
    """(fit, validation) carved from the training split only, for tuning; the test split is
    untouched. With `ids` (as for `write_split`) both carry the IDs, whatever the kind: tuning's
    ranking sample draws its users by user_id."""
    keyed = train if kind == TEMPORAL and ids is None else with_ids(train, ids)
    return split_interactions(keyed, kind, fraction, seed + 1)
