"""The layout of preprocess's interactions files: when each file holds every row of its users.

recommend needs each user's seen songs together. Spark gathers them with a shuffle of every
interaction and hands them to its Python workers through Arrow: at 25M play counts ~9 s of a
~17 s step. preprocess shuffles play counts anyway to sum them; keyed by the user alone
(`by_user`), that same shuffle leaves each user's rows in one task, written as one file with a
marker file that says so (`write_whole_users`). recommend then gives each Python task whole
files, which it reads with pyarrow and groups in numpy (musicrec.recommend.top_n_unseen_in_files).

Only what preprocess marked is trusted: a folder without the marker (ratings, which preprocess
does not shuffle at the write, or a run written before this layout) is grouped by Spark as before,
and recommend checks the marker's claim as it scores (more lists than users fail the step).
"""

from __future__ import annotations

import json
from pathlib import Path

from musicrec import columns as C
from musicrec.spark_config import session_settings

# Spark and pyarrow skip files whose names start with "_" or "." when they read the folder.
LAYOUT_FILE = "_musicrec_layout.json"
WHOLE_USERS_KEY = "whole_users_per_file"


def by_user(frame):
    """`frame` hash-partitioned by user_index, so that each written file holds whole users.

    A grouping by (user_index, ...) after it needs no other shuffle: hash partitions of the user
    are already clustered for it (Spark's EnsureRequirements), so it costs what the grouping's
    own shuffle by (user_index, item_index) cost. Adaptive execution may merge partitions, never
    split them (that is only for skewed joins and rebalances), so a user still ends in one file.
    """
    return frame.repartition(C.USER_INDEX)


def write_whole_users(frame, folder: Path) -> None:
    """Write `frame` (a grouping by user_index, ... of `by_user` rows) as parquet at `folder`, one
    file per task, and mark it. Pinned, whatever $MUSICREC_SPARK_CONF says: the grouping reuses
    by_user's shuffle (a second one by every grouping key would scatter users again), and a task
    writes one file (cut by a record count, its users would straddle files)."""
    with session_settings(frame.sparkSession, {"spark.sql.requireAllClusterKeysForDistribution": "false"}):
        frame.write.option("maxRecordsPerFile", 0).parquet(str(folder))
    mark_whole_users(folder)


def mark_whole_users(folder: Path) -> None:
    """Record that every file in `folder` holds all the rows of its users (written `by_user`)."""
    (Path(folder) / LAYOUT_FILE).write_text(json.dumps({WHOLE_USERS_KEY: C.USER_INDEX}) + "\n")


def has_whole_users(folder) -> bool:
    """Whether preprocess marked `folder` as written `by_user`."""
    try:
        layout = json.loads((Path(folder) / LAYOUT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(layout, dict) and layout.get(WHOLE_USERS_KEY) == C.USER_INDEX


def part_files(folder) -> list[str] | None:
    """The parquet files of a local folder written by Spark, in name order; None when `folder` is
    not a local folder (a URI such as hdfs://, which only Spark reads here) or has none."""
    path = Path(folder)
    if "://" in str(folder) or not path.is_dir():
        return None
    # Absolute: a cluster's Python workers run in their own working folders.
    files = sorted(str(p) for p in path.resolve().glob("*.parquet") if not p.name.startswith(("_", ".")))
    return files or None
