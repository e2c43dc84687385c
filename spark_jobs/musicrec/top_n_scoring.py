"""Top-N by numpy: users scored against the songs in chunks of one matrix product, the songs a
user has seen masked, the n best kept with ties to the smaller index. No Spark: Spark's Python
workers run it on their users (musicrec.recommend's mapInPandas), or the job's own process runs it
on every user when they are few.

Most users never meet most songs: a head of the songs that can score highest settles them
whenever a bound proves that no other song could enter their list (song_arrays, `_settle_in_head`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from musicrec import columns as C

SCORE = "score"
RANK = "rank"
SEEN = "_seen"
TOP_N_SCHEMA = f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {SCORE} double, {RANK} int"


# User x song scores held at once by one Python process (8 MB in single precision): the product,
# the masking and the selection each pass over them, and a chunk this small stays in the CPU's
# cache. Both settings measured by bench/top_n_scoring.py (per user, against double precision in
# 20M-score chunks): 2.2x faster at 59,000 songs (25M plays' shape), 2.4x at 19,000.
SCORES_PER_CHUNK = 2_000_000
# Scores are computed in single precision, as Spark's own ALS does (its factors are floats): half
# the memory traffic of double. Equal float scores rank the smaller item_index first (compared
# before a user's offset is added: a constant per user, it cannot change their order).
SCORE_DTYPE = "float32"


class Songs(NamedTuple):
    """What scoring needs of the songs (song_arrays), sorted by index; factors in SCORE_DTYPE."""

    ids: Any  # item indices, ascending
    factors_t: Any  # (rank + 1) x songs: the factors transposed, the offsets as the last row
    position_of: Any  # item index -> position, or -1
    head: Any  # positions (ascending) of the HEAD_SONGS songs of largest norm + offset; empty: no pruning
    head_factors_t: Any  # factors_t's columns of the head
    tail_max_norm: float  # the largest factor norm outside the head
    tail_max_offset: float  # the largest offset outside the head
    tail_max_abs_offset: float  # the largest absolute offset outside the head (for the rounding margin)


class Users(NamedTuple):
    """Users' factors for scoring (user_arrays)."""

    ids: Any  # user indices (ascending, for rows_of)
    vectors: Any  # users x (rank + 1), SCORE_DTYPE: the factors and a trailing 1 (it picks the song offsets)
    offsets: Any  # SCORE_DTYPE: what a user adds to each of their scores

    def rows_of(self, user_ids):
        """The row of each of `user_ids` (any order), or -1 for a user without factors; `ids`
        must be ascending (as collected_users gives them)."""
        import numpy as np

        user_ids = np.asarray(user_ids, dtype=np.int64)
        rows = np.searchsorted(self.ids, user_ids)
        found = rows < len(self.ids)
        found[found] = self.ids[rows[found]] == user_ids[found]
        return np.where(found, rows, -1)

    def take(self, rows) -> "Users":
        """These users' `rows`, in that order."""
        return Users(self.ids[rows], self.vectors[rows], self.offsets[rows])


def user_arrays(user_ids, user_vectors, user_offsets) -> Users:
    """Users of the given indices, factors (users x rank) and offsets, in their order."""
    import numpy as np

    vectors = np.ones((len(user_ids), np.shape(user_vectors)[1] + 1), dtype=SCORE_DTYPE)
    vectors[:, :-1] = user_vectors
    return Users(np.asarray(user_ids, dtype=np.int64), vectors, np.asarray(user_offsets, dtype=SCORE_DTYPE))


# Pruning (`score_batches`): each user is first scored against the HEAD_SONGS songs that can score
# highest (largest factor norm plus offset); when their N-th best unseen score there beats what any
# other song could score (Cauchy-Schwarz: |user| x the largest other norm + the largest other
# offset), the other songs are never scored. On 25M plays' model (59,000 songs, rank 10) that
# settled 95% of users from 7% of the songs. Only from PRUNE_FROM_SONGS songs: below, the head is
# too large a share of the catalogue to pay for the second pass.
HEAD_SONGS = 4096
PRUNE_FROM_SONGS = 4 * HEAD_SONGS
# Float32 products differ from the exact ones by at most (rank + 2) * 2^-24 of |u|.|v| + |offset|
# (~1e-6 at rank 10, 3e-5 at the DAG's largest rank, 500): the bound gets 1e-4 of that, so that a
# song it rules out could not have ranked.
BOUND_MARGIN = 1e-4
# When the head has settled fewer than this share of a batch's users so far, pruning ends for the
# batch: its cost (the head's share of the songs, for every user) is then no longer repaid.
# bench/top_n_scoring.py's random users, whom no head settles, measure that worst case.
MIN_SETTLED_SHARE = 0.5


