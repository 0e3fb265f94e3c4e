"""benchmark.data.download against a local HTTP server: retries, verification, mirror, atomicity."""

import hashlib
from pathlib import Path

import pytest
from localserver import LocalServer

from benchmark.data.download import DownloadError, fetch_url, mirror_path, sha256_file

BODY = b"hello benchmark\n" * 100
UNREACHABLE = "http://127.0.0.1:9/files/data.bin"  # discard port: nothing listens


@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.close()


def _sha_check(expected):
    def verify(path: Path):
        actual = sha256_file(path)
        if actual != expected:
            raise ValueError(f"SHA-256 {actual} != expected {expected}")

    return verify


def test_mirror_path_layout(tmp_path):
    assert mirror_path("http://r0k.us/graphics/kodak/kodak/kodim01.png", tmp_path) == (
        tmp_path / "r0k.us/graphics/kodak/kodak/kodim01.png"
    )
    assert mirror_path("https://Example.org:8443/a%20b/c.json", tmp_path) == tmp_path / "example.org/a b/c.json"
    for bad in ("http://example.org/", "file:///etc/passwd/", "http://example.org/../x.png"):
        with pytest.raises(ValueError):
            mirror_path(bad, tmp_path)


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(BODY)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(BODY).hexdigest()


def test_download_success(server, tmp_path):
    server.routes["/d/data.bin"] = [(200, BODY)]
    dest = tmp_path / "sub" / "data.bin"
    out = fetch_url(server.url + "/d/data.bin", dest, verify=_sha_check(hashlib.sha256(BODY).hexdigest()))
    assert out == dest and dest.read_bytes() == BODY
    assert [p.name for p in dest.parent.iterdir()] == ["data.bin"]


def test_retry_after_503(server, tmp_path):
    server.routes["/flaky"] = [(503, b"busy"), (200, BODY)]
    fetch_url(server.url + "/flaky", tmp_path / "f", backoff=0.01)
    assert (tmp_path / "f").read_bytes() == BODY
    assert server.hits.count("/flaky") == 2


def test_persistent_503_gives_up(server, tmp_path):
    server.routes["/down"] = [(503, b"busy")]
    with pytest.raises(DownloadError, match=r"/down: .*network.* 3 attempt\(s\): HTTP 503"):
        fetch_url(server.url + "/down", tmp_path / "f", retries=2, backoff=0.01)
    assert server.hits.count("/down") == 3
    assert list(tmp_path.iterdir()) == []


def test_404_fails_fast(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_url(server.url + "/missing.png", tmp_path / "m.png", retries=3, backoff=5.0)
    assert server.hits.count("/missing.png") == 1
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.routes["/x.bin"] = [(200, BODY + b"tampered")]
    with pytest.raises(DownloadError) as e:
        fetch_url(server.url + "/x.bin", tmp_path / "x.bin", verify=_sha_check(hashlib.sha256(BODY).hexdigest()))
    msg = str(e.value)
    assert server.url + "/x.bin" in msg and "network" in msg and "!= expected" in msg
    assert list(tmp_path.iterdir()) == []  # neither dest nor a temp file


def test_failed_fetch_keeps_existing_dest(server, tmp_path):
    dest = tmp_path / "keep.bin"
    dest.write_bytes(b"old")
    server.routes["/keep.bin"] = [(200, b"new")]

    def refuse(path):
        raise ValueError("no")

    with pytest.raises(DownloadError):
        fetch_url(server.url + "/keep.bin", dest, verify=refuse)
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.bin"]


def test_mirror_hit_needs_no_network(tmp_path):
    mirror = tmp_path / "mirror"
    src = mirror_path(UNREACHABLE, mirror)
    src.parent.mkdir(parents=True)
    src.write_bytes(BODY)
    dest = tmp_path / "out" / "data.bin"
    fetch_url(UNREACHABLE, dest, mirror=mirror, verify=_sha_check(hashlib.sha256(BODY).hexdigest()), retries=0)
    assert dest.read_bytes() == BODY


def test_mirror_miss_falls_back_to_network(server, tmp_path):
    server.routes["/only-online.bin"] = [(200, BODY)]
    (tmp_path / "mirror").mkdir()
    fetch_url(server.url + "/only-online.bin", tmp_path / "o.bin", mirror=tmp_path / "mirror")
    assert (tmp_path / "o.bin").read_bytes() == BODY and server.hits.count("/only-online.bin") == 1


def test_corrupt_mirror_file_is_an_error_without_network_fallback(server, tmp_path):
    url = server.url + "/good.bin"
    server.routes["/good.bin"] = [(200, BODY)]  # the network copy would pass
    src = mirror_path(url, tmp_path / "mirror")
    src.parent.mkdir(parents=True)
    src.write_bytes(b"corrupt")
    out = tmp_path / "out"
    with pytest.raises(DownloadError) as e:
        fetch_url(url, out / "good.bin", mirror=tmp_path / "mirror", verify=_sha_check(hashlib.sha256(BODY).hexdigest()))
    assert f"mirror file {src}" in str(e.value)
    assert "/good.bin" not in server.hits
    assert list(out.iterdir()) == []


def test_unreachable_host_is_a_download_error(tmp_path):
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1:9/files/data.bin: .*2 attempt"):
        fetch_url(UNREACHABLE, tmp_path / "d", retries=1, backoff=0.01, timeout=2)
    assert list(tmp_path.iterdir()) == []


# ---- bodies that do not match their Content-Length (issue 15) ------------------------------

BIG = bytes(range(256)) * 400  # 102,400 bytes


def _reply(h, status, body, headers=(), length=None, stall=0.0):
    """Send ``status`` with Content-Length ``length`` (default len(body)), then ``body``, then
    close; sleep ``stall`` seconds before closing."""
    h.send_response(status)
    h.send_header("Content-Length", str(len(body) if length is None else length))
    for k, v in headers:
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)
    h.wfile.flush()
    if stall:
        import time

        time.sleep(stall)
    h.close_connection = True


