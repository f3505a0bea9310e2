"""The explorer under hostile clients (issue 14): idle and half-sent connections against a real server
on 127.0.0.1, decompression bombs, runs that fail to open or are damaged, odd class names, and the
URL printed for another loopback address.

Two tiny digits runs are trained once (tests/tiny_runs.py); each server runs in a thread.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from tiny_runs import tiny_runs

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import vaekit.latent  # noqa: E402
from vaekit.serve import RunRegistry, Server, create_app  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_root():
    return tiny_runs()


@pytest.fixture(scope="module")
def client(run_root):
    return TestClient(create_app(RunRegistry(run_root), allowed_hosts=None))


@contextlib.contextmanager
def running(server: Server):
    """``server`` under uvicorn in a background thread, on the socket it bound; yields the URL it prints."""
    engine = server.uvicorn_server()
    thread = threading.Thread(target=engine.run, kwargs={"sockets": [server.socket]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not engine.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield server.url
    finally:
        engine.should_exit = True
        thread.join(10)
        server.socket.close()


def detail(response) -> str:
    body = response.json()
    assert set(body) == {"detail"} and "Traceback" not in body["detail"] and "\n" not in body["detail"], body
    return body["detail"]


# -- 5: idle and half-sent connections ----------------------------------------------------------------
def test_hundreds_of_idle_and_half_sent_connections_do_not_lock_users_out(run_root):
    """300 sockets (half idle, half stopped inside a request head) used to make every request a 503."""
    server = Server(run_root, port=0)
    with running(server) as url, contextlib.ExitStack() as held:
        for i in range(300):
            sock = held.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=5))
            if i % 2:
                sock.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        response = httpx.get(url + "api/runs", timeout=20)
        assert response.status_code == 200, response.text
        assert {run["id"] for run in response.json()["runs"]} == {"digits-ae", "digits-vae"}
        assert time.monotonic() - started < 5


def test_a_client_that_sends_no_whole_request_head_is_cut_off(run_root):
    server = Server(run_root, port=0, head_timeout=0.5)
    with running(server) as url, contextlib.ExitStack() as held:
        idle = [held.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=5)) for _ in range(6)]
        for sock in idle[::2]:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")          # never finished
        started = time.monotonic()
        for sock in idle:
            sock.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1024) == b""                                 # closed, without an answer
        assert time.monotonic() - started < 4
        # A client that does send its request in time is served, and its keep-alive connection too.
        with httpx.Client(base_url=url, timeout=20) as user:
            assert user.get("/api/runs").status_code == 200
            assert user.get("/api/runs").status_code == 200


def test_beyond_the_connection_limit_the_longest_idle_connection_makes_room(run_root):
    server = Server(run_root, port=0, max_connections=20, head_timeout=60)
    with running(server) as url, contextlib.ExitStack() as held:
        idle = []
        for _ in range(60):
            idle.append(held.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=5)))
            time.sleep(0.002)          # an order of arrival for the server to go by
        assert httpx.get(url + "api/runs", timeout=20).status_code == 200
        idle[0].settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert idle[0].recv(1) == b""                                     # the oldest was closed
        idle[-1].settimeout(0.3)
        with pytest.raises(TimeoutError):                                     # the newest is still open
            idle[-1].recv(1)


# -- 6: decompression bombs --------------------------------------------------------------------------
def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int, height: int, *, rows: int | None = None) -> bytes:
    """A 1-bit grey PNG of ``width`` x ``height`` whose pixels are all 0: its IDAT compresses ``rows``
    zero rows (all of them by default: a real bomb; fewer: a crafted header with little behind it)."""
    compressor = zlib.compressobj(9)
    row_bytes = 1 + (width + 7) // 8                       # a filter byte, then the packed pixels
    idat = b"".join(compressor.compress(bytes(row_bytes)) for _ in range(height if rows is None else rows))
    idat += compressor.flush()
    return (PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def jpeg_header(width: int, height: int) -> bytes:
    """SOI, an APP0 segment, then a baseline frame header (SOF0) declaring ``width`` x ``height``, then EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def upload(client, data: bytes, kind: str = "image/png"):
    return client.post("/api/encode", files={"file": ("x", data, kind)}, data={"run": "digits-vae"})


def test_a_30000_by_30000_png_bomb_is_refused_from_its_header(client):
    bomb = png_bomb(30_000, 30_000)                       # 112 MB of pixels in about 110 kB, as in the issue
    assert len(bomb) < 200_000
    response = upload(client, bomb)
    assert response.status_code == 413
    assert "30000x30000 pixels" in detail(response)


@pytest.mark.parametrize("data, kind, size", [
    (png_bomb(200_000, 200_000, rows=1), "image/png", "200000x200000"),         # IHDR only, nothing behind it
    (png_bomb(2 ** 31 - 1, 3, rows=0), "image/png", "2147483647x3"),
    (jpeg_header(60_000, 50_000), "image/jpeg", "60000x50000"),
])
def test_crafted_headers_announcing_huge_images_are_refused(client, data, kind, size):
    response = upload(client, data, kind)
    assert response.status_code == 413
    assert f"{size} pixels" in detail(response)


