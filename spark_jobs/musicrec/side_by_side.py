"""Independent pieces of a step's Spark work, run side by side on small data.

Below spark_config.SMALL_DATA_ROWS a step is dozens of tiny Spark jobs, and much of its time is
the driver planning the next job while the cores wait. Work submitted from two threads overlaps
one's planning with the other's tasks (Spark runs jobs from several threads of one application
at once): on the sample, train's fit and refit took 9.5 s side by side against 12.1 s one after
the other, and a nightly evaluate 19.6 s against 24.4 s (make run, 2 cores).

ALS's progress lines (musicrec.progress) count the iterations of one fit at a time: with two fits
side by side the count mixes both. On data this small a fit rarely outlasts one progress line. On bigger data the cores are busy already, and two ALS fits at
once would only hold twice the memory, so there they run one after the other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from musicrec.spark_config import SMALL_DATA_ROWS

log = logging.getLogger(__name__)


def pays_off(rows: int | None) -> bool:
    """Whether a step reading `rows` interactions should run its independent work side by side
    (None, not known: no)."""
    return rows is not None and rows < SMALL_DATA_ROWS


def run_timed(calls: dict[str, Callable[[], object]], together: bool) -> tuple[dict[str, object], dict[str, float]]:
    """Run every call, side by side when `together`: (results by name, seconds).

    The seconds are each call's own when they ran one after the other; side by side their times
    overlap, so there is one entry, "<a> + <b> (side by side)", the wall time of them all. An
    error in any call is raised once all have stopped.
    """
    if not together or len(calls) < 2:
        results, seconds = {}, {}
        for name, call in calls.items():
            started = time.perf_counter()
            results[name] = call()
            seconds[name] = round(time.perf_counter() - started, 3)
        return results, seconds
    from pyspark import inheritable_thread_target  # the threads keep the caller's Spark local properties

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="musicrec-side-by-side") as pool:
        futures = {name: pool.submit(inheritable_thread_target(call)) for name, call in calls.items()}
    # The pool has waited for all: a failed call does not stop the others (on small data they are short).
    errors = [(name, future.exception()) for name, future in futures.items() if future.exception() is not None]
    for name, error in errors[1:]:
        log.error("%s failed too: %s", name, error, exc_info=error)
    if errors:
        raise errors[0][1]
    results = {name: future.result() for name, future in futures.items()}
    return results, {" + ".join(calls) + " (side by side)": round(time.perf_counter() - started, 3)}
