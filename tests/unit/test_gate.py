"""The gate's rules, by hand: which scores are promoted, refused, forced, warned about."""

from __future__ import annotations

import math

import pytest

from musicrec.gate import decide, relative_gain


def test_relative_gain_has_the_metrics_direction():
    assert relative_gain(0.9, 1.0, lower_is_better=True) == pytest.approx(0.1)
    assert relative_gain(0.2, 0.1, lower_is_better=False) == pytest.approx(1.0)
    assert relative_gain(1.1, 1.0, lower_is_better=True) < 0


def test_first_run_that_beats_the_baseline_is_promoted():
    got = decide("rmse", True, 0.84, 0.87, None, 0.01, champion_note="first run of dataset x")
    assert got.promote and got.decision == "promoted" and got.reasons == ["first run of dataset x"]
    assert not got.warnings


def test_a_model_no_better_than_its_baseline_is_refused_with_the_numbers():
    got = decide("rmse", True, 0.8712, 0.8712, None, 0.01, baseline_name="bias baseline")
    assert not got.promote and got.decision == "refused"
    assert got.reasons == ["the model's rmse 0.8712 does not beat the bias baseline's 0.8712"]
    ndcg = decide("ndcg_at_10", False, 0.05, 0.06, None, 0.01)
    assert not ndcg.promote


def test_worse_than_the_champion_beyond_the_tolerance_is_refused():
    # 0.87 vs champion 0.84 on the same rows: 3.57% worse, tolerance 1%.
    got = decide("rmse", True, 0.86, 0.90, 0.84, 0.01, model_on_champion_rows=0.87)
    assert not got.promote
    assert "rmse 0.8700 is 3.57% worse than the champion's 0.8400" in got.reasons[0]
    within = decide("rmse", True, 0.86, 0.90, 0.84, 0.05, model_on_champion_rows=0.87)
    assert within.promote and within.decision == "promoted"
    better = decide("ndcg_at_10", False, 0.30, 0.10, 0.25, 0.0)
    assert better.promote


def test_force_promotes_and_says_what_would_have_been_refused():
    got = decide("rmse", True, 0.95, 0.90, 0.84, 0.01, force=True)
    assert got.promote and got.decision == "forced"
    assert all(reason.startswith("forced: the gate would have refused") for reason in got.reasons)
    assert len(got.reasons) == 2


def test_a_champion_that_cannot_be_compared_blocks_promotion():
    got = decide("rmse", True, 0.80, 0.90, None, 0.01, blocked="the champion cannot be scored fairly")
    assert not got.promote and got.reasons == ["the champion cannot be scored fairly"]


def test_a_barely_better_model_is_promoted_with_a_warning_and_nan_is_refused():
    got = decide("rmse", True, 0.5713, 0.5714, None, 0.01, baseline_name="bias baseline")
    assert got.promote and len(got.warnings) == 1 and "only 0.02%" in got.warnings[0]
    assert not decide("rmse", True, math.nan, 0.9, None, 0.01).promote


def test_a_zero_or_missing_reference_never_lets_a_worse_model_through():
    assert relative_gain(0.9, 0.0, lower_is_better=True) == -math.inf  # a perfect champion beats anything
    assert not decide("rmse", True, 0.8, 0.9, 0.0, 0.01).promote
    assert not decide("rmse", True, 0.8, math.nan, None, 0.01).promote
    assert not decide("rmse", True, 0.8, 0.9, math.nan, 0.01).promote


def test_a_run_older_than_the_champion_is_superseded_not_refused_unless_its_model_is_bad():
    why = "the champion (run n-2) is of the newer logical date 2026-03-02; this run's is 2026-03-01"
    got = decide("rmse", True, 0.84, 0.90, None, 0.01, superseded=why)
    assert not got.promote and got.decision == "superseded" and got.reasons == [why]
    # Forcing cannot put an older date over a newer one.
    assert decide("rmse", True, 0.84, 0.90, None, 0.01, force=True, superseded=why).decision == "superseded"
    # A model that does not beat its baseline is still refused: that date's data needs a look.
    bad = decide("rmse", True, 0.95, 0.90, None, 0.01, superseded=why)
    assert bad.decision == "refused" and "does not beat" in bad.reasons[0]
    # ... and forcing it changes nothing: a backfill cannot be published anyway.
    assert decide("rmse", True, 0.95, 0.90, None, 0.01, force=True, superseded=why).decision == "refused"
