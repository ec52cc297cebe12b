"""The HTTP side of `anycost serve`: a small JSON API and one static page, on the standard library's server.

The API answers JSON. Every refusal, of any path, gets a 4xx/5xx status and ``{"error": message}``, the
standard library server's own too (a malformed request line, an unknown method); a known path asked with
the wrong method gets 405 with an Allow header.

    POST   /api/sessions                    -> 201 {"session": id, "model": ServedModel.info()}; 429 / 503 with
                                               Retry-After when the client's address / the server has all its
                                               sessions rendering (an idle one would be closed to make room)
    DELETE /api/sessions/<id>               -> {"closed": id}
    POST   /api/sessions/<id>/edit          {"seed": n | "latent": upload id, "strengths": {name: x},
                                             "preview": {"resolution": r, "ratio": q}} -> {"request": n}, at once
    GET    /api/sessions/<id>/render?after=<seq>[&timeout=<s>]
                                            -> {"render": newest render delivered after `seq`, or null after
                                               `timeout` s (default 20, at most 30)}; a render is {"seq", "request",
                                               "kind": "preview" | "full" | "error", "ms", "resolution",
                                               "gmacs", "image": PNG data URL} (or "error")
    POST   /api/sessions/<id>/uploads       PNG or JPEG bytes with Content-Type image/png | image/jpeg
                                            -> 202 upload status {"latent", "status", "step", "steps", "error"}
    GET    /api/sessions/<id>/uploads/<latent> -> upload status (queued | projecting | ready | failed)
    GET    /  and  /static/<file>           -> the page (anycost/app/static)

A request to a session that was closed (by its page, idle for too long, or to make room) gets 410 with the
reason: the page then starts a new session.

The server binds 127.0.0.1 by default; while it is bound to a loopback address it also refuses requests
whose Host header is not a loopback name, so a web page elsewhere cannot reach it by DNS rebinding.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from anycost.app.clients import Clients
from anycost.app.model import MAX_UPLOAD_BYTES, ApiError, ServedModel, decode_upload, public_message

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
#: Largest accepted JSON body.
MAX_JSON_BYTES = 64 * 1024
#: Default and longest wait of a long poll for a render (s).
DEFAULT_WAIT_S, MAX_WAIT_S = 20.0, 30.0
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")  # "::1": the bind address
#: Everything the page needs is served from here: no CDN, no inline script.
PAGE_POLICY = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'"


class AppServer(ThreadingHTTPServer):
    """Serves `model` (see the module doc); `url` is where to point a browser.

    At most `max_clients` sessions are open, at most `max_per_client` per remote address; a new session past
    a limit takes the place of the least recently used one that is not rendering (`Clients`), and a session
    without a request for `ttl_s` s is closed.

    The server owns the model: `server_close` closes every client session and the model's projection
    thread. `verbose` logs every request to stderr (otherwise only refused ones).
    """

    daemon_threads = True

    def __init__(self, model: ServedModel, host: str = "127.0.0.1", port: int = 0, *, max_clients: int = 16,
                 max_per_client: int = 8, ttl_s: float = 600.0, verbose: bool = False):
        self.model, self.verbose = model, verbose
        self.clients = Clients(model, max_clients, ttl_s, max_per_client)
        self.loopback = host in LOOPBACK_NAMES
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def server_close(self) -> None:
        self.clients.close()
        self.model.close()
        super().server_close()


class Handler(BaseHTTPRequestHandler):
    """One HTTP request: route, run, answer JSON (or a static file)."""

    protocol_version = "HTTP/1.1"
    timeout = 120  # s: an idle keep-alive connection is closed (a long poll waits at most MAX_WAIT_S)
    server: AppServer

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def _do_unused(self):  # methods no path takes: routed all the same, for a 405 that names the right ones
        self._dispatch(self.command)

    do_PUT = do_PATCH = do_OPTIONS = _do_unused  # any other method gets send_error's 501

    # -- plumbing ------------------------------------------------------------------------------
    _body_pending = False  # True while the request's body is unread (set for each request by _dispatch)

    def _dispatch(self, method: str) -> None:
        self._body_pending = True  # until the body is read: answering before that closes the connection
        try:
            self._check_host()
            url = urlsplit(self.path)
            parts = [p for p in url.path.split("/") if p]
            if parts == [] or parts[0] == "static":
                _allow(method, "GET", "HEAD")
                self._static(parts[1:] if parts else ["index.html"])
                return
            if parts[:2] != ["api", "sessions"]:
                raise ApiError(404, f"no such path {url.path}")
            self._send_json(*self._api(method, parts[2:], parse_qs(url.query)))
        except ApiError as err:
            self._send_json(err.status, {"error": public_message(err)}, err.headers)
        except Exception as err:  # a bug: answered (the page shows it) and logged with its traceback
            self.log_error("%s", traceback.format_exc())
            self._send_json(500, {"error": f"internal error: {type(err).__name__}: {public_message(err)}"})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (malformed request line, unknown method, headers too long) as
        JSON like every other answer, on a connection then closed: the rest of the request was not read."""
        self.close_connection = True
        if code == 501:
            message = f"method {self.command} is not supported: the API uses GET, POST and DELETE"
        self._send_json(code, {"error": public_message(message or self.responses.get(code, ("error",))[0])})

    def _check_host(self) -> None:
        if self.server.loopback:
            host = self.headers.get("Host") or ""
            name = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
            if name not in LOOPBACK_NAMES:
                raise ApiError(403, f"Host {host!r} refused: this local server answers only to 127.0.0.1 and "
                                    "localhost")

    def _content_length(self, limit: int, what: str) -> int:
        text = self.headers.get("Content-Length")
        if text is None:
            if self.headers.get("Transfer-Encoding"):
                raise ApiError(411, f"send the {what} with a Content-Length (chunked bodies are not accepted)")
            self._body_pending = False
            return 0
        try:
            length = int(text)
        except ValueError:
            raise ApiError(400, f"bad Content-Length {text!r}") from None
        if length < 0:
            raise ApiError(400, f"bad Content-Length {text!r}")
        if length > limit:
            raise ApiError(413, f"the {what} is {length / 2**20:.1f} MB; the limit is {limit / 2**20:.2g} MB")
        return length

    def _read_body(self, length: int) -> bytes:
        data = self.rfile.read(length)
        self._body_pending = False
        if len(data) != length:
            raise ApiError(400, f"the body ended after {len(data)} of {length} bytes")
        return data

    def _json_body(self):
        data = self._read_body(self._content_length(MAX_JSON_BYTES, "JSON body"))
        if not data:
            return {}
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ApiError(400, f"malformed JSON body: {err}") from None

    def _send_json(self, status: int, payload: dict, extra: dict | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", extra)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            if self.close_connection or (self._body_pending and self.command not in ("GET", "HEAD")):
                self.send_header("Connection", "close")  # the unread body must not be parsed as a request
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has the headers of the GET answer, and no body
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the page went away (e.g. reloaded mid long-poll)
            self.close_connection = True

    def log_request(self, code="-", size="-") -> None:
        if self.server.verbose or (isinstance(code, int) and code >= 400):
            super().log_request(code, size)

    def log_message(self, format: str, *args) -> None:
        sys.stderr.write(f"anycost serve: {self.address_string()} {format % args}\n")

    # -- routes --------------------------------------------------------------------------------
    def _static(self, parts: list[str]) -> None:
        name = parts[0] if len(parts) == 1 else ""
        path = STATIC_DIR / name
        if not re.fullmatch(r"[a-z0-9_-]+\.[a-z]+", name) or path.suffix not in CONTENT_TYPES or not path.is_file():
            raise ApiError(404, f"no such file /static/{'/'.join(parts)}")
        extra = {"Content-Security-Policy": PAGE_POLICY} if path.suffix == ".html" else None
        self._send(200, path.read_bytes(), CONTENT_TYPES[path.suffix], extra)

    def _api(self, method: str, rest: list[str], query: dict) -> tuple[int, dict]:
        clients = self.server.clients
        if not rest:
            _allow(method, "POST")
            self._json_body()  # no fields yet; read so the connection stays usable
            client = clients.create(owner=self.client_address[0])
            return 201, {"session": client.id, "model": self.server.model.info()}
        client_id, action = rest[0], rest[1:]
        if not action:
            _allow(method, "DELETE")
            clients.remove(client_id)
            return 200, {"closed": client_id}
        if action == ["edit"]:
            _allow(method, "POST")
            body = self._json_body()
            return 200, {"request": clients.get(client_id).edit(body)}
        if action == ["render"]:
            _allow(method, "GET")
            after = _query_number(query, "after", int, 0)
            wait = _query_number(query, "timeout", float, DEFAULT_WAIT_S)
            if after < 0 or not 0 <= wait <= MAX_WAIT_S:
                raise ApiError(400, f"need after >= 0 and 0 <= timeout <= {MAX_WAIT_S:g}, got after={after}, "
                                    f"timeout={wait}")
            return 200, {"render": clients.get(client_id).next_render(after, wait)}
        if action == ["uploads"]:
            _allow(method, "POST")
            client = clients.get(client_id)
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            self.server.model.check_upload(content_type)  # before reading the body
            data = self._read_body(self._content_length(MAX_UPLOAD_BYTES, "upload"))
            return 202, client.upload(decode_upload(data, content_type))
        if len(action) == 2 and action[0] == "uploads":
            _allow(method, "GET")
            return 200, clients.get(client_id).upload_status(action[1])
        raise ApiError(404, f"no such path {self.path}")


def _allow(method: str, *allowed: str) -> None:
    """ApiError 405, with the Allow header, unless `method` is one of `allowed`."""
    if method not in allowed:
        raise ApiError(405, f"{method} is not allowed here; use {' or '.join(allowed)}",
                       headers={"Allow": ", ".join(allowed)})


def _query_number(query: dict, name: str, kind: type, default):
    values = query.get(name)
    if not values:
        return default
    try:
        return kind(values[-1])
    except ValueError:
        raise ApiError(400, f"query parameter {name} must be a number, got {values[-1]!r}") from None
