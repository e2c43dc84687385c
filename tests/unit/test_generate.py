"""bench/generate.py: synthetic MovieLens-layout datasets (no Spark; the pipeline's reader was
checked by hand, see the generator's docstring for the model)."""

from __future__ import annotations

import importlib.util
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from support import ROOT

_spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

# Ratings: 100 rows per user on average over 3,000 songs, so both sampling paths run (users
# above 3,000 / 40 = 75 rows take the Gumbel top-k path, the others draw-and-deduplicate).
RATINGS = dict(interactions=20_000, kind="ratings", users=200, songs=3_000)
PLAYS = dict(interactions=5_000, kind="plays", users=200, songs=300)


def read(path):
    with zipfile.ZipFile(path) as zf:
        names = {name.rsplit("/", 1)[-1]: name for name in zf.namelist()}
        raw = {short: zf.read(name) for short, name in names.items()}
    return raw, pd.read_csv(io.BytesIO(raw["ratings.csv"])), pd.read_csv(io.BytesIO(raw["songs.csv"]))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gen")
    out = {}
    for name, spec in (("ratings", RATINGS), ("plays", PLAYS)):
        facts = gen.generate(folder / f"{name}.zip", seed=1, **spec)
        out[name] = (facts, *read(folder / f"{name}.zip"))
    return out


@pytest.mark.parametrize("name", ["ratings", "plays"])
def test_layout_and_counts(made, name):
    facts, raw, ratings, songs = made[name]
    assert sorted(raw) == ["ratings.csv", "songs.csv"]
    assert raw["ratings.csv"].startswith(b"userId,movieId,rating,timestamp\n")
    assert raw["songs.csv"].startswith(b"songId,title,artist\n")
    spec = RATINGS if name == "ratings" else PLAYS
    assert len(ratings) == facts["rows"] == spec["interactions"]
    assert facts["users"] == ratings.userId.nunique() == spec["users"]  # every user has a row
    assert len(songs) == facts["songs"] == spec["songs"] and songs.songId.is_unique
    assert facts["bytes"] > 0 and facts["seconds"] >= 0
    assert not ratings.duplicated(["userId", "movieId"]).any()
    assert set(ratings.movieId) <= set(songs.songId)
    assert songs.title.str.fullmatch(r"Song \d+").all() and songs.artist.str.fullmatch(r"Artist \d+").all()
    assert 1 < songs.artist.nunique() < len(songs)  # songs grouped into artists


def test_ratings_on_the_half_grid(made):
    _, _, ratings, _ = made["ratings"]
    values = ratings.rating.to_numpy()
    assert values.min() >= 0.5 and values.max() <= 5.0
    assert np.array_equal(values * 2, np.round(values * 2))
    assert len(np.unique(values)) >= 8  # the scale is used, not a few values
    assert ratings.groupby("userId").size().min() >= 20  # MovieLens users have at least 20 ratings


def test_play_counts_are_positive_integers(made):
    _, raw, ratings, _ = made["plays"]
    text = raw["ratings.csv"].decode().splitlines()[1:]
    assert all(line.split(",")[2].isdigit() for line in text)
    assert ratings.rating.min() >= 1 and ratings.rating.max() > 10  # heavy-tailed counts


@pytest.mark.parametrize("name", ["ratings", "plays"])
def test_activity_and_popularity_are_skewed(made, name):
    _, _, ratings, songs = made[name]
    per_user = ratings.userId.value_counts().to_numpy()  # descending
    assert per_user[: len(per_user) // 10].sum() > 0.3 * len(ratings)
    per_song = ratings.movieId.value_counts().reindex(songs.songId, fill_value=0).sort_values(ascending=False).to_numpy()
    assert per_song[: len(per_song) // 10].sum() > 0.3 * len(ratings)


@pytest.mark.parametrize("name", ["ratings", "plays"])
def test_timestamps_increase_per_user(made, name):
    _, _, ratings, _ = made[name]
    assert (ratings.userId.diff().dropna() >= 0).all()  # grouped by user
    steps = ratings.groupby("userId").timestamp.diff().dropna()
    assert (steps > 0).all()
    assert ratings.timestamp.between(gen.WINDOW_START, gen.WINDOW_END).all()


def test_deterministic_for_a_seed(made, tmp_path):
    for name, spec in (("ratings", RATINGS), ("plays", PLAYS)):
        gen.generate(tmp_path / f"{name}.zip", seed=1, **spec)
        again, _, _ = read(tmp_path / f"{name}.zip")
        assert again["ratings.csv"] == made[name][1]["ratings.csv"]
        assert again["songs.csv"] == made[name][1]["songs.csv"]
    gen.generate(tmp_path / "other.zip", seed=2, **RATINGS)
    other, _, _ = read(tmp_path / "other.zip")
    assert other["ratings.csv"] != made["ratings"][1]["ratings.csv"]


def test_users_short_after_drawing_are_completed_without_repeats(monkeypatch):
    """Light users whose draws with replacement give too few distinct songs are redrawn whole
    by the Gumbel path: force that with a single round of draws."""
    import functools

    rng = np.random.default_rng(3)
    genre, popularity, _, _ = gen.catalogue(rng, 600, 4)
    sampler = gen.Sampler(genre, popularity, 4)
    mix = rng.dirichlet(np.ones(4), 50)
    want = rng.integers(1, 14, 50)  # all below 600 / 40: the draw-and-deduplicate path
    monkeypatch.setattr(gen.Sampler, "_rejection", functools.partialmethod(gen.Sampler._rejection, rounds=1))
    seen = []
    gumbel = gen.Sampler._gumbel
    monkeypatch.setattr(gen.Sampler, "_gumbel", lambda self, *a: seen.append(len(a[-1])) or gumbel(self, *a))
    users, songs = sampler.sample(rng, mix, want)
    assert seen and seen[0] > 0  # some users were short
    assert np.array_equal(np.bincount(users, minlength=50), want)
    assert len(set(zip(users.tolist(), songs.tolist()))) == len(users)
    assert (np.diff(users) >= 0).all()


def test_default_sizes_follow_the_rule():
    assert gen.default_sizes(25_000_000, "ratings") == (162_000, 59_000)
    users, songs = gen.default_sizes(1_000_000, "ratings")
    assert 11_000 < users < 14_000 and 5_500 < songs < 7_000
    assert gen.default_sizes(1_000, "ratings") == (50, 50)
    assert gen.default_sizes(500, "ratings")[0] == 25  # lowered: 20 ratings per user at least


def test_impossible_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 20"):
        gen.generate(tmp_path / "x.zip", 1_000, "ratings", users=100, songs=300)
    with pytest.raises(ValueError, match="add users or songs"):
        gen.generate(tmp_path / "x.zip", 10_000, "plays", users=10, songs=100)
