"""progress(): lines from Spark's status tracker while a job runs, ALS half-steps, a thread that
always stops; every(): at most one True per interval."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from types import SimpleNamespace

import pytest

from musicrec import progress as P

STAGE = re.compile(r"stage (\d+) (.+?) (\d+)/(\d+) tasks, (\d+) running")
ALS_ITER = re.compile(r"ALS iteration (\d+)/(\d+) \((\d+)/(\d+) half-steps done\)")


def _lines(caplog, step):
    return [r.getMessage() for r in caplog.records if r.name == "musicrec" and r.getMessage().startswith(step + " ")]


def _no_reporter_threads():
    return not [t for t in threading.enumerate() if t.name.startswith("musicrec-progress-") and t.is_alive()]


def test_lines_show_the_stage_and_its_tasks_done_rising(spark, caplog):
    caplog.set_level(logging.INFO, logger="musicrec")
    sc = spark.sparkContext
    with P.progress(spark, "slow", interval=0.3) as reporter:
        assert reporter.running and reporter._thread.daemon
        # The first scan lists the session's past jobs over py4j, one call each: seconds on a
        # loaded machine late in the suite. Done here, before the job, not in the job's ticks.
        reporter.report()
        sc.parallelize(range(8), 8).map(lambda x: time.sleep(1.0) or x).count()
    assert not reporter.running and _no_reporter_threads()

    stages = [STAGE.search(line) for line in _lines(caplog, "slow")]
    stages = [m for m in stages if m]
    assert stages, _lines(caplog, "slow")
    assert all(re.fullmatch(r"count at test_progress.py:\d+", m.group(2)) for m in stages), stages[0].group(0)
    assert {m.group(4) for m in stages} == {"8"}
    done = [int(m.group(3)) for m in stages]
    assert done == sorted(done) and len(set(done)) >= 2, done  # rises while the job runs
    assert max(done) > 2, done  # tasks done, not running: local[2] never runs more than 2
    assert any(re.match(r"slow \d+s: stage \d+ count at ", line) for line in _lines(caplog, "slow"))


def test_idle_line_when_no_stage_runs(spark, caplog):
    caplog.set_level(logging.INFO, logger="musicrec")
    with P.progress(spark, "quiet", interval=0.1):
        # The first tick reads the tracker over py4j, which can take seconds on a loaded machine.
        deadline = time.monotonic() + 30
        while len(_lines(caplog, "quiet")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    lines = _lines(caplog, "quiet")
    assert lines and all(line.endswith(": idle (driver-side work)") for line in lines), lines


def test_thread_stops_when_the_body_raises(spark):
    with pytest.raises(RuntimeError, match="boom"):
        with P.progress(spark, "failing", interval=0.1) as reporter:
            time.sleep(0.3)
            raise RuntimeError("boom")
    # stop() waits 5 s at most; a first scan on a loaded machine can take longer (then it stops after).
    reporter._thread.join(60)
    assert not reporter.running and _no_reporter_threads()
    assert P._active == []


def test_stop_is_prompt_with_a_long_interval(spark):
    with P.progress(spark, "long", interval=600) as reporter:
        pass
    started = time.monotonic()
    reporter.stop()
    assert time.monotonic() - started < 1 and not reporter.running


def test_interval_zero_turns_it_off(spark, monkeypatch):
    monkeypatch.setenv(P.INTERVAL_ENV, "0")
    with P.progress(spark, "off") as reporter:
        P.expect_als(5)
        assert not reporter.running


class _BrokenTracker:
    def __getattr__(self, name):
        raise RuntimeError("tracker gone")


class _FakeContext:
    _jsc = object()

    def statusTracker(self):
        return _BrokenTracker()


def test_tracker_errors_are_logged_at_debug_and_the_thread_goes_on(caplog):
    caplog.set_level(logging.DEBUG, logger="musicrec")
    reporter = P.ProgressReporter(_FakeContext(), "broken", interval=0.05)
    reporter.start()

    def tracker_failures():
        return [r for r in caplog.records if "status tracker failed" in r.getMessage()]

    deadline = time.monotonic() + 30  # a loaded machine can delay the thread's ticks
    while len(tracker_failures()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reporter.running
    reporter.stop()
    assert not reporter.running
    failures = tracker_failures()
    assert len(failures) >= 2 and all(r.levelno == logging.DEBUG for r in failures)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]


def test_als_half_steps_are_counted_per_fit(spark, caplog):
    """Explicit with checkpoints (lazy iterations inside count jobs), then implicit (a job per
    half-step): each fit runs exactly 2 * maxIter "flatMap at ALS.scala" stages."""
    from pyspark.ml.recommendation import ALS

    caplog.set_level(logging.INFO, logger="musicrec")
    rng = random.Random(1)
    rows = [(rng.randrange(30), rng.randrange(20), float(rng.randrange(1, 6))) for _ in range(300)]
    ratings = spark.createDataFrame(rows, "u int, i int, r float").cache()
    ratings.count()
    with P.progress(spark, "fit", interval=0.2) as reporter:
        for max_iter, implicit in ((3, False), (2, True)):
            P.expect_als(max_iter)
            ALS(userCol="u", itemCol="i", ratingCol="r", rank=3, seed=1, maxIter=max_iter,
                implicitPrefs=implicit, checkpointInterval=2).fit(ratings)
            # The status store is updated by an asynchronous listener: scan until it has caught up
            # (a loaded machine can take seconds), unless the thread has already said it.
            finals, deadline = [reporter.report()], time.monotonic() + 20
            while reporter.als_half_steps < 2 * max_iter and time.monotonic() < deadline:
                time.sleep(0.2)
                finals.append(reporter.report())
            assert reporter.als_half_steps == 2 * max_iter
            done = f"ALS iterations done ({2 * max_iter}/{2 * max_iter} half-steps)"

            def times_said():
                return sum(line.endswith(done) for line in [*finals, *_lines(caplog, "fit")])

            # The thread may have scanned (counting the last half-step) and not yet logged its line.
            while times_said() == 0 and time.monotonic() < deadline + 5:
                time.sleep(0.05)
            assert times_said() == 1  # said once
    ratings.unpersist()

    seen = [m for m in map(ALS_ITER.search, _lines(caplog, "fit")) if m]
    assert seen, _lines(caplog, "fit")
    for m in seen:
        iteration, of, done, total = map(int, m.groups())
        assert total == 2 * of and iteration == done // 2 + 1 and done < total


def test_short_name_drops_folders():
    assert P.short_name("count at /opt/airflow/spark_jobs/train.py:41") == "count at train.py:41"
    assert P.short_name("treeAggregate at ALS.scala:1000") == "treeAggregate at ALS.scala:1000"
    assert P.short_name(None) == "?"
    assert len(P.short_name("x" * 200)) == 60


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_every_is_true_at_most_once_per_interval():
    clock = _Clock()
    due = P.every(10, clock=clock)
    answers = []
    for now in (100, 105, 109.9, 110, 110.1, 119, 120.5, 121, 200):
        clock.now = now
        answers.append(due())
    assert answers == [False, False, False, True, False, False, True, False, True]


def test_every_takes_its_default_from_the_environment(monkeypatch):
    monkeypatch.setenv(P.INTERVAL_ENV, "2.5")
    assert P.every().seconds == 2.5
    monkeypatch.setenv(P.INTERVAL_ENV, "soon")
    assert P.every().seconds == P.DEFAULT_INTERVAL
    monkeypatch.delenv(P.INTERVAL_ENV)
    assert P.every().seconds == P.DEFAULT_INTERVAL
    clock = _Clock()
    never = P.every(0, clock=clock)
    clock.now += 1e6
    assert not never()


class _EvictingTracker:
    """A status store past spark.ui.retainedStages: skipped stages are gone, even new ones."""

    def __init__(self):
        self.stages, self.jobs = {}, {}

    def run_job(self, job, stages):
        """`stages`: {stage id: name, or None for a skipped stage the store has dropped}."""
        self.jobs[job] = list(stages)
        for stage, name in stages.items():
            if name is not None:
                self.stages[stage] = SimpleNamespace(stageId=stage, name=name, numTasks=2, numCompletedTasks=2,
                                                     numActiveTasks=0, numFailedTasks=0, currentAttemptId=0)

    def getStageInfo(self, stage):
        return self.stages.get(stage)

    def getJobIdsForGroup(self, group):
        return list(self.jobs)

    def getActiveJobsIds(self):
        return []

    def getJobInfo(self, job):
        return SimpleNamespace(stageIds=self.jobs[job]) if job in self.jobs else None

    def getActiveStageIds(self):
        return []


def test_als_half_steps_are_counted_past_stages_the_status_store_dropped():
    tracker = _EvictingTracker()
    reporter = P.ProgressReporter(SimpleNamespace(statusTracker=lambda: tracker, _jsc=object()), "train", interval=1)
    reporter._job_details = False
    tracker.run_job(0, {0: "count at train.py:30", 1: "count at train.py:30"})
    reporter.expect_als(2)
    half_step = "flatMap at ALS.scala:1782"
    tracker.run_job(1, {2: None, 3: None, 4: half_step, 5: None, 6: half_step})
    tracker.run_job(2, {7: None, 8: None, 9: half_step, 10: None, 11: half_step})
    line = reporter.report()
    assert reporter.als_half_steps == 4 and line.endswith("ALS iterations done (4/4 half-steps)"), line
