"""Progress lines in the task log while a step runs for minutes.

A spark-submit step is silent between its first and last log line: Airflow shows nothing for
minutes, and nobody can tell a slow ALS fit from a hung one. `progress(spark, step)` starts a
daemon thread that, every `interval` seconds (15; $MUSICREC_PROGRESS_SECONDS overrides, 0 turns
it off), logs one line through the "musicrec" logger, which the job scripts send to stderr and
SparkSubmitHook copies into the task log:

    train 1m05s: stage 23 flatMap at ALS.scala:1782 7/10 tasks, 2 running; ALS iteration 3/10 (4/20 half-steps done)
    train 1m20s: idle (driver-side work)

Everything comes from Spark's status tracker (the same store the web UI reads, kept even with the
UI off), so the thread only reads; it never changes what the job computes. It must never crash
or slow the job: errors from the tracker (e.g. the context stopping under it) are logged at DEBUG
and the next tick tries again.

ALS iterations: Spark's ALS logs no iteration number, but its stages reveal it. Each half-step
(solving item factors from user factors, or the reverse) ends in exactly one shuffle whose map
stage is named "flatMap at ALS.scala:<line>" (the groupByKey in ALS.computeFactors). A fit of
maxIter iterations runs 2 * maxIter such stages, in order, whatever the feedback kind and
checkpointInterval (observed on Spark 4.3: explicit and implicit, with and without checkpoints).
Stages a later job merely re-lists because their shuffle output already exists are "skipped"
and never complete, so counting *completed* stages of that name since the fit began gives the
half-steps done. Hence `expect_als(max_iter)`, called right before `ALS.fit`, marks where a fit
begins and says how many half-steps to expect. What is not known: the count relies on a Spark
internal (the call site's name), two ALS fits running at once would be counted together, and a
stage re-run in a new job after lost shuffle files (executor loss) counts twice; the count is
capped at maxIter so a wrong count can look finished early, never exceed maxIter. In explicit
mode the half-steps between checkpoints run lazily inside one job, which is why the count works
per stage rather than per job.

For loops that run without Spark (extracting an archive, hashing a file), `every(seconds)`
returns a callable that is True at most once per interval, so a loop can log "extracted 1200 of
5000 files" without a line per file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator

log = logging.getLogger("musicrec")

INTERVAL_ENV = "MUSICREC_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 15.0
MAX_STAGES_SHOWN = 4
# The shuffle map stage that ends each ALS half-step (ALS.computeFactors' groupByKey input).
ALS_HALF_STEP = re.compile(r"^flatMap at ALS\.scala:\d+$")

_active: list[ProgressReporter] = []  # innermost last; expect_als() talks to it


def interval_seconds(interval: float | None = None) -> float:
    """`interval`, else $MUSICREC_PROGRESS_SECONDS, else 15. Zero or less means off."""
    if interval is not None:
        return float(interval)
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL
    try:
        return float(text)
    except ValueError:
        log.warning("$%s=%r is not a number of seconds; using %s", INTERVAL_ENV, text, DEFAULT_INTERVAL)
        return DEFAULT_INTERVAL


class Throttled:
    """Callable that returns True at most once per `seconds` (first time one interval after creation).

    For loops without Spark: `due = every(); ... if due(): log.info("extracted %d of %d", n, total)`.
    The loop still logs its final count itself; this only thins out the lines in between.
    """

    def __init__(self, seconds: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.seconds = interval_seconds(seconds)
        self._clock = clock
        self._last = clock()

    def __call__(self) -> bool:
        if self.seconds <= 0:
            return False
        now = self._clock()
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True


def every(seconds: float | None = None, clock: Callable[[], float] = time.monotonic) -> Throttled:
    """A `Throttled` for `seconds` (default as for progress lines: 15 or $MUSICREC_PROGRESS_SECONDS)."""
    return Throttled(seconds, clock)


def expect_als(max_iter: int) -> None:
    """Say an ALS fit of `max_iter` iterations starts now (no-op outside `progress()`)."""
    if _active:
        _active[-1].expect_als(max_iter)


@contextlib.contextmanager
def progress(spark, step: str, interval: float | None = None) -> Iterator[ProgressReporter]:
    """Log `step`'s Spark progress every `interval` seconds while the body runs; stop on exit, also on errors."""
    reporter = ProgressReporter(spark.sparkContext, step, interval)
    reporter.start()
    _active.append(reporter)
    try:
        yield reporter
    finally:
        _active.remove(reporter)
        reporter.stop()


