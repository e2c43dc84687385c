"""Synthetic MovieLens-layout music datasets of any size, for speed benchmarks.

    .venv/bin/python bench/generate.py --interactions 5000000 --kind ratings --out bench/data/gen-5m.zip
    .venv/bin/python bench/generate.py --interactions 1000000 --kind plays --out bench/data/gen-1m-plays.zip --seed 2

Writes a zip the pipeline reads as format `movielens-csv` (spark_jobs/musicrec/datasets/movielens.py):
  <stem>/ratings.csv  userId,movieId,rating,timestamp   (one row per user and song, grouped by user,
                                                        in time order within a user)
  <stem>/songs.csv    songId,title,artist              ("Song 123", "Artist 45"; every song, played or not)
With --kind plays, `rating` holds a positive integer play count: run the DAG with feedback=implicit
(the format itself says explicit, scale 0.5-5.0, which would reject counts above 5).
Generated data belongs in bench/data/, which must never be committed.

Sizes. Unless given, users = 162_000 * (n / 25e6) ** 0.8 and songs = 59_000 * (n / 25e6) ** 0.7
(rounded, at least 50 each), so 25M interactions look like ML-25M (162,541 users x 59,047 movies):
  1M -> 12,336 users x 6,199 songs; 5M -> 44,703 x 19,124; 25M -> 162,000 x 59,000.
For ratings every user has at least 20 rows (as in MovieLens), for plays at least 1; the default
user count is lowered to interactions // that minimum when needed (tiny sizes).

Model (all draws from one numpy Generator seeded with --seed, so a seed gives the same bytes):
  activity    per-user row counts: the minimum plus the rest shared in proportion to Lomax
              (Pareto II) weights, tail exponent 1.2, capped at min(2% of the rows, 60% of the
              songs) per user (ML-25M's heaviest user rated 54% of the movies). At 1M ratings:
              median 34, mean 81, max 3,719; the top 10% of users hold 54% of the rows.
  popularity  song weights Zipf, weight of popularity rank r = 1 / r ** 1.0, ranks shuffled over
              IDs. At 1M ratings the top 1% of songs get 20% of the rows, the top 10% 51%.
  tastes      songs fall into G genres (G = 20, fewer for tiny catalogues; genre sizes vary) and
              artists (about 8 songs each, within one genre). A user's genre mix is
              0.9 * Dirichlet(0.5 * G * genre share) + 0.1 * genre share. Which songs a user has:
              weighted sampling without replacement with weight mix[u, genre(i)] * popularity[i] /
              popularity of genre(i): the expected marginal is the Zipf popularity, and a user's
              songs cluster in the genres they like (exact successive sampling: draws with
              replacement, first k distinct kept; heavy users by Gumbel top-k over the catalogue).
  factors     d = 16; song y_i = centre[genre(i)] + 0.8 * N(0, I), user x_u = mix[u] @ centre +
              0.8 * N(0, I); both scaled so that x_u . y_i has std FACTOR_STD = 0.6 over random
              (user, song) pairs (its mean is higher on played pairs: users play what they like).
  ratings     rating = clip(round_to_half(MU + b_u + b_i + x_u . y_i + e)), in [0.5, 5.0];
              MU = 3.3, b_u ~ N(0, 0.35), b_i ~ N(0, 0.30), e ~ N(0, 0.8). On played pairs the
              mean is 3.51 and the std 1.02 (1M), close to MovieLens (3.53 / 1.06); x_u . y_i has
              std 0.61 there, so the taste signal is about 0.6 / 0.8 of the noise.
  plays       count = 1 + Poisson(exp(0.7 + b_u + b_i + 1.5 * x_u . y_i + e)), same b_u, b_i,
              factors, e ~ N(0, 0.8): median about 4, 99th percentile about 60, max 1,196 at 200k.
  timestamps  epoch seconds in 2019-01-01 .. 2024-01-01: each user is active during a random
              span (at least a day) of that window; their rows are strictly increasing in time.

Memory stays bounded: users are processed in chunks of about CHUNK_ROWS rows and each chunk's
CSV bytes are built with numpy (no per-row Python) and streamed into the zip entry.
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

KINDS = ("ratings", "plays")
ML25M_ROWS, ML25M_USERS, ML25M_SONGS = 25e6, 162_000, 59_000
USERS_EXPONENT, SONGS_EXPONENT, MIN_ENTITIES = 0.8, 0.7, 50
MIN_ROWS_PER_USER = {"ratings": 20, "plays": 1}
PARETO_TAIL = 1.2  # user activity
MAX_USER_SHARE_OF_ROWS, MAX_USER_SHARE_OF_SONGS = 0.02, 0.6
ZIPF_EXPONENT = 1.0  # song popularity
GENRES, SONGS_PER_ARTIST, FACTORS = 20, 8, 16
TASTE_CONCENTRATION, TASTE_FLOOR = 0.5, 0.1
FACTOR_NOISE, FACTOR_STD = 0.8, 0.6
MU, USER_BIAS_STD, SONG_BIAS_STD, NOISE_STD = 3.3, 0.35, 0.30, 0.8
PLAYS_LOG_BASE, PLAYS_FACTOR_WEIGHT = 0.7, 1.5
WINDOW_START, WINDOW_END, MIN_SPAN = 1_546_300_800, 1_704_067_200, 86_400  # 2019-01-01, 2024-01-01 UTC
CHUNK_ROWS = 1_000_000
GUMBEL_CELLS = 4_000_000  # users x songs per block of the Gumbel top-k path
HEAVY_FRACTION = 1 / 40  # users wanting more than this share of the catalogue go the Gumbel way
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entry dates: the same seed gives the same zip bytes
RATING_TEXT = np.frombuffer(b"".join(f"{v / 2:.1f}".encode() for v in range(1, 11)), np.uint8).reshape(10, 3)


def default_sizes(interactions: int, kind: str) -> tuple[int, int]:
    """Users and songs for `interactions` rows (see the module docstring)."""
    scale = interactions / ML25M_ROWS
    users = max(MIN_ENTITIES, round(ML25M_USERS * scale**USERS_EXPONENT))
    songs = max(MIN_ENTITIES, round(ML25M_SONGS * scale**SONGS_EXPONENT))
    return max(1, min(users, interactions // MIN_ROWS_PER_USER[kind])), songs


def user_caps(interactions: int, songs: int, minimum: int) -> int:
    return max(minimum, min(int(MAX_USER_SHARE_OF_ROWS * interactions), int(MAX_USER_SHARE_OF_SONGS * songs)))


def activity(rng, interactions: int, users: int, minimum: int, cap: int) -> np.ndarray:
    """Rows per user: `minimum` each, the rest in proportion to Lomax weights, none above `cap`,
    summing to exactly `interactions` (water-filling: capped users' excess goes to the others)."""
    weights = rng.pareto(PARETO_TAIL, users)  # Lomax: many users stay at the minimum
    counts = np.full(users, minimum, np.int64)
    room = cap - minimum
    remaining = interactions - users * minimum
    open_ = np.ones(users, bool)
    while remaining > 0:
        share = np.floor(weights * (remaining / weights[open_].sum())).astype(np.int64)
        share[~open_] = 0
        share = np.minimum(share, room - (counts - minimum))
        counts += share
        remaining -= int(share.sum())
        full = counts - minimum >= room
        if not (open_ & full).any() and remaining < open_.sum():
            # Left over from flooring: one more row each for the heaviest users with room.
            order = np.argsort(-np.where(open_ & ~full, weights, -np.inf), kind="stable")[:remaining]
            counts[order] += 1
            remaining = 0
        open_ &= ~full
    return counts


def catalogue(rng, songs: int, genres: int):
    """Song genre, popularity weight and artist (0-based), artists within one genre."""
    genre_size = rng.dirichlet(np.full(genres, 2.0))
    genre = rng.choice(genres, songs, p=genre_size)
    genre[:genres] = np.arange(genres)  # no empty genre (songs >= 15 * genres)
    rank = rng.permutation(songs) + 1
    popularity = 1.0 / rank**ZIPF_EXPONENT
    artists = max(genres, songs // SONGS_PER_ARTIST)
    per_genre = (artists - np.arange(genres) + genres - 1) // genres  # artists g, g+G, g+2G, ... < artists
    slot = np.floor(rng.random(songs) ** 2 * per_genre[genre]).astype(np.int64)  # skewed: some artists larger
    artist = genre + genres * slot
    return genre, popularity, artist, artists


class Sampler:
    """Weighted sampling without replacement of songs per user, weights mix[u, genre] * within."""

    def __init__(self, genre, popularity, genres):
        self.songs = len(genre)
        mass = np.bincount(genre, popularity, genres)
        self.genre_share = mass / mass.sum()
        self.within = popularity / mass[genre]  # sums to 1 in each genre
        self.by_genre = np.argsort(genre, kind="stable")
        sorted_genre = genre[self.by_genre]
        cum = np.zeros(self.songs)
        for g in range(genres):  # per-genre CDF, offset by the genre: one flat searchsorted
            members = sorted_genre == g
            cum[members] = g + np.cumsum(self.within[self.by_genre[members]])
            cum[np.flatnonzero(members)[-1]] = g + 1  # no rounding gap into the next genre
        self.flat_cdf = cum
        self.genre = genre
        self.genres = genres

    def sample(self, rng, mix: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows (user index into mix, song) with want[u] distinct songs per user, grouped by user
        in draw order."""
        heavy = want > HEAVY_FRACTION * self.songs
        users = np.arange(len(want))
        light_users, light_songs, short = self._rejection(rng, mix, want, users[~heavy])
        todo = np.concatenate([users[heavy], short])
        have_u, have_s = light_users, light_songs
        if len(todo):
            keep = ~np.isin(light_users, short)  # short users are redrawn whole, exactly
            g_users, g_songs = self._gumbel(rng, mix, want, np.sort(todo))
            have_u = np.concatenate([light_users[keep], g_users])
            have_s = np.concatenate([light_songs[keep], g_songs])
        order = np.argsort(have_u, kind="stable")
        return have_u[order], have_s[order]

    def _draw(self, rng, mix, who: np.ndarray) -> np.ndarray:
        """One song per entry of `who` (user indices), with replacement."""
        cum_mix = np.cumsum(mix, axis=1)
        cum_mix[:, -1] = 1.0
        flat = (np.arange(len(mix))[:, None] + cum_mix).ravel()
        slot = np.searchsorted(flat, who + rng.random(len(who)) * (1 - 1e-12), side="right")
        genre = np.minimum(slot - who * self.genres, self.genres - 1)
        pos = np.searchsorted(self.flat_cdf, genre + rng.random(len(who)) * (1 - 1e-12), side="right")
        return self.by_genre[np.minimum(pos, self.songs - 1)]

    def _rejection(self, rng, mix, want, users, rounds: int = 4):
        """Draw with replacement and keep each user's first want[u] distinct songs; users still
        short after `rounds` rounds are returned for the Gumbel path."""
        songs = self.songs
        kept = np.empty(0, np.int64)  # keys user * songs + song, in draw order
        need = want[users]
        active = users
        factor = 1.3
        for _ in range(rounds):
            if not len(active):
                break
            who = np.repeat(active, np.ceil(need * factor).astype(np.int64) + 2)
            keys = np.concatenate([kept, who * songs + self._draw(rng, mix, who)])
            unique, first = np.unique(keys, return_index=True)
            unique = unique[np.argsort(first, kind="stable")]  # draw order (kept ones first)
            owner = unique // songs
            order = np.argsort(owner, kind="stable")
            unique, owner = unique[order], owner[order]
            start = np.searchsorted(owner, owner, side="left")
            rank = np.arange(len(owner)) - start
            kept = unique[rank < want[owner]]
            got = np.bincount(kept // songs, minlength=len(want))
            active = users[got[users] < want[users]]
            need = want[active] - got[active]
            factor *= 2
        return kept // songs, kept % songs, active

    def _gumbel(self, rng, mix, want, users):
        songs = self.songs
        log_within = np.log(self.within)
        out_u, out_s = [], []
        block = max(1, GUMBEL_CELLS // songs)
        for lo in range(0, len(users), block):
            who = users[lo : lo + block]
            keys = np.log(mix[who][:, self.genre]) + log_within + rng.gumbel(size=(len(who), songs))
            for row, u in enumerate(who):
                k = int(want[u])
                top = np.argpartition(-keys[row], k - 1)[:k] if k < songs else np.arange(songs)
                top = top[np.argsort(-keys[row][top], kind="stable")]
                out_u.append(np.full(k, u))
                out_s.append(top)
        return np.concatenate(out_u), np.concatenate(out_s)


def int_columns(values: np.ndarray) -> np.ndarray:
    """Decimal digits of non-negative ints as a (n, width) uint8 matrix, leading zeros as 0 bytes."""
    values = values.astype(np.int64)
    width = max(1, len(str(int(values.max())))) if len(values) else 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers) % 10 + 48
    digits[(values[:, None] < powers) & (powers > 1)] = 0
    return digits.astype(np.uint8)


def csv_bytes(columns: list[np.ndarray]) -> bytes:
    """Rows of byte matrices joined by ',' and ended by '\\n'; 0 bytes (padding) dropped."""
    n = len(columns[0])
    parts = []
    for i, col in enumerate(columns):
        parts.append(col)
        parts.append(np.full((n, 1), ord(",") if i < len(columns) - 1 else ord("\n"), np.uint8))
    table = np.hstack(parts)
    return table[table != 0].tobytes()


def _scaled_factors(rng, mix, genre, centres):
    users, songs = len(mix), len(genre)
    x = mix @ centres + FACTOR_NOISE * rng.standard_normal((users, centres.shape[1]))
    y = centres[genre] + FACTOR_NOISE * rng.standard_normal((songs, centres.shape[1]))
    pairs = 200_000
    probe = np.einsum("ij,ij->i", x[rng.integers(0, users, pairs)], y[rng.integers(0, songs, pairs)])
    scale = np.sqrt(FACTOR_STD / probe.std())
    return (x * scale).astype(np.float32), (y * scale).astype(np.float32)


def generate(path, interactions: int, kind: str = "ratings", seed: int = 1, users: int | None = None, songs: int | None = None) -> dict:
    """Write the dataset zip at `path` and return facts: rows, users, songs, artists, seconds, bytes."""
    started = time.perf_counter()
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    interactions = int(interactions)
    default_users, default_songs = default_sizes(interactions, kind)
    users = int(users or default_users)
    songs = int(songs or default_songs)
    minimum = MIN_ROWS_PER_USER[kind]
    cap = user_caps(interactions, songs, minimum)
    if users < 1 or songs < minimum or interactions < users * minimum:
        raise ValueError(f"{interactions} {kind} cannot give each of {users} users at least {minimum} rows")
    if users * min(cap, songs) < interactions:
        raise ValueError(f"{users} users x at most {min(cap, songs)} songs each hold fewer than {interactions} rows; add users or songs")

    rng = np.random.default_rng(seed)
    genres = max(1, min(GENRES, songs // 15))
    genre, popularity, artist, artists = catalogue(rng, songs, genres)
    sampler = Sampler(genre, popularity, genres)
    share = sampler.genre_share
    mix = (1 - TASTE_FLOOR) * rng.dirichlet(TASTE_CONCENTRATION * genres * share, users) + TASTE_FLOOR * share
    centres = rng.standard_normal((genres, FACTORS))
    x, y = _scaled_factors(rng, mix, genre, centres)
    user_bias = rng.normal(0, USER_BIAS_STD, users).astype(np.float32)
    song_bias = rng.normal(0, SONG_BIAS_STD, songs).astype(np.float32)
    counts = activity(rng, interactions, users, minimum, cap)
    span = np.maximum(MIN_SPAN, np.floor((WINDOW_END - WINDOW_START) * rng.beta(0.7, 1.5, users))).astype(np.int64)
    span = np.maximum(span, counts + 1)
    first = WINDOW_START + np.floor(rng.random(users) * (WINDOW_END - WINDOW_START - span)).astype(np.int64)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.name.removesuffix(".zip")
    partial = path.with_name(path.name + ".partial")
    zip64 = interactions * 40 > zipfile.ZIP64_LIMIT
    ends = np.cumsum(counts)
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        with zf.open(_entry(f"{folder}/ratings.csv"), "w", force_zip64=zip64) as out:
            out.write(b"userId,movieId,rating,timestamp\n")
            lo = 0
            while lo < users:
                hi = max(lo + 1, int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + CHUNK_ROWS, side="right")))
                hi = min(hi, users)
                out.write(_chunk(rng, kind, lo, hi, counts, mix, sampler, x, y, user_bias, song_bias, first, span))
                lo = hi
        with zf.open(_entry(f"{folder}/songs.csv"), "w") as out:
            out.write(b"songId,title,artist\n")
            ids = int_columns(np.arange(1, songs + 1))
            out.write(csv_bytes([ids, _prefixed(b"Song ", ids), _prefixed(b"Artist ", int_columns(artist + 1))]))
    partial.replace(path)
    seconds = time.perf_counter() - started
    return {
        "path": str(path), "kind": kind, "seed": seed, "rows": interactions, "users": users, "songs": songs,
        "artists": int(len(np.unique(artist))), "seconds": round(seconds, 2), "bytes": path.stat().st_size,
    }


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _prefixed(prefix: bytes, digits: np.ndarray) -> np.ndarray:
    head = np.broadcast_to(np.frombuffer(prefix, np.uint8), (len(digits), len(prefix)))
    return np.hstack([head, digits])


def _chunk(rng, kind, lo, hi, counts, mix, sampler, x, y, user_bias, song_bias, first, span) -> bytes:
    """CSV bytes of users lo..hi-1, rows grouped by user, timestamps increasing within a user."""
    want = counts[lo:hi]
    local, song = sampler.sample(rng, mix[lo:hi], want)
    user = local + lo
    n = len(user)
    factor = np.einsum("ij,ij->i", x[user], y[song])
    base = user_bias[user] + song_bias[song]
    noise = rng.normal(0, NOISE_STD, n).astype(np.float32)
    if kind == "ratings":
        halves = np.clip(np.rint(2 * (MU + base + factor + noise)), 1, 10).astype(np.int64)
        value = RATING_TEXT[halves - 1]
    else:
        lam = np.exp(np.minimum(PLAYS_LOG_BASE + base + PLAYS_FACTOR_WEIGHT * factor + noise, 20.0))
        value = int_columns(1 + rng.poisson(lam))
    # Timestamps: sorted uniforms over each user's span; + rank makes them strictly increasing.
    start = np.repeat(np.cumsum(want) - want, want)
    rank = np.arange(n) - start
    u01 = np.sort(local + rng.random(n)) - local  # sorted within each user (rows are grouped by user)
    stamp = first[user] + np.floor(u01 * (span[user] - want[local])).astype(np.int64) + rank
    return csv_bytes([int_columns(user + 1), int_columns(song + 1), value, int_columns(stamp)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactions", type=int, required=True)
    parser.add_argument("--kind", choices=KINDS, default="ratings")
    parser.add_argument("--out", type=Path, required=True, help="zip to write, e.g. bench/data/gen-5m.zip")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--users", type=int, help="default: scaled from --interactions (see the docstring)")
    parser.add_argument("--songs", type=int, help="default: scaled from --interactions (see the docstring)")
    args = parser.parse_args(argv)
    try:
        facts = generate(args.out, args.interactions, args.kind, args.seed, args.users, args.songs)
    except ValueError as error:
        parser.error(str(error))
    print(
        f"{facts['path']}: {facts['rows']:,} {facts['kind']} by {facts['users']:,} users of {facts['songs']:,} songs "
        f"({facts['artists']:,} artists), seed {facts['seed']}, {facts['bytes'] / 1e6:.1f} MB in {facts['seconds']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