def song_arrays(item_ids, item_vectors, item_offsets) -> Songs:
    """Songs of the given indices, factors (songs x rank) and offsets, sorted by index.

    The offsets ride in the product (a user's vector gets a trailing 1): adding them to a chunk
    afterwards took longer than the product itself (timed per part on bench/top_n_scoring.py's
    synthetic model: product 15 ms, the two additions 22 ms per 1,000 users at 59,000 songs)."""
    import numpy as np

    position_of = np.full(int(item_ids.max()) + 1 if len(item_ids) else 1, -1, dtype=np.int64)  # item index -> position
    position_of[item_ids] = np.arange(len(item_ids))
    factors_t = np.ascontiguousarray(np.vstack([item_vectors.T, item_offsets.reshape(1, -1)]), dtype=SCORE_DTYPE)
    head, tail_max_norm, tail_max_offset, tail_max_abs_offset = np.zeros(0, dtype=np.int64), 0.0, 0.0, 0.0
    if len(item_ids) >= PRUNE_FROM_SONGS and len(item_ids) > HEAD_SONGS:
        norms = np.linalg.norm(factors_t[:-1].astype(np.float64), axis=0)
        offsets = factors_t[-1].astype(np.float64)
        if np.isfinite(norms).all() and np.isfinite(offsets).all():
            order = np.argsort(-(norms + offsets), kind="stable")
            head, tail = np.sort(order[:HEAD_SONGS]), order[HEAD_SONGS:]
            tail_max_norm, tail_max_offset = float(norms[tail].max()), float(offsets[tail].max())
            tail_max_abs_offset = float(np.abs(offsets[tail]).max())
    return Songs(item_ids, factors_t, position_of, head, np.ascontiguousarray(factors_t[:, head]),
                 tail_max_norm, tail_max_offset, tail_max_abs_offset)


def score_batches(batches, songs: Songs, n: int, chunk_scores: int):
    """The top-N rows (pandas, TOP_N_SCHEMA) of each batch of users (user_index, features,
    offset, SEEN): one matrix product per chunk of users, their seen songs masked, the n best kept.
    With a head (song_arrays), users first go through it, and only those it cannot settle are
    scored against every song.

    A user's offset is the same for all their songs: it cannot change their ranking, so it is
    added to the n kept scores only."""
    import numpy as np

    for batch in batches:
        users = len(batch)
        if not users:
            continue
        # Per batch, not per chunk: a chunk is a few dozen users, and pandas costs per call.
        vectors = np.array(batch["features"].tolist(), dtype=SCORE_DTYPE).reshape(users, songs.factors_t.shape[0] - 1)
        batch_users = user_arrays(batch[C.USER_INDEX].to_numpy(), vectors, batch["offset"].to_numpy())
        yield score_arrays(batch_users, seen_cells(batch[SEEN], songs.position_of), songs, n, chunk_scores)


def score_arrays(scored_users: Users, seen, songs: Songs, n: int, chunk_scores: int):
    """score_batches' work on arrays: the top-N rows (pandas, TOP_N_SCHEMA) of `scored_users`,
    whose seen songs are `seen` (SeenCells, rows in the users' order)."""
    import numpy as np
    import pandas as pd

    user_ids, user_vectors, user_offsets = scored_users
    users = len(user_ids)
    keep = min(n, len(songs.ids))
    prune = 0 < keep <= len(songs.head)  # song_arrays gives finite factors a head only
    best = np.empty((users, keep), dtype=np.int64)
    best_scores = np.empty((users, keep), dtype=SCORE_DTYPE)
    unsettled = np.arange(users)
    if prune:
        unsettled = _settle_in_head(user_vectors, seen, songs, keep, chunk_scores, best, best_scores)
    _score_rows(user_vectors, unsettled, seen, songs, keep, chunk_scores, best, best_scores)
    best_scores += np.asarray(user_offsets, dtype=SCORE_DTYPE)[:, None]  # a NaN or infinite offset: not finite, no rows
    finite = np.isfinite(best_scores)  # fewer than n unseen songs: shorter list
    # Ranks count the kept songs only: a list always starts at 1, even after an infinite score.
    ranks = np.cumsum(finite, axis=1)
    found = finite.ravel()
    return pd.DataFrame({
        C.USER_INDEX: np.repeat(np.asarray(user_ids), keep)[found].astype(np.int32),
        C.ITEM_INDEX: songs.ids[best].ravel()[found].astype(np.int32),
        SCORE: best_scores.ravel()[found].astype(np.float64),
        RANK: ranks.ravel()[found].astype(np.int32),
    })