def report_until_exit(spark, step: str) -> None:
    """For a job script's session (musicrec.spark_config.get_spark): progress from now until the
    process exits, without wrapping every job's body in `progress()`."""
    import atexit

    context = progress(spark, step)
    context.__enter__()
    atexit.register(context.__exit__, None, None, None)


class ProgressReporter:
    """The thread behind `progress()`: one log line per interval from `sc.statusTracker()`."""

    def __init__(self, sc, step: str, interval: float | None = None):
        self.sc = sc
        self.step = step
        self.interval = interval_seconds(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._lock = threading.Lock()  # the stage scan runs from the thread and from expect_als()
        self._next_stage: int | None = None  # stage ids are sequential: every id below it was looked at
        self._als_open: set[int] = set()  # ALS half-step stages seen but not (yet) completed
        self._als_done: set[int] = set()
        self._als_from = 0  # the current fit's first stage id
        self._als_max_iter: int | None = None
        self._job_details = True  # False once the (private) per-job description lookup has failed

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"musicrec-progress-{self.step}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; waits at most `timeout` (a tracker call can block while the JVM is busy)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                line = self.report()
            except Exception:  # never let the tracker kill the thread (or the job)
                log.debug("progress of %s: the status tracker failed", self.step, exc_info=True)
                continue
            if line and not self._stop.is_set():
                log.info("%s", line)

    # -- ALS ----------------------------------------------------------------------------------

    def expect_als(self, max_iter: int) -> None:
        """Count ALS half-steps from the next stage on, against 2 * `max_iter`."""
        if self.interval <= 0:
            return
        with self._lock:
            try:
                self._scan(self.sc.statusTracker(), ())
            except Exception:
                log.debug("progress of %s: catching up on stages failed", self.step, exc_info=True)
            self._als_from = self._next_stage or 0  # None: not scanned yet, nothing older will be
            self._als_open.clear()
            self._als_done.clear()
            self._als_max_iter = max(1, int(max_iter))

    def _scan(self, tracker, active_job_stages) -> None:
        """Look at stages created since the last scan, and recheck ALS stages not completed yet."""
        newest = self._newest_stage(tracker)
        if self._next_stage is None:
            self._next_stage = newest + 1
        known = set(self._als_open)  # seen by an earlier scan, so their job was already listed
        # Up to the newest job's stages, an id without info is a hole, not the end: past
        # spark.ui.retainedStages (1000) the status store drops skipped stages first, new or old,
        # and ALS's jobs skip many. Stopping at a hole stopped the count for good.
        highest = max(max(active_job_stages, default=-1), newest)
        stage = self._next_stage
        while True:
            info = tracker.getStageInfo(stage)
            if info is None and stage > highest:
                break  # past the newest stage
            if info is not None and ALS_HALF_STEP.match(info.name or ""):
                self._als_open.add(stage)
            stage += 1
        self._next_stage = stage
        for stage in sorted(self._als_open):
            info = tracker.getStageInfo(stage)
            if info is not None and info.numTasks > 0 and info.numCompletedTasks >= info.numTasks:
                self._als_open.discard(stage)
                if stage >= self._als_from:
                    self._als_done.add(stage)
            elif info is None or (stage in known and stage not in active_job_stages):
                # Its job is over and it did not complete: skipped (output reused) or failed.
                # (A stage new to this scan may belong to a job that started after the listing.)
                self._als_open.discard(stage)

    @staticmethod
    def _newest_stage(tracker) -> int:
        """The newest stage id so far (-1 if none): the stages before the reporter are not ours.

        Jobs in a job group are not listed; then the scan starts lower and just reads a few more.
        """
        jobs = set(tracker.getJobIdsForGroup(None)) | set(tracker.getActiveJobsIds())
        info = tracker.getJobInfo(max(jobs)) if jobs else None
        return max(info.stageIds, default=-1) if info is not None else -1

    @property
    def als_half_steps(self) -> int:
        """Completed ALS half-steps since the last `expect_als()` (as of the last scan)."""
        return len(self._als_done)

    def _als_text(self) -> str:
        if self._als_max_iter is None:
            return ""
        total = 2 * self._als_max_iter
        done = min(len(self._als_done), total)
        if done == total:
            self._als_max_iter = None  # say it once; later stages are not ALS's iterations
            return f"ALS iterations done ({total}/{total} half-steps)"
        return f"ALS iteration {done // 2 + 1}/{self._als_max_iter} ({done}/{total} half-steps done)"

    # -- the line -----------------------------------------------------------------------------

    def report(self) -> str:
        """The progress line for now ('' once the context is stopped)."""
        if getattr(self.sc, "_jsc", None) is None:
            return ""
        tracker = self.sc.statusTracker()
        jobs = tracker.getActiveJobsIds()
        job_stages = set()
        for job in jobs:
            info = tracker.getJobInfo(job)
            if info is not None:
                job_stages.update(info.stageIds)
        with self._lock:
            self._scan(tracker, job_stages)
            als = self._als_text()
        parts = [self._stages_text(tracker)]
        parts += [text for text in (self._jobs_text(jobs), als) if text]
        return f"{self.step} {_duration(time.monotonic() - self._started)}: " + "; ".join(parts)

    def _stages_text(self, tracker) -> str:
        stages = [info for info in map(tracker.getStageInfo, tracker.getActiveStageIds()) if info is not None]
        if not stages:
            return "idle (driver-side work)"
        texts = []
        for info in stages[:MAX_STAGES_SHOWN]:
            text = f"stage {info.stageId}"
            if info.currentAttemptId:
                text += f" (attempt {info.currentAttemptId + 1})"
            text += f" {short_name(info.name)} {info.numCompletedTasks}/{info.numTasks} tasks, {info.numActiveTasks} running"
            if info.numFailedTasks:
                text += f", {info.numFailedTasks} failed"
            texts.append(text)
        if len(stages) > MAX_STAGES_SHOWN:
            texts.append(f"+{len(stages) - MAX_STAGES_SHOWN} more stages")
        return "; ".join(texts)

    def _jobs_text(self, jobs) -> str:
        """The description (sc.setJobDescription) or group of the active jobs, if they have one.

        The public tracker does not expose them and they are thread-local properties of the
        thread that submitted the job, so this reads the status store (a Spark internal); if that
        fails once, lines go on without it.
        """
        if not self._job_details or not jobs:
            return ""
        labels = []
        try:
            store = self.sc._jsc.sc().statusStore()
            for job in jobs:
                data = store.job(job)
                for option in (data.description(), data.jobGroup()):
                    if option.isDefined():
                        label = str(option.get())
                        if label not in labels:
                            labels.append(label)
                        break
        except Exception:
            log.debug("progress of %s: no job descriptions from the status store", self.step, exc_info=True)
            self._job_details = False
            return ""
        return f"job {', '.join(_shorten(label, 80) for label in labels)}" if labels else ""


def short_name(name: str | None) -> str:
    """A stage name without the call site's folders: 'count at /opt/jobs/train.py:41' -> 'count at train.py:41'."""
    name = (name or "?").strip()
    action, sep, where = name.partition(" at ")
    if sep:
        name = f"{action} at {where.replace(chr(92), '/').rsplit('/', 1)[-1]}"
    return _shorten(name, 60)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
