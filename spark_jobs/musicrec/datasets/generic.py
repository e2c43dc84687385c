"""A user's own interaction log: any CSV/TSV, described by the `column_mapping` param.

    {"file": "plays.csv", "user": "listener", "item": "track", "value": "count",
     "timestamp": "ts", "sep": ",", "feedback": "implicit", "encoding": "UTF-8",
     "items_file": "tracks.csv", "item_id": "id", "title": "name", "rating_min": 1, "rating_max": 5}

`file` (relative to the archive), `user` and `item` are required, and `value` for explicit
feedback (ratings); the rest is optional. Implicit feedback without `value` is a listen log: each
row is one play (prepare sums a user's plays of a song). Both files need a header row naming their
columns.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from musicrec import columns as C
from musicrec.datasets.base import CORRUPT, DatasetFormat, as_raw_interactions, find_file, read_delimited
from musicrec.errors import PipelineError

REQUIRED = ("file", "user", "item")
VALUE = "value"  # required for ratings, which have no default; a listen log row is one play
ONE_PLAY = "1"


def _required(options: dict) -> tuple[str, ...]:
    return REQUIRED if _feedback(options) == "implicit" else (*REQUIRED, VALUE)


def _locate(folder: Path, options: dict) -> Path | None:
    if not options:
        return None
    required = _required(options)
    missing = [key for key in required if not options.get(key)]
    if missing:
        raise PipelineError(
            f"column_mapping lacks {missing}; it needs at least {list(required)} ({VALUE!r} may be "
            "left out only with \"feedback\": \"implicit\", where each row is then one play)"
        )
    found = find_file(folder, [options["file"]])
    return found.parent if found else None


def _header(path: Path, sep: str, encoding: str) -> list[str]:
    with open(path, newline="", encoding=encoding, errors="replace") as handle:
        return [name.strip() for name in next(csv.reader(handle, delimiter=sep), [])]


def _read_named(spark, path: Path, options: dict, wanted: dict[str, str | None]):
    """Read `path` by its header and return columns renamed {our name: their name}."""
    from pyspark.sql import functions as F

    sep, encoding = options.get("sep", ","), options.get("encoding", "UTF-8")
    header = _header(path, sep, encoding)
    absent = [theirs for theirs in wanted.values() if theirs and theirs not in header]
    if absent:
        raise PipelineError(f"{path.name}: column(s) {absent} of column_mapping are not in its header {header}")
    positional = [f"_c{i}" for i in range(len(header))]
    frame = read_delimited(spark, path, positional, sep, header=True, encoding=encoding, multiline=True)
    columns = [
        (F.col(positional[header.index(theirs)]) if theirs else F.lit(None).cast("string")).alias(ours)
        for ours, theirs in wanted.items()
    ]
    return frame.select(*columns, CORRUPT)


def _interactions(spark, base: Path, options: dict):
    from pyspark.sql import functions as F

    wanted = {C.USER_ID: options["user"], C.ITEM_ID: options["item"], C.RATING: options.get(VALUE), C.TIMESTAMP: options.get("timestamp")}
    frame = _read_named(spark, base / Path(options["file"]).name, options, wanted)
    if not options.get(VALUE):  # a listen log: every row is one play
        frame = frame.withColumn(C.RATING, F.lit(ONE_PLAY))
    return as_raw_interactions(frame)


def _items(spark, base: Path, options: dict):
    from pyspark.sql import functions as F

    if not options.get("items_file"):  # no metadata: a song is known by its ID
        raw = _interactions(spark, base, options)
        return raw.select(C.ITEM_ID).distinct().select(C.ITEM_ID, F.col(C.ITEM_ID).alias(C.TITLE), F.lit(None).cast("string").alias(C.ARTIST))
    path = find_file(base, [Path(options["items_file"]).name])
    if path is None:
        raise PipelineError(f"items_file {options['items_file']!r} of column_mapping is not in the archive")
    wanted = {C.ITEM_ID: options.get("item_id", options["item"]), C.TITLE: options.get("title", "title"), C.ARTIST: options.get("artist")}
    return _read_named(spark, path, options, wanted).drop(CORRUPT)


FEEDBACK_KINDS = ("explicit", "implicit")


def generic_format(options: dict) -> DatasetFormat:
    """The generic format with the feedback kind and rating scale the mapping declares."""
    feedback = _feedback(options)
    if feedback not in FEEDBACK_KINDS:
        raise PipelineError(f"column_mapping's feedback must be one of {list(FEEDBACK_KINDS)}, got {feedback!r}")
    return DatasetFormat("generic", feedback, _scale(options), _locate, _interactions, _items)


def _feedback(options: dict) -> str:
    return options.get("feedback", "explicit")


def _scale(options: dict) -> tuple[float, float] | None:
    """(rating_min, rating_max) of the mapping, or None when it declares no scale."""
    given = [key for key in ("rating_min", "rating_max") if options.get(key) not in (None, "")]
    if not given:
        return None
    if len(given) == 1:
        raise PipelineError(f"column_mapping has {given[0]} but not its pair: give both rating_min and rating_max, or neither")
    bounds = []
    for key in ("rating_min", "rating_max"):
        value = options[key]
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise PipelineError(f"column_mapping's {key} must be a number, got {value!r}")
        bounds.append(number)
    low, high = bounds
    if low >= high:
        raise PipelineError(f"column_mapping's rating_min ({low:g}) must be below its rating_max ({high:g})")
    return low, high
