"""Independent pieces of a step's Spark work, run side by side on small data.

Below spark_config.SMALL_DATA_ROWS a step is dozens of tiny Spark jobs, and much of its time is
the driver planning the next job while the cores wait. Work submitted from two threads overlaps
one's planning with the other's tasks (Spark runs jobs from several threads of one application
at once): on the sample, train's fit and refit take 4.3-6.4 s together against 6.6-9.5 s one
after the other (bench/, 2 cores). On bigger data the cores are busy already, and two ALS fits at
once would only hold twice the memory, so there they run one after the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from musicrec.spark_config import SMALL_DATA_ROWS


def worth_it(rows: int) -> bool:
    """Whether a step reading `rows` interactions should run its independent work side by side."""
    return rows < SMALL_DATA_ROWS


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
    results = {name: future.result() for name, future in futures.items()}  # the pool has waited for all
    return results, {" + ".join(calls) + " (side by side)": round(time.perf_counter() - started, 3)}
