"""The app's JSON API over real HTTP: renders, isolation of concurrent clients, refused requests, uploads."""

import http.client
import io
import json
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from app_http import (
    PIXEL_TOLERANCE,
    assert_other_pixels,
    assert_same_pixels,
    call,
    decode_png,
    expected_pixels,
    pixel_distance,
)
from PIL import Image

import anycost.app
from anycost.app import measure_drag
from anycost.app.model import MAX_UPLOAD_BYTES
from anycost.cli import build_parser

TIMEOUT = 30.0


def new_session(server, source: str | None = None) -> str:
    status, reply = call(server, "POST", "/api/sessions", {}, source=source)
    assert status == 201, reply
    return reply["session"]


def gone(server, sid: str) -> str:
    """The reason the server gives for having closed session `sid` (asserting the answer says so)."""
    status, reply = call(server, "GET", f"/api/sessions/{sid}/render?timeout=0")
    assert status == 410 and reply["error"].endswith("; start a new session (POST /api/sessions)"), reply
    return reply["error"].removeprefix(f"session {sid!r} was closed: ").split(";")[0]


def alive(server, sid: str) -> bool:
    return call(server, "GET", f"/api/sessions/{sid}/render?timeout=0")[0] == 200


def wait_render(server, sid: str, kind: str, request: int, after: int = 0) -> dict:
    """Poll until the `kind` render of `request` arrives; every render seen must be of this client's requests."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        status, reply = call(server, "GET", f"/api/sessions/{sid}/render?after={after}&timeout=5")
        assert status == 200, reply
        render = reply["render"]
        if render is None:
            continue
        assert render["seq"] > after and render["kind"] != "error", render
        after = render["seq"]
        if render["kind"] == kind and render["request"] == request:
            return render
    raise AssertionError(f"no {kind} render of request {request} within {TIMEOUT} s")


def png_bytes(size=(40, 30), fmt="PNG", mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "orange" if mode == "RGB" else 1).save(buffer, format=fmt)
    return buffer.getvalue()


def test_edit_gives_a_preview_then_the_full_render(serve):
    server = serve(idle_s=0.05)
    sid = new_session(server)
    status, reply = call(server, "POST", f"/api/sessions/{sid}/edit", {"seed": 7, "strengths": {"smile": 1.0}})
    assert (status, reply) == (200, {"request": 1})
    full = wait_render(server, sid, "full", 1)
    assert full["resolution"] == 32 and full["ms"] > 0 and abs(full["gmacs"] - server.model.full.macs / 1e9) < 1e-9
    assert_same_pixels(decode_png(full["image"]), expected_pixels(server.model, 7, {"smile": 1.0}))
    assert_other_pixels(decode_png(full["image"]), expected_pixels(server.model, 7, {"smile": 0.9}))

    preview = {"resolution": 8, "ratio": 0.5}  # another preview config: the client's session is rebuilt
    status, reply = call(server, "POST", f"/api/sessions/{sid}/edit",
                         {"seed": 7, "strengths": {"age": -1.5}, "preview": preview})
    assert (status, reply) == (200, {"request": 2})
    shown = wait_render(server, sid, "preview", 2, after=full["seq"])
    config = server.model.preview_config(preview)
    assert shown["resolution"] == 8 and decode_png(shown["image"]).shape == (8, 8, 3)
    assert_same_pixels(decode_png(shown["image"]), expected_pixels(server.model, 7, {"age": -1.5}, config))
    assert_other_pixels(decode_png(shown["image"]), expected_pixels(server.model, 7, {"age": -1.35}, config))
    assert wait_render(server, sid, "full", 2, after=full["seq"])["resolution"] == 32


def test_concurrent_clients_never_see_each_others_renders(serve):
    server = serve(idle_s=0.05)
    n_clients, n_edits = 6, 15
    results, errors = {}, []

    def client(k: int) -> None:
        try:
            sid = new_session(server)
            ids = []
            for i in range(n_edits):
                strengths = {"smile": round(0.1 * i - 0.5, 2), "age": 0.3 * (k % 3)}
                status, reply = call(server, "POST", f"/api/sessions/{sid}/edit",
                                     {"seed": 100 * k + i % 4, "strengths": strengths,
                                      "preview": {"resolution": 16 if k % 2 else 8, "ratio": 0.25}})
                assert status == 200, reply
                ids.append(reply["request"])
            full = wait_render(server, sid, "full", ids[-1])
            results[k] = (ids, decode_png(full["image"]), 100 * k + (n_edits - 1) % 4, strengths)
        except Exception as err:  # reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * TIMEOUT)
    assert not errors, errors
    assert len(results) == n_clients and len(server.clients) == n_clients
    for ids, pixels, seed, strengths in results.values():
        assert ids == list(range(1, n_edits + 1))  # request ids are per client
        assert_same_pixels(pixels, expected_pixels(server.model, seed, strengths))
    images = [pixels for _, pixels, _, _ in results.values()]  # each client got its own image, not another's
    assert min(pixel_distance(a, b) for i, a in enumerate(images) for b in images[:i]) > PIXEL_TOLERANCE


def test_pixel_checks_allow_one_level_and_no_more():
    image = np.full((4, 4, 3), 128, np.uint8)

    def off_by(levels: int) -> np.ndarray:  # the diagonal's pixels moved by `levels`
        return image + np.eye(4, dtype=np.uint8)[..., None] * levels

    assert_same_pixels(off_by(1), image)
    assert_other_pixels(off_by(2), image)
    for check, other in ((assert_same_pixels, off_by(2)), (assert_other_pixels, off_by(1)),
                         (assert_same_pixels, image[:2])):
        with pytest.raises(AssertionError):
            check(other, image)


BAD_EDITS = [
    (b"{not json", "malformed JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"seed": 1, "latent": "u1"}', "exactly one of"),
    (b'{"strengths": {}}', "exactly one of"),
    (b'{"seed": -1}', "seed must be an integer"),
    (b'{"seed": 1.5}', "seed must be an integer"),
    (b'{"seed": 1, "colour": 3}', "unknown edit field(s) colour"),
    (b'{"seed": 1, "strengths": {"smiling": 1}}', "unknown edit direction 'smiling' (known: smile, age)"),
    (b'{"seed": 1, "strengths": {"smile": 1e9}}', "must be within"),
    (b'{"seed": 1, "strengths": {"smile": "1"}}', "must be a finite number"),
    (b'{"seed": 1, "strengths": [1]}', "strengths must be an object"),
    (b'{"seed": 1, "preview": {"resolution": 12, "ratio": 0.25}}', "preview resolution must be one of [8, 16, 32]"),
    (b'{"seed": 1, "preview": {"resolution": 16, "ratio": 0.3}}', "preview ratio must be one of"),
    (b'{"seed": 1, "preview": 16}', "preview must be an object"),
    (b'{"latent": "u9"}', "no upload 'u9'"),
]


def test_bad_edits_get_a_clear_4xx(serve):
    server = serve()
    sid = new_session(server)
    for body, message in BAD_EDITS:
        status, reply = call(server, "POST", f"/api/sessions/{sid}/edit", data=body,
                             headers={"Content-Type": "application/json"})
        assert status in (400, 404) and message in reply["error"], (body, reply)
    status, reply = call(server, "POST", f"/api/sessions/{sid}/edit", {"seed": 1})  # the session still works
    assert status == 200 and reply["request"] == 1


def test_unknown_sessions_paths_and_methods(serve):
    server = serve()
    for method, path in (("POST", "/api/sessions/nope/edit"), ("GET", "/api/sessions/nope/render"),
                         ("POST", "/api/sessions/nope/uploads"), ("DELETE", "/api/sessions/nope"),
                         ("GET", "/api/sessions/nope/uploads/u1")):
        status, reply = call(server, method, path, data=b"{}" if method == "POST" else None)
        assert status == 404 and "no session 'nope'" in reply["error"], (method, path, reply)
    sid = new_session(server)
    assert call(server, "GET", "/api/nothing")[0] == 404
    assert call(server, "GET", f"/api/sessions/{sid}/edit") == (405, {"error": "GET is not allowed here; use POST"})
    status, reply = call(server, "GET", f"/api/sessions/{sid}/render?after=x")
    assert status == 400 and "after must be a number" in reply["error"]
    status, reply = call(server, "GET", "/", headers={"Host": "attacker.example:80"})
    assert status == 403 and "refused" in reply["error"]
    assert call(server, "DELETE", f"/api/sessions/{sid}") == (200, {"closed": sid})
    assert gone(server, sid) == "its page closed it"
    assert call(server, "POST", f"/api/sessions/{sid}/edit", {"seed": 1})[0] == 410


def test_closing_a_session_wakes_its_long_poll(serve):
    server = serve()
    sid = new_session(server)
    answers = []
    poller = threading.Thread(target=lambda: answers.append(
        call(server, "GET", f"/api/sessions/{sid}/render?after=0&timeout=20")))
    poller.start()
    time.sleep(0.2)
    start = time.monotonic()
    assert call(server, "DELETE", f"/api/sessions/{sid}")[0] == 200
    poller.join(TIMEOUT)
    assert time.monotonic() - start < 5 and answers[0][0] == 410 and "closed" in answers[0][1]["error"]


def test_idle_sessions_expire(serve):
    server = serve(ttl_s=0.3)
    first = new_session(server)
    new_session(server)
    time.sleep(0.5)  # both idle past the ttl: closed on the next request
    assert gone(server, first) == "it was idle for more than 0.3 s"
    assert len(server.clients) == 0
    new_session(server)


def test_one_address_cannot_lock_others_out(serve):
    server = serve(max_clients=4, max_per_client=2)
    mine = new_session(server, "127.0.0.1")
    script = [new_session(server, "127.0.0.2") for _ in range(6)]  # each past 2 takes its own oldest's place
    assert [gone(server, sid) for sid in script[:4]] == ["its address opened more than 2 sessions, the limit, and "
                                                         "this one was its least recently used"] * 4
    assert alive(server, mine) and len(server.clients) == 3
    crowd = [new_session(server, "127.0.0.3") for _ in range(3)]  # the table is full from the second on
    assert gone(server, script[4]) == "the server holds at most 4 sessions and this one was the least recently used"
    assert gone(server, crowd[0]).startswith("its address opened more than 2 sessions")
    assert all(alive(server, sid) for sid in (mine, script[5], *crowd[1:])) and len(server.clients) == 4
    assert len({new_session(server, f"127.0.0.{k}") for k in range(10, 20)}) == 10  # nobody is ever locked out
    assert gone(server, mine).startswith("the server holds at most 4 sessions")  # but can be made to reconnect


def test_rendering_sessions_keep_their_place(serve):
    server = serve(max_clients=2, max_per_client=1, idle_s=1.0)  # each edit is rendered in full after 1 s
    first, second = new_session(server, "127.0.0.1"), new_session(server, "127.0.0.2")
    for sid in (first, second):
        assert call(server, "POST", f"/api/sessions/{sid}/edit", {"seed": 1})[0] == 200
    for source, code, text in (("127.0.0.1", 429, "your address already has 1 sessions rendering"),
                               ("127.0.0.3", 503, "all 2 sessions the server holds are rendering")):
        status, headers, body = raw_request(server, "POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                    "Content-Length: 0\r\nConnection: close\r\n\r\n", source)
        assert status == code and headers["Retry-After"] == "5" and text in json.loads(body)["error"], body
    wait_render(server, second, "full", 1)
    wait_render(server, first, "full", 1)  # both idle now; `first` used last
    new_session(server, "127.0.0.3")
    assert alive(server, first) and gone(server, second).startswith("the server holds at most 2 sessions")


def raw_request(server, head: str, source: str | None = None) -> tuple[int, dict, bytes]:
    """Send only `head` (request line + headers, no body) on a socket; (status, headers, body) of the answer."""
    with socket.create_connection(server.server_address[:2], TIMEOUT, (source, 0) if source else None) as sock:
        sock.sendall(head.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ", 2)[1]), headers, body


def test_every_refusal_is_json_and_wrong_methods_get_405_with_allow(serve):
    server = serve()
    sid = new_session(server)
    wrong_methods = [("PUT", f"/api/sessions/{sid}", "DELETE"), ("PATCH", "/api/sessions", "POST"),
                     ("DELETE", f"/api/sessions/{sid}/render", "GET"), ("OPTIONS", f"/api/sessions/{sid}/edit", "POST"),
                     ("PUT", "/", "GET, HEAD"), ("POST", "/static/app.js", "GET, HEAD")]
    for method, path, allowed in wrong_methods:
        status, headers, body = raw_request(server, f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                    "Content-Length: 2\r\n\r\n{}")
        assert (status, headers.get("Allow")) == (405, allowed), (method, path, headers, body)
        assert headers["Content-Type"] == "application/json", (method, path, headers)
        assert json.loads(body) == {"error": f"{method} is not allowed here; use {allowed.replace(', ', ' or ')}"}
    refused = [("PUT /nowhere HTTP/1.1", 404, "no such path /nowhere"),
               ("BREW /api/sessions HTTP/1.1", 501, "method BREW is not supported"),  # a method with no do_BREW
               ("TRACE / HTTP/1.1", 501, "method TRACE is not supported"),
               ("GET /" + "a" * 70000 + " HTTP/1.1", 414, "Request-URI Too Long"),  # refused by http.server
               ("GET / HTTP/1.1\r\nX-Long: " + "a" * 70000, 431, "Line too long")]
    for line, code, message in refused:
        status, headers, body = raw_request(server, f"{line}\r\nHost: 127.0.0.1\r\n\r\n")
        assert status == code and headers["Content-Type"] == "application/json", (line[:40], status, headers)
        assert message in json.loads(body)["error"], (line[:40], body)
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=TIMEOUT)  # HEAD, then GET on one connection
    conn.request("HEAD", "/")
    head = conn.getresponse()
    assert head.status == 200 and head.getheader("Content-Type").startswith("text/html") and head.read() == b""
    conn.request("GET", "/")
    assert len(conn.getresponse().read()) == int(head.getheader("Content-Length")) > 0  # HEAD told the page's length
    conn.close()


def test_bad_uploads_are_refused_with_a_clear_error(serve):
    server = serve()
    sid = new_session(server)
    path = f"/api/sessions/{sid}/uploads"

    def upload(data: bytes, content_type: str | None):
        return call(server, "POST", path, data=data, headers={"Content-Type": content_type} if content_type else {})

    status, reply = upload(png_bytes(), "image/gif")
    assert status == 415 and "PNG or JPEG" in reply["error"] and "image/gif" in reply["error"]
    status, reply = upload(png_bytes(), None)
    assert status == 415 and "no Content-Type" in reply["error"]
    status, reply = upload(b"hello, not an image", "image/png")
    assert status == 400 and "not a readable PNG image" in reply["error"]
    status, reply = upload(png_bytes(fmt="JPEG"), "image/png")
    assert status == 415 and "the file is JPEG, not the PNG" in reply["error"]
    status, reply = upload(png_bytes()[:60], "image/png")  # a truncated PNG
    assert status == 400 and "not a readable PNG image" in reply["error"]
    status, reply = upload(b"", "image/png")
    assert status == 400 and "empty" in reply["error"]
    status, reply = upload(png_bytes(size=(6000, 5000), mode="1"), "image/png")  # small file, 30 megapixels
    assert status == 413 and "megapixels" in reply["error"]
    # refused from the Content-Length alone, before any of the body is sent
    status, headers, body = raw_request(server, f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                                f"image/png\r\nContent-Length: {MAX_UPLOAD_BYTES + 1}\r\n\r\n")
    assert status == 413 and headers["Content-Type"] == "application/json" and b"the limit is 4 MB" in body
    status, reply = call(server, "GET", f"/api/sessions/{sid}/render?timeout=0")
    assert status == 200 and reply == {"render": None}  # nothing was queued


#: A default object repr such as "<_io.BytesIO object at 0x7f...>": never in a message a user sees.
OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


def test_garbage_upload_gets_a_message_without_object_reprs(serve):
    server = serve()
    sid = new_session(server)
    status, reply = call(server, "POST", f"/api/sessions/{sid}/uploads", data=b"\x00garbage\xff" * 20,
                         headers={"Content-Type": "image/png"})
    assert status == 400 and reply["error"].startswith("the upload is not a readable PNG image: "), reply
    assert not OBJECT_REPR.search(reply["error"]) and "0x" not in reply["error"], reply


def failing(error: type, text: str):
    """A function that raises `error` with `text` followed by an object repr."""
    def fail(*args, **kwargs):
        raise error(f"{text} {object()}")
    return fail


def test_internal_and_render_errors_show_no_object_reprs(serve, monkeypatch):
    server = serve(idle_s=0.05)
    sid = new_session(server)
    monkeypatch.setattr(server.model.G, "forward", failing(ValueError, "bad input"))  # the page shows the error
    assert call(server, "POST", f"/api/sessions/{sid}/edit", {"seed": 1})[0] == 200
    status, reply = call(server, "GET", f"/api/sessions/{sid}/render?after=0&timeout=10")
    assert status == 200 and reply["render"]["error"] == "the preview render failed: bad input", reply
    monkeypatch.setattr(server.model, "latent_of_seed", failing(RuntimeError, "no"))  # a bug: answered 500
    status, reply = call(server, "POST", f"/api/sessions/{sid}/edit", {"seed": 1})
    assert (status, reply) == (500, {"error": "internal error: RuntimeError: no"})


def test_upload_is_projected_then_edited(serve):
    server = serve(project_steps=3, idle_s=0.05)
    sid = new_session(server)
    status, job = call(server, "POST", f"/api/sessions/{sid}/uploads", data=png_bytes(fmt="JPEG"),
                       headers={"Content-Type": "image/jpeg"})
    assert status == 202 and job["latent"] == "u1" and job["status"] in ("queued", "projecting", "ready")
    deadline = time.monotonic() + TIMEOUT
    while job["status"] != "ready" and time.monotonic() < deadline:
        assert job["status"] in ("queued", "projecting"), job
        time.sleep(0.05)
        status, job = call(server, "GET", f"/api/sessions/{sid}/uploads/u1")
    assert job == {"latent": "u1", "status": "ready", "step": 3, "steps": 3, "error": None}
    status, reply = call(server, "POST", f"/api/sessions/{sid}/edit", {"latent": "u1", "strengths": {"age": 1}})
    assert status == 200
    full = wait_render(server, sid, "full", reply["request"])
    assert decode_png(full["image"]).shape == (32, 32, 3)
    other = new_session(server)  # uploads belong to their session
    status, reply = call(server, "POST", f"/api/sessions/{other}/edit", {"latent": "u1"})
    assert status == 404 and "no upload 'u1'" in reply["error"]


def test_static_page_is_served_locally(serve):
    server = serve()
    host, port = server.server_address[:2]
    for path, kind in (("/", "text/html"), ("/static/app.js", "text/javascript"), ("/static/app.css", "text/css")):
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        assert response.status == 200 and response.getheader("Content-Type").startswith(kind)
        assert "http://" not in body and "https://" not in body  # no CDN: everything comes from this server
    assert call(server, "GET", "/static/../model.py")[0] == 404
    assert call(server, "GET", "/static/missing.js")[0] == 404
    static = Path(anycost.app.__file__).parent / "static"
    assert sorted(p.name for p in static.iterdir()) == ["app.css", "app.js", "index.html"]


def test_measure_drag_and_the_cli(serve):
    server = serve(idle_s=0.05)
    m = measure_drag(server.url, seconds=0.5, rate_hz=50, repeats=1)
    assert m["previews_per_s"] > 0 and m["edits_per_s"] > 10 and m["full_delay_ms"] >= 50 and m["full_ms"] > 0
    assert len(server.clients) == 0  # measure_drag closes its session
    args = build_parser().parse_args(["serve", "--port", "0", "--preview-resolution", "16", "--idle-ms", "100"])
    assert (args.port, args.preview_resolution, args.idle_ms, args.host) == (0, 16, 100, "127.0.0.1")
    assert (args.max_sessions, args.max_sessions_per_client, args.session_ttl) == (16, 8, 600)
    args = build_parser().parse_args(["serve", "--max-sessions-per-client", "2", "--session-ttl", "30"])
    assert (args.max_sessions_per_client, args.session_ttl) == (2, 30)
