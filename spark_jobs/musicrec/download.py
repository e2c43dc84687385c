"""Fetch a dataset archive: http(s) or file URLs, streamed to disk, never half-written.

Transient trouble (timeouts, resets, 5xx) is retried with exponential backoff and, where the
server honours HTTP Range, resumed from the bytes already on disk; a 4xx is final. The file
appears under its final name only when it is complete (and matches `sha256`, when given).

HTTP downloads are cached by URL and checksum (`fetch_cached`): a re-run or a retry asks the
server whether its copy changed (ETag / Last-Modified) and downloads again only if it did.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import requests

from musicrec.errors import PipelineError, TransientError

log = logging.getLogger(__name__)

ALLOWED_SCHEMES = ("http", "https", "file")
CHUNK_BYTES = 1 << 16  # a connection lost mid-chunk loses at most this much
REPORT_EVERY_BYTES = 10 << 20
DEFAULT_MAX_BYTES = 20 * (1 << 30)


@dataclass(frozen=True)
class DownloadPolicy:
    attempts: int = 5
    backoff_seconds: float = 1.0  # doubled after each failed attempt
    timeout_seconds: float = 60.0  # connect and per-read
    attempt_seconds: float = 3600.0  # one attempt's whole transfer: a slow trickle must not hang a run
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size_bytes: int
    sha256: str
    from_cache: bool = False


VALIDATORS = ("ETag", "Last-Modified")


def file_name_for(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    return name or "dataset.zip"


def download(
    url: str,
    dest_dir: Path,
    sha256: str | None = None,
    policy: DownloadPolicy = DownloadPolicy(),
    unless_unchanged: dict[str, str] | None = None,
) -> Downloaded:
    """Download `url` into `dest_dir` and return the complete file.

    With `unless_unchanged` (validators of the copy already in `dest_dir`), the request is
    conditional: when the server answers 304 the existing copy is returned, marked from_cache.
    """
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise PipelineError(
            f"dataset_url {url!r} uses scheme {scheme or '(none)'!r}; only http, https and file "
            "URLs are accepted (for a local file write file:///absolute/path.zip)"
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / file_name_for(url)
    partial = final.with_name(final.name + ".part")
    validators = {}
    if scheme == "file":
        _copy_local(url, partial, policy)
    else:
        validators = _fetch_http(url, partial, policy, unless_unchanged or {})
        if validators is None:  # 304 Not Modified: the copy we have is current
            return Downloaded(final, final.stat().st_size, _sha256_of(final), from_cache=True)
    digest = _sha256_of(partial)
    if sha256 and digest.lower() != sha256.strip().lower():
        partial.unlink(missing_ok=True)
        raise PipelineError(
            f"checksum mismatch for {url}: expected sha256 {sha256.strip().lower()}, got {digest}; "
            "the file was deleted. Check the `sha256` param or the source."
        )
    os.replace(partial, final)
    if validators:
        (dest_dir / "validators.json").write_text(json.dumps(validators))
    return Downloaded(final, final.stat().st_size, digest)


def fetch_cached(url: str, cache_root: Path, sha256: str | None = None, policy: DownloadPolicy = DownloadPolicy()) -> Downloaded:
    """`download()` through a cache keyed by URL and expected checksum.

    A cached copy is revalidated with the server (If-None-Match / If-Modified-Since) and reused
    on 304; a server that sends no validators is trusted to serve a URL's content unchanged.
    """
    entry = cache_root / _cache_key(url, sha256)
    cached, validators_file = entry / file_name_for(url), entry / "validators.json"
    is_http = urllib.parse.urlparse(url).scheme.lower() in ("http", "https")
    if is_http and cached.is_file():
        if not validators_file.is_file():
            got = Downloaded(cached, cached.stat().st_size, _sha256_of(cached), from_cache=True)
        else:
            got = download(url, entry, sha256, policy, unless_unchanged=json.loads(validators_file.read_text()))
        if got.from_cache:
            log.info("using the cached copy of %s: %s", url, cached)
        if not sha256 or got.sha256 == sha256.strip().lower():
            return got
    validators_file.unlink(missing_ok=True)
    return download(url, entry, sha256, policy)


def _cache_key(url: str, sha256: str | None) -> str:
    return hashlib.sha256(f"{url}\n{(sha256 or '').strip().lower()}".encode()).hexdigest()[:24]


def _copy_local(url: str, partial: Path, policy: DownloadPolicy) -> None:
    source = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    if not source.is_file():
        raise PipelineError(f"dataset_url {url!r}: no such file {source}")
    if source.stat().st_size > policy.max_bytes:
        raise PipelineError(f"{source} is {source.stat().st_size} bytes, over the {policy.max_bytes}-byte cap")
    shutil.copyfile(source, partial)


def _fetch_http(url: str, partial: Path, policy: DownloadPolicy, unless_unchanged: dict[str, str]) -> dict[str, str] | None:
    """Fetch into `partial`, retrying; return the response's cache validators (None: 304)."""
    partial.unlink(missing_ok=True)
    delay = policy.backoff_seconds
    for attempt in range(1, policy.attempts + 1):
        try:
            return _fetch_once(url, partial, policy, unless_unchanged)
        except TransientError as error:
            if attempt == policy.attempts:
                partial.unlink(missing_ok=True)
                raise TransientError(f"download of {url} failed after {attempt} attempts: {error}") from None
            log.warning("attempt %d of %d failed (%s); retrying in %.1f s", attempt, policy.attempts, error, delay)
            time.sleep(delay)
            delay *= 2


