"""download(): every outcome against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import socket
import struct
import time

import pytest

from musicrec.download import DownloadPolicy, download
from musicrec.errors import PipelineError, TransientError

BODY = bytes(range(256)) * 2048  # 512 KiB: several download chunks
FAST = DownloadPolicy(attempts=3, backoff_seconds=0.01, timeout_seconds=1.0)


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes by path; `calls` counts requests per path across the test."""

    calls: dict[str, int] = {}
    ranges: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's naming)
        n = self.calls[self.path] = self.calls.get(self.path, 0) + 1
        if self.headers.get("Range"):
            self.ranges.append(self.headers["Range"])
        if self.path == "/missing.zip":
            return self.send_error(404)
        if self.path == "/flaky.zip" and n == 1:
            return self.send_error(503)
        if self.path == "/broken.zip":
            return self.send_error(500)
        if self.path == "/slow.zip":
            time.sleep(2.5)  # longer than the 1 s read timeout
            return self.send_error(500)
        if self.path == "/trickle.zip":  # a byte at a time, each well inside the read timeout
            self._promise_whole_body()
            for i in range(40):
                self.wfile.write(BODY[i : i + 1])
                self.wfile.flush()
                time.sleep(0.05)
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

    def _promise_whole_body(self, part: int = 0):
        """Headers for all of BODY, then only its first `part` bytes."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(BODY[:part])
        self.wfile.flush()

    def _send_body(self):
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        self.wfile.write(BODY[start:])


@pytest.fixture
def server(http_server):
    Handler.calls, Handler.ranges = {}, []
    return http_server(None, handler=Handler)


def test_downloads_whole_file_with_checksum(server, tmp_path):
    got = download(f"{server}/ok.zip", tmp_path, sha256=hashlib.sha256(BODY).hexdigest(), policy=FAST)
    assert got.path == tmp_path / "ok.zip"
    assert got.path.read_bytes() == BODY
    assert got.size_bytes == len(BODY)
    assert list(tmp_path.iterdir()) == [got.path]  # no .part left behind


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
    with pytest.raises(TransientError, match="attempts"):
        download(f"{server}/slow.zip", tmp_path, policy=DownloadPolicy(attempts=2, backoff_seconds=0.01, timeout_seconds=1.0))
    assert list(tmp_path.iterdir()) == []


def test_slow_trickle_hits_the_attempt_deadline(server, tmp_path):
    policy = DownloadPolicy(attempts=1, timeout_seconds=1.0, attempt_seconds=0.5)
    with pytest.raises(TransientError, match="too slow"):
        download(f"{server}/trickle.zip", tmp_path, policy=policy)
    assert list(tmp_path.iterdir()) == []


def test_truncated_body_resumes_with_range(server, tmp_path):
    got = download(f"{server}/truncated.zip", tmp_path, policy=FAST)
    assert got.path.read_bytes() == BODY
    assert Handler.ranges == [f"bytes={len(BODY) // 2}-"]


def test_connection_reset_is_retried_and_resumed(server, tmp_path):
    got = download(f"{server}/reset.zip", tmp_path, policy=FAST)
    assert got.path.read_bytes() == BODY
    assert Handler.calls["/reset.zip"] == 2


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
