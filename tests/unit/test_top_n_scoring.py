"""Top-N scoring in numpy: the bounded selection against a full sort, offsets and non-finite
values, pruning by the head against scoring every song, and seen cells against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from musicrec import columns as C
from musicrec import top_n_scoring as scoring


@pytest.mark.parametrize("width, keep", [(5, 3), (40, 10), (3000, 10), (3000, 1), (2000, 2000)])
def test_top_positions_matches_a_full_sort_with_ties_and_seen_songs(width, keep):
    """The bounded selection against the obvious one (sort every row by score, then position)."""
    rng = np.random.default_rng(width + keep)
    scores = rng.integers(0, 4, size=(60, width)).astype(np.float64)  # few distinct values: ties everywhere
    scores[rng.random(scores.shape) < 0.3] = -np.inf  # seen songs
    scores[0, :] = -np.inf  # a user who has seen everything
    scores[1, : max(0, width - 2)] = -np.inf  # ... or all but two
    scores[2, :] = rng.standard_normal(width)  # no ties
    scores[3, : min(width, scoring.BOUND_SAMPLE)] = -np.inf  # every song of the bound's sample seen
    positions, values = scoring.top_positions(scores, keep)
    for row in range(len(scores)):
        expected = np.lexsort((np.arange(width), -scores[row]))[:keep]
        assert positions[row].tolist() == expected.tolist(), row
        assert values[row].tolist() == scores[row, expected].tolist(), row


def test_offsets_and_non_finite_values_in_scoring():
    """A song's offset is part of its score and rank; a user's offset is added to their scores
    without changing their order; a non-finite user offset or factor gives that user no rows, and
    a song with a NaN factor ranks last."""
    import pandas as pd

    songs = scoring.song_arrays(
        np.array([0, 1, 2, 3], dtype=np.int64),
        np.array([[1.0], [2.0], [3.0], [np.nan]]),
        np.array([5.0, 0.0, 0.0, 0.0]),  # song 0 leads on its offset alone
    )
    users = pd.DataFrame({
        C.USER_INDEX: [10, 11, 12, 13, 14],
        "features": [[1.0], [1.0], [1.0], [np.nan], [1.0]],
        "offset": [0.5, np.nan, np.inf, 0.0, -2.0],
        scoring.SEEN: [None, None, None, None, [0]],
    })
    (rows,) = scoring.score_batches([users], songs, 4, 1_000)
    got = {u: list(zip(g[C.ITEM_INDEX], g[scoring.SCORE])) for u, g in rows.groupby(C.USER_INDEX)}
    assert got == {10: [(0, 6.5), (2, 3.5), (1, 2.5)], 14: [(2, 1.0), (1, 0.0)]}


def test_a_list_starts_at_rank_one_when_an_infinite_score_is_dropped():
    import pandas as pd

    songs = scoring.song_arrays(np.array([0, 1, 2], dtype=np.int64), np.array([[1.0], [2.0], [3.0]]),
                                np.array([np.inf, 0.0, 0.0]))  # song 0 scores +inf: not a score, no row
    users = pd.DataFrame({C.USER_INDEX: [7], "features": [[1.0]], "offset": [0.0], scoring.SEEN: [None]})
    (rows,) = scoring.score_batches([users], songs, 3, 1_000)
    assert list(zip(rows[C.ITEM_INDEX], rows[scoring.RANK])) == [(2, 1), (1, 2)]


@pytest.mark.parametrize("kind", ["ties", "gaussian", "offsets", "unaligned"])
def test_pruned_scoring_ranks_exactly_as_scoring_every_song(monkeypatch, kind):
    """Users settled in the head (the songs that can score highest) get the lists that scoring
    every song gives: the same songs, in the same order, ties to the smaller index; with seen
    songs in and out of the head, a user who has seen the whole head, a non-finite user, n past
    the head, and several chunks."""
    import pandas as pd

    rng = np.random.default_rng({"ties": 1, "gaussian": 2, "offsets": 3, "unaligned": 4}[kind])
    songs, users, rank = 640, 300, 4
    # Like ALS's factors: popular songs have long vectors near one shared direction, as have users.
    shared = np.eye(rank)[0]
    scale = (1.0 / np.arange(1, songs + 1) ** 0.4)[rng.permutation(songs)]
    vectors = scale[:, None] * (shared + 0.5 * rng.normal(size=(songs, rank)))
    features = shared + 0.5 * rng.normal(size=(users, rank))
    if kind == "unaligned":  # users facing away from the popular songs: the head settles none, pruning stops
        features = -shared + 0.3 * rng.normal(size=(users, rank))
    if kind == "ties":  # small whole numbers: exact ties at every cut-off
        vectors, features = np.round(vectors * 3), np.round(features * 3)
    offsets = 0.3 * scale + 0.05 * rng.normal(size=songs) if kind == "offsets" else np.zeros(songs)
    features[5] = np.nan
    seen = [rng.choice(songs, size=rng.integers(0, 60), replace=False) for _ in range(users)]
    seen[7] = None
    batch = pd.DataFrame({
        C.USER_INDEX: np.arange(users, dtype=np.int32), "features": list(features),
        "offset": rng.normal(size=users), scoring.SEEN: seen,
    })
    catalogue = (np.arange(songs, dtype=np.int64) * 3, vectors, offsets)  # indices with gaps

    scored, head_chunks = [], []
    real, real_product = scoring._score_rows, scoring._product
    monkeypatch.setattr(scoring, "_score_rows", lambda vectors, rows, *rest: scored.append(len(rows)) or real(vectors, rows, *rest))
    monkeypatch.setattr(scoring, "_product", lambda vectors, factors_t, buffer: (
        head_chunks.append(1) if factors_t.shape[1] == 64 else None) or real_product(vectors, factors_t, buffer))

    def top_n(n, prune):
        monkeypatch.setattr(scoring, "HEAD_SONGS", 64)
        monkeypatch.setattr(scoring, "PRUNE_FROM_SONGS", 128 if prune else 10**9)
        scored.clear()
        head_chunks.clear()
        rows = pd.concat(scoring.score_batches([batch], scoring.song_arrays(*catalogue), n, 64 * 50))
        return rows, sum(scored), len(head_chunks)

    head = scoring.song_arrays(*catalogue).head  # before any patch: no head at 640 songs
    assert len(head) == 0
    monkeypatch.setattr(scoring, "PRUNE_FROM_SONGS", 128)
    monkeypatch.setattr(scoring, "HEAD_SONGS", 64)
    head = scoring.song_arrays(*catalogue).head
    batch.at[9, scoring.SEEN] = head * 3  # every head song seen: settled by scoring every song
    for n in (10, 64, 100):
        full, _, _ = top_n(n, prune=False)
        pruned, fully_scored, head_products = top_n(n, prune=True)
        if n < 64 and kind != "unaligned":
            assert fully_scored < users // 2, (n, fully_scored)  # the head settled most users
        if n > 64:
            assert fully_scored == users  # n past the head: nothing to prune
        if kind == "unaligned" and n < 64:  # one chunk of 50 users settles none: the others skip the head
            assert (fully_scored, head_products) == (users, 1)
        elif n < 64:
            assert head_products == -(-(users - 1) // 50)  # every finite user went through the head
        assert pruned[C.ITEM_INDEX].tolist() == full[C.ITEM_INDEX].tolist(), n
        assert pruned[C.USER_INDEX].tolist() == full[C.USER_INDEX].tolist() and pruned["rank"].tolist() == full["rank"].tolist()
        assert np.allclose(pruned["score"], full["score"], rtol=0, atol=1e-4)
    assert 5 not in set(full[C.USER_INDEX]) and len(full[full[C.USER_INDEX] == 9]) == 100


def test_pruning_never_changes_a_list_on_random_catalogues(monkeypatch):
    """Pruned against full scoring on 150 small random catalogues: ranks 0 (the popularity
    baseline: no factors, counts as offsets) to 5, whole-number ties, negative and large offsets,
    songs parallel to users (where the bound is reached), seen songs outside the catalogue, users
    with nothing seen, n past the head."""
    import pandas as pd

    rng = np.random.default_rng(0)
    settled = fully_scored = 0
    real = scoring._score_rows
    counted = []
    monkeypatch.setattr(scoring, "_score_rows", lambda vectors, rows, *rest: counted.append(len(rows)) or real(vectors, rows, *rest))
    for trial in range(150):
        songs, rank, users = int(rng.integers(40, 200)), int(rng.choice([0, 1, 2, 3, 5])), int(rng.integers(1, 60))
        mode = ["ties", "gaussian", "parallel", "negative", "large"][trial % 5]
        vectors = rng.normal(size=(songs, rank)) * (1 / np.arange(1, songs + 1) ** 0.5)[rng.permutation(songs)][:, None]
        features = rng.normal(size=(users, rank)) + (2 * np.eye(rank)[0] if rank else 0)
        offsets = np.zeros(songs)
        if mode == "ties":
            vectors, features, offsets = np.round(vectors * 3), np.round(features * 3), np.round(rng.normal(size=songs))
        if mode == "negative":
            offsets = -np.abs(rng.normal(size=songs)) * 3
        if mode == "large" or rank == 0:
            offsets = rng.integers(0, 20, size=songs).astype(float)
        if mode == "parallel" and rank:
            for song in rng.choice(songs, 10, replace=False):
                vectors[song] = features[rng.integers(users)] / np.linalg.norm(features[0]) * 0.3
        seen = [None if rng.random() < 0.2 else rng.choice(songs + 5, size=rng.integers(0, songs // 2), replace=False)
                for _ in range(users)]
        batch = pd.DataFrame({C.USER_INDEX: np.arange(users, dtype=np.int32), "features": list(features),
                              "offset": rng.normal(size=users), scoring.SEEN: seen})
        catalogue = (np.sort(rng.choice(songs * 3, songs, replace=False)).astype(np.int64), vectors, offsets)
        for n in (1, 3, 16, 40):
            lists = {}
            for prune in (False, True):
                monkeypatch.setattr(scoring, "HEAD_SONGS", 16)
                monkeypatch.setattr(scoring, "PRUNE_FROM_SONGS", 32 if prune else 10**9)
                counted.clear()
                frames = list(scoring.score_batches([batch], scoring.song_arrays(*catalogue), n, 16 * 7))
                lists[prune] = pd.concat(frames)[[C.USER_INDEX, C.ITEM_INDEX, "rank"]].values.tolist() if frames else []
            fully_scored += sum(counted)
            settled += users - sum(counted)
            assert lists[True] == lists[False], (trial, mode, rank, n)
    assert settled > fully_scored / 10, (settled, fully_scored)  # the pruned path did run


def test_seen_cells_of_any_rows():
    """Each row's seen songs as positions, for any subset of rows in any order: songs without
    factors (position -1) or beyond the catalogue have no cell; None and empty lists have none."""
    rng = np.random.default_rng(7)
    position_of = rng.permutation(50)
    position_of[rng.choice(50, 8, replace=False)] = -1  # songs the model has no factors for
    for trial in range(50):
        lists = [None if rng.random() < 0.2 else rng.choice(60, size=rng.integers(0, 12), replace=False) for _ in range(15)]
        seen = scoring.seen_cells(lists, position_of)
        rows = rng.permutation(15)[: rng.integers(0, 16)]
        local, positions = seen.cells(rows)
        expected = [(i, int(position_of[item])) for i, row in enumerate(rows) for item in (lists[row] if lists[row] is not None else [])
                    if item < 50 and position_of[item] >= 0]
        assert sorted(zip(local.tolist(), positions.tolist())) == sorted(expected), trial


def test_pairs_are_grouped_by_user_and_users_found_by_index():
    users, lengths, items = scoring.grouped_by_user(np.array([5, 2, 5, 9, 2, 5]), np.array([1, 2, 3, 4, 5, 6]))
    assert users.tolist() == [2, 5, 9] and lengths.tolist() == [2, 3, 1] and items.tolist() == [2, 5, 1, 3, 6, 4]
    empty = scoring.grouped_by_user(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32))
    assert [len(part) for part in empty] == [0, 0, 0]
    known = scoring.user_arrays(np.array([2, 5, 9]), np.ones((3, 2)), np.zeros(3))
    assert known.vectors.shape == (3, 3)
    assert known.rows_of([9, 3, 2, 10, 5, -1]).tolist() == [2, -1, 0, -1, 1, -1]
    cells = scoring.seen_cells_of(lengths, items, np.array([-1, 0, 1, 2, -1, 3, 4]))  # song 4 has no factors
    assert cells.row_start.tolist() == [0, 2, 5, 5] and cells.positions.tolist() == [1, 3, 0, 2, 4]
