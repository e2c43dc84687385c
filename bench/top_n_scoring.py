"""The recommend step's scoring in one process, by precision and chunk size: what top-N costs
per user, without Spark, on a model of a given shape.

    .venv/bin/python bench/top_n_scoring.py                    # 25M plays' shape: 59,000 songs
    .venv/bin/python bench/top_n_scoring.py --songs 19000      # 5M plays' shape
    .venv/bin/python bench/top_n_scoring.py --aligned          # users and songs share a direction

Random users (the default) are the worst case for top-N's head (top_n_scoring.HEAD_SONGS): it settles
almost none of them, so every song is scored. ALS's factors share a popularity direction (users
and popular songs point the same way, as with --aligned), where the head settles most users.

Runs musicrec.top_n_scoring.score_batches (the code the Python workers run: matrix product, seen
songs masked, best 10 kept) on a synthetic model (rank 10, power-law song popularity, 5-300
seen songs per user) for each setting, twice, and prints the second round: seconds per 1,000
users and the ratio to the first setting (the code before: double precision, 20M scores a chunk).
One process uses one core; the step runs one such process per core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spark_jobs"))

SETTINGS = [("float64", 20_000_000), ("float32", 20_000_000), ("float64", 2_000_000), ("float32", 2_000_000)]


def synthetic(songs: int, users: int, rank: int = 10, seed: int = 0, aligned: bool = False):
    """(the songs, as song_arrays takes them; one pandas batch of users)."""
    import numpy as np
    import pandas as pd

    from musicrec import columns as C
    from musicrec.top_n_scoring import SEEN

    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, songs + 1) ** 0.6  # position 0 most popular, as StringIndexer orders
    vectors = rng.normal(size=(songs, rank)) * (0.3 + 3 * popularity[:, None])
    features = rng.normal(size=(users, rank))
    if aligned:
        shared = np.eye(rank)[0]
        vectors = (0.3 + 3 * popularity[:, None]) * (shared + 0.5 * rng.normal(size=(songs, rank)))
        features = shared + 0.5 * rng.normal(size=(users, rank))
    catalogue = (np.arange(songs, dtype=np.int64), vectors, np.zeros(songs))  # song_arrays' arguments
    chances = popularity / popularity.sum()
    batch = pd.DataFrame({
        C.USER_INDEX: np.arange(users, dtype=np.int32),
        "features": list(features),
        "offset": np.zeros(users),
        SEEN: [rng.choice(songs, size=rng.integers(5, 300), replace=False, p=chances) for _ in range(users)],
    })
    return catalogue, batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--songs", type=int, default=59_000)
    parser.add_argument("--users", type=int, default=6_000)
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--aligned", action="store_true", help="users and popular songs share a direction, as ALS's do")
    args = parser.parse_args()

    import numpy as np

    from musicrec import top_n_scoring as scoring

    catalogue, batch = synthetic(args.songs, args.users, aligned=args.aligned)
    results = {}
    for round_ in range(2):  # the first round warms numpy and the caches up
        for dtype, chunk_scores in SETTINGS:
            scoring.SCORE_DTYPE = dtype
            songs = scoring.song_arrays(*catalogue)
            started = time.perf_counter()
            rows = sum(len(frame) for frame in scoring.score_batches([batch], songs, args.top_n, chunk_scores))
            seconds = time.perf_counter() - started
            assert rows == args.users * args.top_n, rows
            if round_:
                results[f"{dtype}, {chunk_scores:,} scores a chunk"] = round(seconds * 1000 / args.users, 4)
    first = next(iter(results.values()))
    print(f"{args.users} users x {args.songs} songs{', aligned' if args.aligned else ''}, top {args.top_n}, numpy {np.__version__}")
    for name, per_thousand in results.items():
        print(f"  {name:32s} {per_thousand:7.4f} s per 1,000 users   {first / per_thousand:4.2f}x")
    print("TOP_N_SCORING " + json.dumps({"songs": args.songs, "users": args.users, "aligned": args.aligned,
                                         "seconds_per_1000_users": results}))


if __name__ == "__main__":
    main()