def _settle_in_head(user_vectors, seen, songs: Songs, keep: int, chunk_scores: int, best, best_scores):
    """Fill `best` (song positions) and `best_scores` for the users whose `keep` best unseen songs
    are all in the head, provably: their keep-th best head score beats the bound of every other
    song. Returns the other users' rows (ascending), which need every song scored."""
    import numpy as np

    head_width = len(songs.head)
    head_position_of = np.full(len(songs.ids), -1, dtype=np.int64)
    head_position_of[songs.head] = np.arange(head_width)
    vectors = user_vectors[:, :-1].astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    bound = norms * songs.tail_max_norm + songs.tail_max_offset
    bound += BOUND_MARGIN * (norms * songs.tail_max_norm + songs.tail_max_abs_offset)
    finite = np.isfinite(user_vectors).all(axis=1) & np.isfinite(bound)
    candidates = np.flatnonzero(finite)  # a non-finite user's scores are NaN: scored with every song
    chunk = max(1, chunk_scores // head_width)
    # Each chunk takes every c-th user (c chunks): a batch often comes sorted by user_index, which
    # puts the most active users (who have seen most of the head) together, and the first chunk
    # decides whether pruning goes on.
    chunks = -(-len(candidates) // chunk)
    candidates = candidates[np.argsort(np.arange(len(candidates)) % max(chunks, 1), kind="stable")]
    buffer = np.empty((max(2, min(chunk, len(candidates))), head_width), dtype=SCORE_DTYPE)
    unsettled, settled_count = [np.flatnonzero(~finite)], 0
    for start in range(0, len(candidates), chunk):
        rows = candidates[start : start + chunk]
        scores = _product(user_vectors[rows], songs.head_factors_t, buffer)
        cell_rows, cell_positions = seen.cells(rows)
        in_head = head_position_of[cell_positions]
        scores[cell_rows[in_head >= 0], in_head[in_head >= 0]] = -np.inf
        positions, values = top_positions(scores, keep)
        settled = values[:, keep - 1] > bound[rows]
        best[rows[settled]] = songs.head[positions[settled]]
        best_scores[rows[settled]] = values[settled]
        unsettled.append(rows[~settled])
        settled_count += int(settled.sum())
        if settled_count < MIN_SETTLED_SHARE * (start + len(rows)):  # the head does not pay here: score the rest in full
            unsettled.append(candidates[start + chunk :])
            break
    return np.sort(np.concatenate(unsettled))


def _score_rows(user_vectors, rows, seen, songs: Songs, keep: int, chunk_scores: int, best, best_scores):
    """Fill `best` and `best_scores` for `rows` (ascending) by scoring them against every song."""
    import numpy as np

    if not len(rows):
        return
    width = len(songs.ids)
    chunk = max(1, chunk_scores // max(width, 1))
    finite = bool(np.isfinite(songs.factors_t).all())
    buffer = np.empty((max(2, min(chunk, len(rows))), width), dtype=SCORE_DTYPE)  # one allocation, reused by every chunk
    for start in range(0, len(rows), chunk):
        chunk_rows = rows[start : start + chunk]
        vectors = user_vectors[chunk_rows]
        scores = _product(vectors, songs.factors_t, buffer)
        if not (finite and np.isfinite(vectors).all()):
            scores[np.isnan(scores)] = -np.inf  # NaN ranks with the seen songs: last
        cell_rows, cell_positions = seen.cells(chunk_rows)
        scores[cell_rows, cell_positions] = -np.inf
        best[chunk_rows], best_scores[chunk_rows] = top_positions(scores, keep)


def _product(vectors, factors_t, buffer):
    """vectors @ factors_t into the first rows of `buffer` (at least two rows). One row is
    multiplied as two: numpy computes a one-row product another way (gemv, not gemm), whose
    float32 sums can differ in the last bit, and a user's scores should not depend on the chunk
    they fall in."""
    import numpy as np

    if len(vectors) == 1:
        np.matmul(np.vstack([vectors, vectors]), factors_t, out=buffer[:2])
        return buffer[:1]
    return np.matmul(vectors, factors_t, out=buffer[: len(vectors)])


class SeenCells(NamedTuple):
    """A batch's seen songs as (row, position) cells, rows ascending: row r's are
    positions[row_start[r]:row_start[r + 1]]."""

    row_start: Any
    positions: Any

    def cells(self, rows):
        """(index within `rows`, position) of the seen cells of `rows` (row numbers, any order)."""
        import numpy as np

        starts, stops = self.row_start[rows], self.row_start[rows + 1]
        counts = stops - starts
        local = np.repeat(np.arange(len(rows)), counts)
        index = np.arange(int(counts.sum())) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return local, self.positions[index]


def seen_cells(seen_lists, position_of) -> SeenCells:
    """The seen cells of each row (lists of item indices, or None); a seen song the model has no
    factors for has no cell."""
    import numpy as np

    lengths = np.array([0 if items is None else len(items) for items in seen_lists], dtype=np.int64)
    lists = [np.asarray(items, dtype=np.int64) for items in seen_lists if items is not None and len(items)]
    return seen_cells_of(lengths, np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64), position_of)


def seen_cells_of(lengths, items, position_of) -> SeenCells:
    """seen_cells of rows given as their lengths and their item indices one row after another."""
    import numpy as np

    lengths = np.asarray(lengths, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    if not len(items):
        return SeenCells(np.zeros(len(lengths) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    # Filtering ~20M cells by mask costs a second; the common case (every seen song has factors) needs none.
    known = (items >= 0) & (items < len(position_of))
    positions = position_of[items] if known.all() else np.where(known, position_of[np.where(known, items, 0)], -1)
    scored = positions >= 0
    if scored.all():
        return SeenCells(np.concatenate([[0], np.cumsum(lengths)]), positions)
    kept = np.bincount(np.repeat(np.arange(len(lengths)), lengths)[scored], minlength=len(lengths))
    return SeenCells(np.concatenate([[0], np.cumsum(kept)]), positions[scored])


def grouped_by_user(user_ids, item_ids):
    """Interaction pairs grouped by user: (the users ascending, how many items each has, the items
    in the users' order; a user's items keep their order)."""
    import numpy as np

    order = np.argsort(user_ids, kind="stable")
    users, items = np.asarray(user_ids)[order], np.asarray(item_ids)[order]
    if not len(users):
        return users, np.zeros(0, dtype=np.int64), items
    starts = np.flatnonzero(np.concatenate([[True], users[1:] != users[:-1]]))
    return users[starts], np.diff(np.append(starts, len(users))), items


BOUND_SAMPLE = 1024  # songs whose keep-th best score bounds a row's cut-off from below


def top_positions(scores, keep: int):
    """Per row, the positions of the `keep` highest scores, best first, and those scores; equal
    scores go to the smaller position. Scores must not be NaN (-inf is fine: it ranks last).

    argpartition over every song is the slow part of top-N, and keeps an arbitrary subset of the
    songs tied at the cut-off. Instead: the keep-th best score among the first BOUND_SAMPLE
    positions (the popular songs, which tend to score high) is a lower bound of the row's keep-th
    best, so only the songs scoring at least that are candidates; they are few, and are sorted
    exactly by (score descending, position). bench/: ~6x faster than a full argpartition with tie
    handling on a 340 x 59,000 chunk. The candidates are found through the flat index, and sorted
    on two keys, relying on a stable sort for the position: half the time of a 2-D nonzero and a
    three-key sort (150 -> 67 ms on a 1,052 x 19,000 chunk, 5M plays' shape).
    """
    import numpy as np

    rows, width = scores.shape
    keep = min(keep, width)
    if rows == 0 or keep == 0:
        return np.zeros((rows, keep), dtype=np.int64), np.zeros((rows, keep), dtype=scores.dtype)
    sample = scores[:, : max(keep, min(BOUND_SAMPLE, width))]
    bound = np.partition(sample, sample.shape[1] - keep, axis=1)[:, sample.shape[1] - keep]
    # At least keep per row, by construction; flat indices come row by row, positions ascending.
    flat = np.flatnonzero(scores >= bound[:, None])
    row_of, position = np.divmod(flat, width)
    value = scores.ravel()[flat]
    order = np.lexsort((-value, row_of))  # stable: equal scores keep the smaller position first
    row_of, position, value = row_of[order], position[order], value[order]
    starts = np.searchsorted(row_of, np.arange(rows))
    taken = np.arange(len(row_of)) - starts[row_of] < keep
    return position[taken].reshape(rows, keep), value[taken].reshape(rows, keep)
