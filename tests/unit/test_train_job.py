"""The train job on interactions as preprocess writes them (indices only, the IDs in the ID tables):
the split and tuning's validation split draw by ID, and what it writes carries no IDs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from musicrec import columns as C
from musicrec import evaluation, tuning
from musicrec.errors import PipelineError
from support import job_module

USERS, SONGS = 24, 20


def written_like_preprocess(spark, folder):
    """Play counts with timestamps as index-only parquet, and the ID tables (indices in reverse
    order of the IDs, so that anything hashing indices instead of IDs would differ)."""
    rows = [(USERS - 1 - u, SONGS - 1 - s, float(1 + (u * s) % 7), 1_000 + u * SONGS + s)
            for u in range(USERS) for s in range(SONGS) if (u + s) % 3]
    spark.createDataFrame(rows, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {C.RATING} double, {C.TIMESTAMP} long") \
        .write.parquet(str(folder / "interactions"))
    spark.createDataFrame([(f"u{u}", USERS - 1 - u) for u in range(USERS)], f"{C.USER_ID} string, {C.USER_INDEX} int") \
        .write.parquet(str(folder / "user_ids"))
    spark.createDataFrame([(f"s{s}", SONGS - 1 - s) for s in range(SONGS)], f"{C.ITEM_ID} string, {C.ITEM_INDEX} int") \
        .write.parquet(str(folder / "song_ids"))
    return len(rows)


def train_args(folder, **overrides):
    args = dict(run_dir=str(folder / "run"), interactions=str(folder / "interactions"), user_ids=str(folder / "user_ids"),
                song_ids=str(folder / "song_ids"), feedback="implicit", split="temporal", test_fraction=0.2, seed=42,
                rank=2, reg_param=0.1, max_iter=2, alpha=1.0, tune=True, refit=False, k=5, ranking_users=8)
    return SimpleNamespace(**{**args, **overrides})


def test_tuning_a_temporal_split_samples_validation_users_by_id(spark, tmp_path, monkeypatch):
    rows = written_like_preprocess(spark, tmp_path)
    monkeypatch.setattr(tuning, "IMPLICIT_GRID", {"rank": (2,), "regParam": (0.01, 0.1), "alpha": (1.0,)})
    sampled_by = []
    real_sample = evaluation.ranking_sample

    def watched(frame, max_users, user_ids=None):
        sampled_by.append(C.USER_ID in frame.columns or user_ids is not None)
        return real_sample(frame, max_users, user_ids=user_ids)

    monkeypatch.setattr(evaluation, "ranking_sample", watched)
    facts = job_module("train").work(train_args(tmp_path))

    assert len(facts["tuning"]) == 2 and all(math.isfinite(row["score"]) for row in facts["tuning"])
    # More validation users than ranking_users: sampled, and by user ID (stable across snapshots).
    assert sampled_by and all(sampled_by)
    assert facts["train_rows"] + facts["test_rows"] == rows
    for side in ("train_path", "test_path"):
        assert spark.read.parquet(facts[side]).columns == [C.USER_INDEX, C.ITEM_INDEX, C.RATING, C.TIMESTAMP]


def test_train_without_id_tables_says_what_to_clear(spark, tmp_path):
    written_like_preprocess(spark, tmp_path)
    with pytest.raises(PipelineError, match="no user_ids_path / song_ids_path.*clear the run from preprocess on"):
        job_module("train").work(train_args(tmp_path, user_ids="", song_ids="", tune=False))
