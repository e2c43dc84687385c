"""download(): every outcome against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import struct
import threading
import time

import pytest

from musicrec.download import DownloadPolicy, download
from musicrec.errors import PipelineError, TransientError

BODY = bytes(range(256)) * 2048  # 512 KiB: several download chunks
# A generous read timeout: a loaded machine must not turn a test of one behaviour into a retry.
FAST = DownloadPolicy(attempts=3, backoff_seconds=0.01, timeout_seconds=10.0)


ETAG = '"body-v1"'
BODY2 = bytes(reversed(BODY))  # the same size: a new version that only If-Range can tell apart


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes by path; `calls` counts requests per path across the test, `requests` keeps each
    request's (path, Range, If-Range) in order."""

    calls: dict[str, int] = {}
    ranges: list[str] = []
    requests: list[tuple[str, str | None, str | None]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's naming)
        n = self.calls[self.path] = self.calls.get(self.path, 0) + 1
        self.requests.append((self.path, self.headers.get("Range"), self.headers.get("If-Range")))
        if self.headers.get("Range"):
            self.ranges.append(self.headers["Range"])
        if self.path == "/missing.zip":
            return self.send_error(404)
        if self.path == "/flaky.zip" and n == 1:
            return self.send_error(503)
        if self.path == "/broken.zip":
            return self.send_error(500)
        if self.path == "/slow.zip":
            time.sleep(2.5)  # a stall longer than the 1 s read timeout; then the whole file
            return self._send_body()
        if self.path == "/busy.zip" and n == 1:
            return self._refuse(429, retry_after="1")
        if self.path == "/request-timeout.zip" and n == 1:
            return self._refuse(408)
        if self.path == "/teapot.zip":
            return self._refuse(418, retry_after="1")
        if self.path in ("/range-416.zip", "/range-wrong-start.zip", "/changed.zip") and n == 1:
            self._promise_whole_body(part=len(BODY) // 2)
            self.close_connection = True
            return
        if self.path == "/range-416.zip" and self.headers.get("Range"):
            return self._refuse(416)
        if self.path == "/range-wrong-start.zip" and self.headers.get("Range"):
            self.send_response(206)  # the whole body, labelled as such: not what was asked
            self.send_header("Content-Range", f"bytes 0-{len(BODY) - 1}/{len(BODY)}")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
            return
        if self.path == "/changed.zip":  # a new version (BODY2) replaced the file after the first attempt
            return self._send_body(BODY2, etag='"body-v2"')
        if self.path == "/no-length.zip":  # no Content-Length: the body ends when the connection closes
            self.send_response(200)
            self.end_headers()
            for i in range(0, len(BODY), 1 << 14):
                self.wfile.write(BODY[i : i + (1 << 14)])
            return
        if self.path == "/together.zip":  # two clients must be mid-body at the same time
            self._promise_whole_body(part=len(BODY) // 2)
            self.together.wait(timeout=30)
            self.wfile.write(BODY[len(BODY) // 2 :])
            return
        if self.path == "/trickle.zip" or (self.path == "/trickle-once.zip" and n == 1):
            # (trickle-once: 3 whole download chunks first, then) a byte at a time, each well
            # inside the read timeout, for 2 s
            head = 3 * (1 << 16) if self.path == "/trickle-once.zip" else 0
            self._promise_whole_body(part=head)
            try:
                for i in range(head, head + 40):
                    self.wfile.write(BODY[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:  # the client gave up
                pass
            return
        if self.path == "/reset.zip" and n == 1:
            # Send part of the body, then abort the TCP connection (RST, not a clean close).
            self._promise_whole_body(part=len(BODY) // 4)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        if self.path == "/truncated.zip" and n == 1:
            # Promise the whole body, send half, hang up: the client must resume with Range.
            self._promise_whole_body(part=len(BODY) // 2)
            self.close_connection = True
            return
        self._send_body()

    def _refuse(self, status: int, retry_after: str | None = None):
        self.send_response(status)
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _promise_whole_body(self, part: int = 0):
        """Headers for all of BODY, then only its first `part` bytes."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", ETAG)
        self.end_headers()
        self.wfile.write(BODY[:part])
        self.wfile.flush()

    def _send_body(self, body: bytes = BODY, etag: str = ETAG):
        """`body`, or the asked range of it when If-Range (if sent) names this version (RFC 9110)."""
        start = 0
        if_range = self.headers.get("If-Range")
        if self.headers.get("Range", "").startswith("bytes=") and if_range in (None, etag):
            start = int(self.headers["Range"][6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])


@pytest.fixture
def server(http_server):
    Handler.calls, Handler.ranges, Handler.requests = {}, [], []
    Handler.together = threading.Barrier(2)
    return http_server(None, handler=Handler)


def test_downloads_whole_file_with_checksum(server, tmp_path):
    got = download(f"{server}/ok.zip", tmp_path, sha256=hashlib.sha256(BODY).hexdigest(), policy=FAST)
    assert got.path == tmp_path / "ok.zip"
    assert got.path.read_bytes() == BODY
    assert got.size_bytes == len(BODY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.zip", "validators.json"]  # no .part left behind


def test_404_fails_at_once_with_clear_message(server, tmp_path):
    with pytest.raises(PipelineError, match="HTTP 404") as error:
        download(f"{server}/missing.zip", tmp_path, policy=FAST)
    assert not isinstance(error.value, TransientError)
    assert Handler.calls["/missing.zip"] == 1  # a 4xx is not retried
    assert list(tmp_path.iterdir()) == []


def test_5xx_then_success_is_retried(server, tmp_path):
    got = download(f"{server}/flaky.zip", tmp_path, policy=FAST)
    assert got.path.read_bytes() == BODY
    assert Handler.calls["/flaky.zip"] == 2


def test_persistent_5xx_gives_up_after_the_attempts(server, tmp_path):
    with pytest.raises(TransientError, match="after 3 attempts"):
        download(f"{server}/broken.zip", tmp_path, policy=FAST)
    assert Handler.calls["/broken.zip"] == 3
    assert list(tmp_path.iterdir()) == []


def test_timeout_is_transient(server, tmp_path):
    # The server only stalls (then would send the whole file): only a real read timeout fails this.
    with pytest.raises(TransientError, match=r"after 2 attempts.*(Timeout|timed out)"):
        download(f"{server}/slow.zip", tmp_path, policy=DownloadPolicy(attempts=2, backoff_seconds=0.01, timeout_seconds=1.0))
    assert Handler.calls["/slow.zip"] == 2
    assert list(tmp_path.iterdir()) == []


def test_slow_trickle_hits_the_attempt_deadline(server, tmp_path):
    policy = DownloadPolicy(attempts=1, timeout_seconds=1.0, attempt_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(TransientError, match="too slow"):
        download(f"{server}/trickle.zip", tmp_path, policy=policy)
    assert time.monotonic() - started < 1.9  # cut at the 0.5 s deadline, not when the 2 s trickle ends
    assert list(tmp_path.iterdir()) == []


def test_attempt_deadline_keeps_the_bytes_for_the_next_attempt(server, tmp_path):
    policy = DownloadPolicy(attempts=2, backoff_seconds=0.01, timeout_seconds=1.0, attempt_seconds=0.5)
    got = download(f"{server}/trickle-once.zip", tmp_path, policy=policy)
    assert got.path.read_bytes() == BODY
    (_, asked, if_range) = Handler.requests[1]
    assert (asked, if_range) == (f"bytes={3 * (1 << 16)}-", ETAG)  # the 3 whole chunks were kept


def test_truncated_body_resumes_with_range(server, tmp_path):
    got = download(f"{server}/truncated.zip", tmp_path, policy=FAST)
    assert got.path.read_bytes() == BODY
    assert Handler.ranges == [f"bytes={len(BODY) // 2}-"]


def test_connection_reset_is_retried_and_resumed(server, tmp_path):
    got = download(f"{server}/reset.zip", tmp_path, policy=FAST)
    assert got.path.read_bytes() == BODY
    assert Handler.calls["/reset.zip"] == 2
    (first, second) = Handler.requests
    assert first == ("/reset.zip", None, None)
    path, asked, if_range = second
    assert asked is not None and asked.startswith("bytes=") and asked.endswith("-"), asked
    assert 0 < int(asked[6:-1]) <= len(BODY) // 4  # resumed from what arrived, not from zero
    assert if_range == ETAG  # ...and only if the file is still the version those bytes came from


def test_wrong_checksum_leaves_no_file(server, tmp_path):
    with pytest.raises(PipelineError, match="checksum mismatch"):
        download(f"{server}/ok.zip", tmp_path, sha256="0" * 64, policy=FAST)
    assert list(tmp_path.iterdir()) == []


def test_size_cap(server, tmp_path):
    with pytest.raises(PipelineError, match="size cap"):
        download(f"{server}/ok.zip", tmp_path, policy=DownloadPolicy(max_bytes=1000))
    assert list(tmp_path.iterdir()) == []


def test_file_url_and_refused_schemes(tmp_path):
    source = tmp_path / "src" / "data.zip"
    source.parent.mkdir()
    source.write_bytes(BODY)
    got = download(source.as_uri(), tmp_path / "out")
    assert got.path.read_bytes() == BODY
    for url in ("ftp://example.org/x.zip", "/just/a/path.zip", "s3://bucket/x.zip"):
        with pytest.raises(PipelineError, match="only http, https and file"):
            download(url, tmp_path / "out")
    with pytest.raises(PipelineError, match="no such file"):
        download((tmp_path / "absent.zip").as_uri(), tmp_path / "out")


class CachingHandler(http.server.BaseHTTPRequestHandler):
    """Serves BODY with an ETag that tests can change; counts full-body responses."""

    etag = '"v1"'
    bodies_sent = 0

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        if self.headers.get("If-None-Match") == type(self).etag:
            self.send_response(304)
            self.end_headers()
            return
        type(self).bodies_sent += 1
        self.send_response(200)
        self.send_header("ETag", type(self).etag)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


def test_cache_reuses_until_the_server_says_it_changed(http_server, tmp_path):
    from musicrec.download import fetch_cached

    CachingHandler.etag, CachingHandler.bodies_sent = '"v1"', 0
    url = f"{http_server(None, handler=CachingHandler)}/data.zip"
    first = fetch_cached(url, tmp_path, policy=FAST)
    again = fetch_cached(url, tmp_path, policy=FAST)
    assert (first.from_cache, again.from_cache) == (False, True)
    assert again.path == first.path and CachingHandler.bodies_sent == 1
    CachingHandler.etag = '"v2"'  # a new snapshot upstream
    third = fetch_cached(url, tmp_path, policy=FAST)
    assert not third.from_cache and CachingHandler.bodies_sent == 2
    other = fetch_cached(url, tmp_path, sha256=hashlib.sha256(BODY).hexdigest(), policy=FAST)
    assert other.path != first.path  # the checksum is part of the key


def test_resume_asks_if_range_and_a_changed_file_is_fetched_whole(server, tmp_path):
    # Half of v1 arrives; then v2 (same size) replaces it upstream: splicing would mix versions.
    got = download(f"{server}/changed.zip", tmp_path, policy=FAST)
    assert Handler.requests[1][1:] == (f"bytes={len(BODY) // 2}-", ETAG)
    assert got.path.read_bytes() == BODY2
    assert json.loads((tmp_path / "validators.json").read_text()) == {"ETag": '"body-v2"'}


def test_resume_that_does_not_start_at_our_bytes_starts_over(server, tmp_path):
    got = download(f"{server}/range-wrong-start.zip", tmp_path, policy=FAST)
    assert got.path.read_bytes() == BODY  # not the half we had plus the whole file again
    assert [r[1] for r in Handler.requests] == [None, f"bytes={len(BODY) // 2}-", None]


def test_416_on_resume_starts_over_from_zero(server, tmp_path):
    got = download(f"{server}/range-416.zip", tmp_path, policy=FAST)
    assert got.path.read_bytes() == BODY
    assert [r[1] for r in Handler.requests] == [None, f"bytes={len(BODY) // 2}-", None]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["range-416.zip", "validators.json"]


def test_429_and_408_are_retried_honouring_retry_after(server, tmp_path):
    started = time.monotonic()
    got = download(f"{server}/busy.zip", tmp_path / "a", policy=FAST)
    assert got.path.read_bytes() == BODY and Handler.calls["/busy.zip"] == 2
    assert time.monotonic() - started >= 1.0  # Retry-After: 1, though FAST's backoff is 0.01 s
    got = download(f"{server}/request-timeout.zip", tmp_path / "b", policy=FAST)
    assert got.path.read_bytes() == BODY and Handler.calls["/request-timeout.zip"] == 2
    with pytest.raises(PipelineError, match="HTTP 418") as error:  # any other 4xx stays final
        download(f"{server}/teapot.zip", tmp_path / "c", policy=FAST)
    assert not isinstance(error.value, TransientError) and Handler.calls["/teapot.zip"] == 1


def test_size_cap_while_streaming_a_body_without_content_length(server, tmp_path):
    with pytest.raises(PipelineError, match="exceeded the 100000-byte size cap") as error:
        download(f"{server}/no-length.zip", tmp_path, policy=DownloadPolicy(max_bytes=100_000))
    assert not isinstance(error.value, TransientError)
    assert list(tmp_path.iterdir()) == []
    assert download(f"{server}/no-length.zip", tmp_path / "ok", policy=FAST).path.read_bytes() == BODY


def test_two_downloads_of_one_url_at_once_do_not_collide(server, tmp_path):
    results, errors = [], []

    def fetch():
        try:
            results.append(download(f"{server}/together.zip", tmp_path, policy=FAST))
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(results) == 2
    assert Handler.calls["/together.zip"] == 2 and Handler.ranges == []  # both were mid-body at once
    assert (tmp_path / "together.zip").read_bytes() == BODY
    assert all(r.sha256 == hashlib.sha256(BODY).hexdigest() for r in results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["together.zip", "validators.json"]


def test_stale_part_files_of_dead_downloads_are_removed(server, tmp_path):
    from musicrec.download import STALE_PART_SECONDS

    stale, fresh = tmp_path / ".ok.zip.0123456789ab.part", tmp_path / ".ok.zip.ba9876543210.part"
    for part in (stale, fresh):
        part.write_bytes(b"x")
    old = time.time() - STALE_PART_SECONDS - 60
    os.utime(stale, (old, old))
    download(f"{server}/ok.zip", tmp_path, policy=FAST)
    assert not stale.exists() and fresh.exists()  # fresh: perhaps another run's live download


def test_retries_stop_when_the_time_budget_is_spent(server, tmp_path):
    policy = DownloadPolicy(attempts=50, backoff_seconds=0.2, timeout_seconds=0.1, max_wait_seconds=0.2, total_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"its 1 s are spent"):
        download(f"{server}/broken.zip", tmp_path, policy=policy)
    assert time.monotonic() - started < 3  # 50 attempts would take 10 s and more
    assert 2 <= Handler.calls["/broken.zip"] < 10


def test_default_policy_fits_the_download_task_timeout():
    policy = DownloadPolicy()
    assert policy.worst_case_seconds() <= 55 * 60  # the DAG gives download 1 hour
    assert policy.total_seconds <= 55 * 60
    assert (policy.attempts, policy.attempt_seconds, policy.timeout_seconds, policy.max_wait_seconds) == (4, 600, 60, 60)


def test_if_range_uses_a_strong_etag_or_else_last_modified():
    from musicrec.download import _if_range_value

    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert _if_range_value({"ETag": '"a"', "Last-Modified": date}) == '"a"'
    assert _if_range_value({"ETag": 'W/"a"', "Last-Modified": date}) == date  # a weak ETag is not allowed
    assert _if_range_value({"ETag": 'W/"a"'}) is None
    assert _if_range_value({}) is None


class LastModifiedHandler(http.server.BaseHTTPRequestHandler):
    """Serves BODY with Last-Modified only (no ETag), or with no validator at all."""

    last_modified: str | None = "Wed, 21 Oct 2015 07:28:00 GMT"
    bodies_sent = 0
    seen: list[dict[str, str | None]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        cls = type(self)
        cls.seen.append({"If-Modified-Since": self.headers.get("If-Modified-Since"), "If-None-Match": self.headers.get("If-None-Match")})
        if cls.last_modified and self.headers.get("If-Modified-Since") == cls.last_modified:
            self.send_response(304)
            self.end_headers()
            return
        cls.bodies_sent += 1
        self.send_response(200)
        if cls.last_modified:
            self.send_header("Last-Modified", cls.last_modified)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


def test_cache_revalidates_with_last_modified_only(http_server, tmp_path):
    from musicrec.download import fetch_cached

    LastModifiedHandler.last_modified, LastModifiedHandler.bodies_sent, LastModifiedHandler.seen = "Wed, 21 Oct 2015 07:28:00 GMT", 0, []
    url = f"{http_server(None, handler=LastModifiedHandler)}/data.zip"
    first = fetch_cached(url, tmp_path, policy=FAST)
    again = fetch_cached(url, tmp_path, policy=FAST)
    assert (first.from_cache, again.from_cache, LastModifiedHandler.bodies_sent) == (False, True, 1)
    assert LastModifiedHandler.seen[1] == {"If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT", "If-None-Match": None}
    LastModifiedHandler.last_modified = "Thu, 22 Oct 2015 07:28:00 GMT"  # a new snapshot upstream
    third = fetch_cached(url, tmp_path, policy=FAST)
    assert not third.from_cache and LastModifiedHandler.bodies_sent == 2
    assert json.loads((third.path.parent / "validators.json").read_text()) == {"Last-Modified": "Thu, 22 Oct 2015 07:28:00 GMT"}


def test_cache_without_validators_trusts_its_copy_and_asks_nothing(http_server, tmp_path):
    from musicrec.download import fetch_cached

    LastModifiedHandler.last_modified, LastModifiedHandler.bodies_sent, LastModifiedHandler.seen = None, 0, []
    url = f"{http_server(None, handler=LastModifiedHandler)}/data.zip"
    first = fetch_cached(url, tmp_path, policy=FAST)
    again = fetch_cached(url, tmp_path, policy=FAST)
    assert (first.from_cache, again.from_cache) == (False, True)
    assert again.path == first.path and again.sha256 == hashlib.sha256(BODY).hexdigest()
    assert len(LastModifiedHandler.seen) == 1  # no request at all the second time
    assert not (first.path.parent / "validators.json").exists()


def test_file_url_through_the_cache_is_copied_fresh_each_time(tmp_path):
    from musicrec.download import fetch_cached

    source = tmp_path / "src" / "data.zip"
    source.parent.mkdir()
    source.write_bytes(BODY)
    first = fetch_cached(source.as_uri(), tmp_path / "cache")
    assert first.path.read_bytes() == BODY and not first.from_cache
    assert first.path.is_relative_to(tmp_path / "cache")
    source.write_bytes(BODY2)  # a local file has no validators: the cache must not serve the old copy
    second = fetch_cached(source.as_uri(), tmp_path / "cache", sha256=hashlib.sha256(BODY2).hexdigest())
    assert second.path.read_bytes() == BODY2 and second.sha256 == hashlib.sha256(BODY2).hexdigest()
    third = fetch_cached(source.as_uri(), tmp_path / "cache")
    assert third.path == first.path and third.path.read_bytes() == BODY2
    with pytest.raises(PipelineError, match="checksum mismatch"):
        fetch_cached(source.as_uri(), tmp_path / "cache", sha256=hashlib.sha256(BODY).hexdigest())
