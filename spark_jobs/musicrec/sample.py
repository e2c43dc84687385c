"""The embedded sample: a deterministic music dataset in MovieLens CSV layout.

Regenerate with `python scripts/make_sample.py`; a test checks the committed zip matches.

It has the structure real listening data has, so that collaborative filtering has something to
find: users and songs carry latent tastes (8 factors); song popularity and user activity follow
power laws; users pick songs they are likely to enjoy; ratings are mean + user and song biases +
taste match + noise, in half stars from 0.5 to 5. ALS should beat the bias baseline clearly.
Some titles hold commas and quotes, as real titles do, to exercise CSV quoting end to end.
"""

from __future__ import annotations

import csv
import io
import zipfile

N_USERS = 800
N_SONGS = 1500
N_FACTORS = 8
SEED = 20261125
FOLDER = "music-sample"
_FIXED_TIME = (2026, 1, 1, 0, 0, 0)  # zip entry dates, so the bytes are reproducible

_ADJECTIVES = "Midnight Golden Electric Silent Broken Neon Velvet Wild Paper Crystal Burning Lonely Distant Hollow Silver Restless Summer Frozen Crimson Endless".split()
_NOUNS = "Heart Highway Echo River Signal Garden Mirror Ocean Dream Shadow Letter Fire Machine Horizon City Rain Thunder Window Satellite Lullaby".split()
_BANDS = "Foxes Lanterns Harbor Pilots Static Orchard Comets Wolves Atlas Tides Embers Parade Monarchs Circuits Valley".split()


def _title(rng, i: int) -> str:
    title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if i % 37 == 0:
        title += ", Pt. 2"
    if i % 53 == 0:
        title = f'{title} ("Live" Version)'
    return title


def generate() -> tuple[list[list], list[list]]:
    """Return (ratings rows, song rows) without headers."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    users = rng.normal(0, 1, (N_USERS, N_FACTORS)) / np.sqrt(N_FACTORS)
    songs = rng.normal(0, 1, (N_SONGS, N_FACTORS)) / np.sqrt(N_FACTORS)
    user_bias = rng.normal(0, 0.35, N_USERS)
    song_bias = rng.normal(0, 0.35, N_SONGS)
    popularity = 1.0 / np.arange(1, N_SONGS + 1) ** 0.8
    rng.shuffle(popularity)
    activity = np.clip((rng.pareto(1.3, N_USERS) + 1) * 25, 20, 400).astype(int)

    ratings = []
    start = 1_420_070_400  # 2015-01-01
    for u in range(N_USERS):
        affinity = songs @ users[u]
        weights = popularity * np.exp(2.0 * affinity)
        chosen = rng.choice(N_SONGS, size=activity[u], replace=False, p=weights / weights.sum())
        raw = 3.4 + user_bias[u] + song_bias[chosen] + 2.5 * affinity[chosen] + rng.normal(0, 0.45, len(chosen))
        stars = np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
        stamps = start + rng.integers(0, 10 * 365 * 86400, len(chosen))
        ratings += [[u + 1, int(s) + 1, float(r), int(t)] for s, r, t in zip(chosen, stars, stamps)]

    artists = [f"The {rng.choice(_ADJECTIVES)} {rng.choice(_BANDS)}" for _ in range(N_SONGS // 6)]
    song_rows = [[i + 1, _title(rng, i + 1), artists[int(rng.integers(len(artists)))]] for i in range(N_SONGS)]
    return ratings, song_rows


def _csv_bytes(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def build_zip() -> bytes:
    ratings, song_rows = generate()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in (
            ("ratings.csv", _csv_bytes(["userId", "songId", "rating", "timestamp"], ratings)),
            ("songs.csv", _csv_bytes(["songId", "title", "artist"], song_rows)),
            ("README.txt", (__doc__ or "").encode("utf-8")),
        ):
            info = zipfile.ZipInfo(f"{FOLDER}/{name}", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compresslevel=9)
    return out.getvalue()