@pytest.mark.parametrize("fmt, options", [("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}),
                                          ("JPEG", {"exif": b"Exif\0\0" + b"\0" * 300})])
def test_declared_size_reads_what_pillow_wrote(fmt, options):
    from vaekit.serve.images import declared_size

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((23, 37, 3), np.uint8)).save(buffer, format=fmt, **options)
    assert declared_size(buffer.getvalue()) == (fmt, 37, 23)
    assert declared_size(b"GIF89a" + buffer.getvalue()) is None
    assert declared_size(buffer.getvalue()[:5]) is None


# -- 7 and 8: runs that fail to open, damaged runs ------------------------------------------------------
def copy_run(run_root, to, **config):
    shutil.copytree(run_root / "digits-vae", to)
    if config:
        info = json.loads((to / "run.json").read_text())
        info["config"].update(config)
        (to / "run.json").write_text(json.dumps(info))
    return to


def test_a_run_that_fails_to_open_is_remembered_and_listed_not_retried(tmp_path, run_root, monkeypatch):
    copy_run(run_root, tmp_path / "a-data-gone", dataset=str(tmp_path / "gone" / "digits.npy"))
    copy_run(run_root, tmp_path / "b-good")
    opened = []
    load = vaekit.latent.load_model_and_data

    def counting(path, **options):
        opened.append(path.name)
        return load(path, **options)

    monkeypatch.setattr(vaekit.latent, "load_model_and_data", counting)
    local = TestClient(create_app(RunRegistry(tmp_path), allowed_hosts=None))
    assert local.get("/api/runs").json()["default"] == "a-data-gone"        # nothing known against it yet
    for _ in range(3):
        response = local.get("/api/info", params={"run": "a-data-gone"})
        assert response.status_code == 409 and "cannot be explored" in detail(response)
    assert opened == ["a-data-gone"]                                           # tried once, not on every request
    listing = local.get("/api/runs").json()
    error = {run["id"]: run["error"] for run in listing["runs"]}
    assert error["a-data-gone"] and error["b-good"] is None
    assert listing["default"] == "b-good"
    assert local.get("/api/info").json()["run"] == "b-good"


def test_a_damaged_run_does_not_stop_the_server_from_starting(tmp_path, run_root):
    damaged = copy_run(run_root, tmp_path / "a-damaged")
    epochs = len((damaged / "metrics.jsonl").read_text().splitlines())
    with open(damaged / "metrics.jsonl", "a") as metrics:
        metrics.write('{"epoch": 2, "val_lo')                                  # a line cut short by a crash
    (damaged / "eval.json").write_text("[1, 2, 3]\n")                         # not an object
    (tmp_path / "b-null-config").mkdir()
    (tmp_path / "b-null-config" / "run.json").write_text(
        json.dumps({"format": "vaekit-run/1", "config": None, "data": {"sample_shape": [1, 8, 8]}}))
    copy_run(run_root, tmp_path / "c-good")
    server = Server(tmp_path, port=0)                       # opens the default run, a-damaged, at start-up
    try:
        explorer = server.registry.opened("a-damaged")
        assert explorer is not None
        info = explorer.info()
        assert info["evaluation"] is None
        # The cut line is skipped, or (if the run's reader refuses the file) the record is set aside.
        assert info["training"]["epochs"] in (epochs, 0)
        listing = {run["id"]: run for run in server.registry.listing()}
        assert listing["b-null-config"]["error"] and listing["c-good"]["error"] is None
    finally:
        server.socket.close()


# -- 9: class names that are not names -------------------------------------------------------------------
@pytest.mark.parametrize("plus, words", [
    ("--1", "unknown class '--1'"),
    ("²", "unknown class '²'"),
    ("３", "unknown class '３'"),                     # a full-width digit: int() takes it; indices are ASCII digits
    ("-3", "class index -3 is out of range"),
    ("9" * 200, "is out of range"),
])
def test_attribute_refuses_odd_class_names_with_a_4xx(client, plus, words):
    response = client.post("/api/attribute", json={"run": "digits-vae", "plus": plus, "minus": "1"})
    assert response.status_code == 422
    assert words in detail(response)


# -- 10: another loopback address ------------------------------------------------------------------------
def test_the_url_printed_for_another_loopback_address_works(run_root):
    try:
        server = Server(run_root, host="127.0.0.2", port=0)
    except Exception as exc:  # noqa: BLE001 - a system without the whole 127/8 on its loopback interface
        pytest.skip(f"cannot listen on 127.0.0.2 here ({exc})")
    with running(server) as url:
        assert url.startswith("http://127.0.0.2:")
        assert httpx.get(url + "api/runs", timeout=20).status_code == 200
        assert httpx.get(url + "api/runs", headers={"host": "localhost"}, timeout=20).status_code == 200
        rebound = httpx.get(url + "api/runs", headers={"host": "attacker.example"}, timeout=20)
        assert rebound.status_code == 421