def _fetch_once(url: str, partial: Path, policy: DownloadPolicy, unless_unchanged: dict[str, str]) -> dict[str, str] | None:
    """One HTTP attempt, resuming from `partial` when there is something to resume."""
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else _conditional_headers(unless_unchanged)
    try:
        with requests.get(url, stream=True, timeout=policy.timeout_seconds, headers=headers) as response:
            if response.status_code == 304 and not have:
                return None
            if response.status_code == 416 and have:  # nothing left to fetch or server lost track
                partial.unlink(missing_ok=True)
                raise TransientError("server refused the resume range; starting over")
            if 400 <= response.status_code < 500:
                raise PipelineError(
                    f"download of {url} failed: HTTP {response.status_code} {response.reason}; "
                    "check the dataset_url param"
                )
            if response.status_code >= 500:
                raise TransientError(f"HTTP {response.status_code} {response.reason}")
            resumed = response.status_code == 206
            if have and not resumed:
                log.info("server ignored the Range request; downloading from the start")
                have = 0
            expected = _expected_total(response, have)
            if expected is not None and expected > policy.max_bytes:
                raise PipelineError(f"{url} is {expected} bytes, over the {policy.max_bytes}-byte size cap")
            _stream_with_deadline(response, partial, append=resumed, start=have, expected=expected, policy=policy)
            return {name: response.headers[name] for name in VALIDATORS if name in response.headers}
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
        raise TransientError(f"{type(error).__name__}: {error}") from None


def _conditional_headers(validators: dict[str, str]) -> dict[str, str]:
    headers = {}
    if "ETag" in validators:
        headers["If-None-Match"] = validators["ETag"]
    if "Last-Modified" in validators:
        headers["If-Modified-Since"] = validators["Last-Modified"]
    return headers


def _expected_total(response: requests.Response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _stream_with_deadline(response, partial: Path, **kwargs) -> None:
    """_stream(), with the connection closed when the attempt's time is up (a slow trickle)."""
    policy = kwargs["policy"]
    expired = threading.Event()

    def expire():
        expired.set()
        response.close()

    timer = threading.Timer(policy.attempt_seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        _stream(response, partial, **kwargs)
    except Exception:
        if expired.is_set():
            raise TransientError(f"transfer too slow: not done after {policy.attempt_seconds:g} s") from None
        raise
    finally:
        timer.cancel()


def _stream(response, partial: Path, append: bool, start: int, expected: int | None, policy: DownloadPolicy) -> None:
    written = start
    next_report = start + REPORT_EVERY_BYTES
    with open(partial, "ab" if append else "wb") as out:
        for chunk in response.iter_content(CHUNK_BYTES):
            out.write(chunk)
            written += len(chunk)
            if written > policy.max_bytes:
                out.close()
                partial.unlink(missing_ok=True)
                raise PipelineError(f"download exceeded the {policy.max_bytes}-byte size cap; stopped")
            if written >= next_report:
                total = f" of {expected}" if expected else ""
                log.info("downloaded %d%s bytes", written, total)
                next_report += REPORT_EVERY_BYTES
    if expected is not None and written < expected:
        raise TransientError(f"connection closed after {written} of {expected} bytes")
    log.info("downloaded %d bytes", written)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()