def _no_temp_files(d):
    return [p.name for p in d.iterdir() if p.name.startswith(".")] == []


def test_short_body_is_retried_and_never_kept(server, tmp_path):
    """A body cut short of its Content-Length on every attempt: a DownloadError naming both
    counts, nothing at dest, no temp file (before issue 15 the half file was kept as complete)."""
    server.handlers["/short"] = lambda h, n: _reply(h, 200, BIG[: len(BIG) // 2], length=len(BIG))
    dest = tmp_path / "short.bin"
    with pytest.raises(DownloadError, match=rf"3 attempt\(s\): the connection ended after {len(BIG) // 2} of the {len(BIG)}"):
        fetch_url(server.url + "/short", dest, retries=2, backoff=0.01)
    assert server.hits.count("/short") == 3
    assert not dest.exists() and _no_temp_files(tmp_path)


def test_short_body_then_whole_body(server, tmp_path):
    """Without range support a retry starts over and the complete second body is kept."""
    server.handlers["/flaky"] = lambda h, n: _reply(h, 200, BIG[:1000] if n == 1 else BIG, length=len(BIG))
    fetch_url(server.url + "/flaky", tmp_path / "f", backoff=0.01)
    assert (tmp_path / "f").read_bytes() == BIG
    assert all("Range" not in h for h in server.headers)


def test_short_body_resumes_with_range(server, tmp_path):
    """A server that accepts ranges: the retry asks for the missing bytes only (Range from the
    byte where the first body stopped) and the pieces make the whole file."""
    cut = 30_000

    def handle(h, n):
        asked = h.headers.get("Range")
        if asked is None:
            _reply(h, 200, BIG[:cut], headers=[("Accept-Ranges", "bytes")], length=len(BIG))
        else:
            first = int(asked.split("=")[1].rstrip("-"))
            _reply(h, 206, BIG[first:], headers=[("Content-Range", f"bytes {first}-{len(BIG) - 1}/{len(BIG)}")])

    server.handlers["/ranged"] = handle
    fetch_url(server.url + "/ranged", tmp_path / "r", backoff=0.01)
    assert (tmp_path / "r").read_bytes() == BIG
    assert [h.get("Range") for h in server.headers] == [None, f"bytes={cut}-"]


def test_stalled_body_times_out_and_leaves_nothing(server, tmp_path):
    """A body that stops mid-way and stalls past the timeout on every attempt: a DownloadError,
    nothing at dest, no temp file."""
    server.handlers["/stall"] = lambda h, n: _reply(h, 200, BIG[:5000], length=len(BIG), stall=1.0)
    dest = tmp_path / "stall.bin"
    with pytest.raises(DownloadError, match=r"2 attempt\(s\): the body broke off after 5000 of 102400 bytes"):
        fetch_url(server.url + "/stall", dest, retries=1, timeout=0.3, backoff=0.01)
    assert not dest.exists() and _no_temp_files(tmp_path)


def test_body_longer_than_announced_fails_and_keeps_nothing(server, tmp_path):
    """A body longer than its Content-Length (http.client alone would cut it there and report
    success): a DownloadError naming the announced length, with or without an expected size,
    nothing at dest and no temp file; not retried."""
    server.handlers["/long"] = lambda h, n: _reply(h, 200, BIG + b"trailing garbage", length=len(BIG) - 10)
    dest = tmp_path / "long.bin"
    for size in (None, len(BIG)):
        hits = len(server.hits)
        with pytest.raises(DownloadError, match=rf"more than the {len(BIG) - 10} bytes its Content-Length announced"):
            fetch_url(server.url + "/long", dest, size=size, retries=2, backoff=0.01)
        assert not dest.exists() and _no_temp_files(tmp_path)
        assert len(server.hits) == hits + 1
    server.routes["/big"] = [(200, BIG + b"x")]
    with pytest.raises(DownloadError, match=rf"sent {len(BIG) + 1} bytes, {len(BIG)} were expected"):
        fetch_url(server.url + "/big", dest, size=len(BIG), backoff=0.01)
    assert not dest.exists() and _no_temp_files(tmp_path)


def test_mirror_file_of_the_wrong_size_is_refused(tmp_path):
    url = "http://example.org/d/data.bin"
    src = mirror_path(url, tmp_path / "mirror")
    src.parent.mkdir(parents=True)
    src.write_bytes(BIG[:100])
    with pytest.raises(DownloadError, match="has 100 bytes, 102400 were expected"):
        fetch_url(url, tmp_path / "out" / "data.bin", mirror=tmp_path / "mirror", size=len(BIG))
    assert not (tmp_path / "out" / "data.bin").exists()


def test_exact_body_from_a_server_that_keeps_the_connection_open(server, tmp_path, monkeypatch):
    """All announced bytes, then the connection stays open: complete once no byte more has come
    within the grace period (not a stall, not an overrun)."""
    from benchmark.data import download

    monkeypatch.setattr(download, "OVERRUN_GRACE_S", 0.2)
    server.handlers["/open"] = lambda h, n: _reply(h, 200, BIG, stall=1.5)
    dest = tmp_path / "open.bin"
    fetch_url(server.url + "/open", dest, retries=0, timeout=5.0)
    assert dest.read_bytes() == BIG and _no_temp_files(tmp_path)
