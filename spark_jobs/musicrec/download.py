"""Fetch a dataset archive: http(s) or file URLs, streamed to disk, never half-written.

Transient trouble (timeouts, resets, 5xx, 408, 429) is retried with exponential backoff (or the
server's Retry-After) and, where the server honours HTTP Range, resumed from the bytes already on
disk: with If-Range (the first response's ETag or Last-Modified), so a file that changed meanwhile
is fetched whole again rather than spliced, and only when the 206's Content-Range starts at the
bytes we have. Any other 4xx is final. Each download writes its own uniquely named part file, so
two runs fetching one URL at once never share one; the file appears under its final name only
when it is complete (and matches `sha256`, when given).

HTTP downloads are cached by URL and checksum (`fetch_cached`): a re-run or a retry asks the
server whether its copy changed (ETag / Last-Modified) and downloads again only if it did.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from musicrec.errors import PipelineError, TransientError

log = logging.getLogger(__name__)

ALLOWED_SCHEMES = ("http", "https", "file")
CHUNK_BYTES = 1 << 16  # a connection lost mid-chunk loses at most this much
REPORT_EVERY_BYTES = 10 << 20
DEFAULT_MAX_BYTES = 20 * (1 << 30)
STALE_PART_SECONDS = 6 * 3600  # a part file untouched this long belongs to a dead process
TRANSIENT_4XX = (408, 429)  # Request Timeout, Too Many Requests: worth another try


@dataclass(frozen=True)
class DownloadPolicy:
    """Retries and limits of one download.

    The defaults fit the download task's 1-hour execution_timeout with 5 minutes to spare. One
    attempt lasts at most connect + response headers + transfer + one last read =
    60 + 60 + 600 + 60 = 780 s; 4 attempts take 3120 s; the 3 waits between them (backoff 5, 10,
    20 s, or the server's Retry-After, each capped at 60 s) at most 180 s: 3300 s = 55 min.
    `total_seconds` enforces that bound whatever the other numbers: no attempt starts unless it
    has time to finish, and a transfer's deadline never runs past it. Progress carries over
    between attempts (resume), so the transfer deadline only slices a long download.
    """

    attempts: int = 4
    backoff_seconds: float = 5.0  # doubled after each failed attempt
    timeout_seconds: float = 60.0  # connect and per-read
    attempt_seconds: float = 600.0  # one attempt's transfer: a slow trickle must not hang a run
    max_wait_seconds: float = 60.0  # cap of one wait between attempts, Retry-After included
    total_seconds: float = 3300.0  # the whole download, waits included
    max_bytes: int = DEFAULT_MAX_BYTES

    def worst_case_seconds(self) -> float:
        """The longest the attempts and waits can take, before `total_seconds` cuts them short."""
        return self.attempts * (3 * self.timeout_seconds + self.attempt_seconds) + (self.attempts - 1) * self.max_wait_seconds


class RetryLater(TransientError):
    """A transient HTTP answer, with the server's Retry-After in seconds (0: none given)."""

    def __init__(self, message: str, retry_after: float = 0.0):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Transfer:
    """What one download remembers between its attempts: the validators and size of the body
    being fetched, so a resume can ask for the same entity (If-Range) and check the answer."""

    validators: dict[str, str] = field(default_factory=dict)
    total: int | None = None
    budget_end: float = 0.0


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
    _remove_stale_parts(final)
    partial = dest_dir / f".{final.name}.{uuid.uuid4().hex[:12]}.part"  # this download's own
    try:
        return _download_to(url, final, partial, sha256, policy, scheme, unless_unchanged)
    finally:
        partial.unlink(missing_ok=True)


def _download_to(url, final: Path, partial: Path, sha256, policy, scheme, unless_unchanged) -> Downloaded:
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
    size = partial.stat().st_size
    os.replace(partial, final)
    if validators:
        _write_atomically(final.parent / "validators.json", json.dumps(validators))
    return Downloaded(final, size, digest)


def _remove_stale_parts(final: Path) -> None:
    """Part files of downloads that died long ago (a live download keeps touching its own)."""
    now = time.time()
    for part in [final.with_name(final.name + ".part"), *final.parent.glob(f".{final.name}.*.part")]:
        try:
            if now - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()
        except FileNotFoundError:
            pass


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
    transfer = _Transfer(budget_end=time.monotonic() + policy.total_seconds)
    backoff = policy.backoff_seconds
    for attempt in range(1, policy.attempts + 1):
        try:
            return _fetch_once(url, partial, policy, unless_unchanged, transfer)
        except TransientError as error:
            wait = min(max(backoff, getattr(error, "retry_after", 0.0)), policy.max_wait_seconds)
            backoff *= 2
            # The next attempt must have time for connect, headers, some transfer and a last read.
            out_of_time = time.monotonic() + wait + 4 * policy.timeout_seconds > transfer.budget_end
            if attempt == policy.attempts or out_of_time:
                partial.unlink(missing_ok=True)
                budget = f" (its {policy.total_seconds:g} s are spent)" if attempt < policy.attempts else ""
                raise TransientError(f"download of {url} failed after {attempt} attempts{budget}: {error}") from None
            log.warning("attempt %d of %d failed (%s); retrying in %.1f s", attempt, policy.attempts, error, wait)
            time.sleep(wait)


def _fetch_once(
    url: str, partial: Path, policy: DownloadPolicy, unless_unchanged: dict[str, str], transfer: _Transfer
) -> dict[str, str] | None:
    """One HTTP attempt, resuming from `partial` when there is something to resume."""
    have = partial.stat().st_size if partial.exists() else 0
    if have:
        headers = {"Range": f"bytes={have}-"}
        if_range = _if_range_value(transfer.validators)
        if if_range:
            headers["If-Range"] = if_range
    else:
        headers = _conditional_headers(unless_unchanged)
    # The archive's own bytes: a gzip transfer encoding would make sizes and Range offsets disagree.
    headers["Accept-Encoding"] = "identity"
    try:
        with requests.get(url, stream=True, timeout=policy.timeout_seconds, headers=headers) as response:
            status = response.status_code
            if status == 304 and not have:
                return None
            if status == 416 and have:  # nothing left to fetch or server lost track
                partial.unlink(missing_ok=True)
                raise TransientError("server refused the resume range; starting over")
            if status in TRANSIENT_4XX or status >= 500:
                raise RetryLater(f"HTTP {status} {response.reason}", _retry_after(response))
            if 400 <= status < 500:
                raise PipelineError(
                    f"download of {url} failed: HTTP {status} {response.reason}; check the dataset_url param"
                )
            resumed = status == 206
            if resumed:
                expected = _check_resumed_range(response, have, transfer, partial)
            else:
                if have:
                    log.info("server sent the whole file instead of the range (it changed, or has no Range); from the start")
                    have = 0
                transfer.validators = {name: response.headers[name] for name in VALIDATORS if name in response.headers}
                expected = transfer.total = _expected_total(response, 0)
            if expected is not None and expected > policy.max_bytes:
                raise PipelineError(f"{url} is {expected} bytes, over the {policy.max_bytes}-byte size cap")
            seconds = min(policy.attempt_seconds, max(transfer.budget_end - time.monotonic() - policy.timeout_seconds, policy.timeout_seconds))
            _stream_with_deadline(response, partial, seconds, append=resumed, start=have, expected=expected, policy=policy)
            return dict(transfer.validators)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
        raise TransientError(f"{type(error).__name__}: {error}") from None


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def _check_resumed_range(response: requests.Response, have: int, transfer: _Transfer, partial: Path) -> int | None:
    """The full size of a 206 that continues our `have` bytes; otherwise start over (transient)."""
    header = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.match(header)
    total = int(match.group(3)) if match and match.group(3) != "*" else None
    if match is None or int(match.group(1)) != have or (total is not None and transfer.total is not None and total != transfer.total):
        partial.unlink(missing_ok=True)
        raise TransientError(
            f"server resumed with Content-Range {header or '(none)'!r}, not from byte {have} of "
            f"{transfer.total if transfer.total is not None else 'the same'} bytes; starting over"
        )
    return total if total is not None else _expected_total(response, have)


def _if_range_value(validators: dict[str, str]) -> str | None:
    """If-Range takes a strong ETag or a Last-Modified date (RFC 9110 13.1.5); a weak ETag cannot."""
    etag = validators.get("ETag", "")
    if etag and not etag.startswith("W/"):
        return etag
    return validators.get("Last-Modified")


def _retry_after(response: requests.Response) -> float:
    """Retry-After in seconds when it is a plain number (an HTTP date is ignored: backoff applies)."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else 0.0


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


def _stream_with_deadline(response, partial: Path, seconds: float, **kwargs) -> None:
    """_stream(), with the connection closed after `seconds` (a slow trickle); the bytes so far
    stay in `partial` for the next attempt to resume from."""
    expired = threading.Event()

    def expire():
        # response.close() alone waits for the read in progress (a buffered read of a whole chunk,
        # which a trickle can stretch for hours); shutting the socket down ends that read now.
        expired.set()
        sock = _socket_of(response)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        response.close()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        _stream(response, partial, **kwargs)
    except Exception:
        if expired.is_set():
            raise TransientError(f"transfer too slow: not done after {seconds:g} s") from None
        raise
    finally:
        timer.cancel()


def _socket_of(response):
    """The socket under a streamed requests response (urllib3 2.x), or None."""
    for path in (("raw", "_connection", "sock"), ("raw", "_fp", "fp", "raw", "_sock")):
        node = response
        for name in path:
            node = getattr(node, name, None)
        if isinstance(node, socket.socket):
            return node
    return None


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
