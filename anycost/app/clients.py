"""Per-client state of the app: one `PreviewSession` per page, its newest render, its uploads.

A `Client` is one open page. `edit` turns an edit request into a latent and submits it to the client's
own `PreviewSession` (the page's preview config travels with each request); delivered renders go to the
client's mailbox, which keeps only the newest one: `next_render` long-polls it. `upload` queues the
projection of an image, whose status the page polls before editing the projected latent. Each client
guards its state with its own condition variable, so clients never share mutable state; the
`Clients` registry (its own lock) creates them, finds them by id and closes those idle for longer than
`ttl_s`.

The registry holds at most `max_clients` clients, at most `max_per_owner` of them per owner (the remote
address). A new client past either limit closes the least recently used client (of that owner, or of
all) that is not busy, i.e. has no render or projection still to come, so neither a crowd nor one
script can lock the others out: it can only take the places of idle pages. A request to a closed
client is answered 410 with the reason and "start a new session"; the page then opens a new one.
"""

from __future__ import annotations

import base64
import io
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch
from PIL import Image

from anycost.app.model import ApiError, ServedModel, public_message
from anycost.images import to_uint8
from anycost.preview import PreviewSession, Render, Request

#: Projected uploads a client keeps (the oldest is dropped).
MAX_UPLOADS = 8
#: Closed clients whose id the registry remembers, to answer 410 with the reason instead of 404.
REMEMBER_CLOSED = 1024
EDIT_FIELDS = ("seed", "latent", "strengths", "preview")


def png_data_url(image: torch.Tensor) -> str:
    """A raw generator output [1, 3, H, W] as a ``data:image/png;base64,...`` URL."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)[0]).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass
class Delivery:
    """The client's newest render (`render`), or a failed one (`error`); `seq` counts deliveries."""

    seq: int
    request: int
    kind: str
    render: Render | None = None
    error: str | None = None
    _json: dict | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        """The API's render object (the PNG is encoded on first use, by the thread that asks)."""
        if self._json is None:
            out = {"seq": self.seq, "request": self.request, "kind": self.kind}
            if self.render is None:
                out["error"] = self.error
            else:
                config = self.render.config
                out.update(ms=round(self.render.ms, 2), resolution=config.resolution, gmacs=config.macs / 1e9,
                           image=png_data_url(self.render.image))
            self._json = out
        return self._json


@dataclass
class Upload:
    """A projection in progress or done: status queued -> projecting -> ready | failed."""

    steps: int
    status: str = "queued"
    step: int = 0
    w_plus: torch.Tensor | None = None
    error: str | None = None
    future: Future | None = None

    def to_json(self, upload_id: str) -> dict:
        return {"latent": upload_id, "status": self.status, "step": self.step, "steps": self.steps,
                "error": self.error}


class Client:
    """One page's session (see the module doc); every method may be called from any thread."""

    def __init__(self, model: ServedModel, client_id: str, owner: str = ""):
        self.model, self.id, self.owner = model, client_id, owner
        self.last_seen = time.monotonic()
        self._cond = threading.Condition()
        self._session: PreviewSession | None = None
        self._request = 0  # id of the newest edit
        self._shown = 0  # request id of the newest delivered render
        self._finished = 0  # request id of the newest full render delivered or failed
        self._delivery: Delivery | None = None
        self._seq = 0
        self._uploads: OrderedDict[str, Upload] = OrderedDict()
        self._n_uploads = 0
        self._closed: str | None = None  # why the client was closed, once it is

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def _check_open(self) -> None:
        if self._closed is not None:
            raise ApiError(410, gone_message(self.id, self._closed))

    def _busy(self) -> bool:
        """A render of the newest edit or a projection is still to come (call with `_cond` held)."""
        return self._finished < self._request or any(up.status in ("queued", "projecting")
                                                      for up in self._uploads.values())

    # -- edits and renders ---------------------------------------------------------------------
    def edit(self, body) -> int:
        """Submit ``{"seed": int} | {"latent": upload id}`` with optional "strengths" and "preview"; returns
        the request id at once (renders arrive through `next_render`)."""
        if not isinstance(body, dict):
            raise ApiError(400, f"an edit must be a JSON object, got {type(body).__name__}")
        unknown = sorted(set(body) - set(EDIT_FIELDS))
        if unknown:
            raise ApiError(400, f"unknown edit field(s) {', '.join(unknown)}; the fields are {', '.join(EDIT_FIELDS)}")
        if ("seed" in body) == ("latent" in body):
            raise ApiError(400, "an edit needs exactly one of \"seed\" (a sample) or \"latent\" (an upload id)")
        w = self.model.latent_of_seed(body["seed"]) if "seed" in body else self._projected(body["latent"])
        w = self.model.edit(w, body.get("strengths", {}))
        preview = self.model.preview_config(body.get("preview", self.model.preview))
        with self._cond:
            self._check_open()
            if self._session is None:
                self._session = PreviewSession(
                    self.model.G, preview=self.model.preview_config(self.model.preview), full=self.model.full,
                    idle_s=self.model.idle_s, impl=self.model.impl, on_render=self._delivered,
                    on_error=self._failed, name=f"anycost-app-{self.id[:6]}")
            self._request += 1
            rid = self._request
            self._session.submit(Request(w, tag=rid, preview=preview))
        return rid

    def _publish(self, **fields) -> None:
        self._seq += 1
        self._delivery = Delivery(self._seq, **fields)
        self._cond.notify_all()

    def _delivered(self, render: Render) -> None:
        """PreviewSession callback: keep `render` unless a newer request's render was already delivered."""
        with self._cond:
            rid = render.tag
            if self._closed is not None or rid < self._shown or (render.kind == "full" and rid != self._request):
                return  # superseded by a newer request's render
            self._shown = rid
            if render.kind == "full":
                self._finished = rid
            self._publish(request=rid, kind=render.kind, render=render)

    def _failed(self, err: BaseException, session_request: int, kind: str) -> None:
        """PreviewSession callback: deliver the failure (under the newest request id: the page shows it)."""
        with self._cond:
            if kind == "full" and self._session is not None and session_request == self._session.latest_id:
                self._finished = self._request  # the newest edit's last render failed: nothing more to come
            if self._closed is None:
                self._publish(request=self._request, kind="error",
                              error=f"the {kind} render failed: {public_message(err)}")

    def next_render(self, after: int, timeout: float) -> dict | None:
        """The newest render delivered after delivery `after` (waiting up to `timeout` s), or None."""
        with self._cond:
            self._check_open()
            self._cond.wait_for(lambda: self._closed is not None or self._seq > after, timeout)
            self._check_open()
            delivery = self._delivery if self._seq > after else None
        self.touch()
        return delivery.to_json() if delivery is not None else None

    # -- uploads -------------------------------------------------------------------------------
    def upload(self, image: Image.Image) -> dict:
        """Queue the projection of a decoded upload; returns its status (with its id, "latent")."""
        up = Upload(self.model.project_steps)

        def progress(step: int, steps: int) -> bool:
            with self._cond:
                up.status, up.step = "projecting", step
                return self._closed is not None or up.future.cancelled()

        def done(future: Future) -> None:
            with self._cond:
                if future.cancelled():
                    up.status, up.error = "failed", "cancelled"
                elif future.exception() is not None:
                    err = future.exception()
                    up.status, up.error = "failed", f"projection failed: {type(err).__name__}: {public_message(err)}"
                else:
                    up.status, up.w_plus = "ready", future.result()

        with self._cond:
            self._check_open()
            up.future = self.model.start_projection(image, progress)
            self._n_uploads += 1
            upload_id = f"u{self._n_uploads}"
            self._uploads[upload_id] = up
            while len(self._uploads) > MAX_UPLOADS:
                self._uploads.popitem(last=False)[1].future.cancel()
            status = up.to_json(upload_id)
        up.future.add_done_callback(done)
        return status

    def upload_status(self, upload_id: str) -> dict:
        with self._cond:
            return self._upload(upload_id).to_json(upload_id)

    def _upload(self, upload_id) -> Upload:
        self._check_open()
        up = self._uploads.get(upload_id) if isinstance(upload_id, str) else None
        if up is None:
            raise ApiError(404, f"no upload {upload_id!r} in this session")
        return up

    def _projected(self, upload_id) -> torch.Tensor:
        with self._cond:
            up = self._upload(upload_id)
            if up.status != "ready":
                detail = f": {up.error}" if up.error else f" (step {up.step} of {up.steps})"
                raise ApiError(409, f"upload {upload_id} is {up.status}{detail}")
            return up.w_plus

    def retire(self, reason: str, *, unless_busy: bool = False) -> bool:
        """Answer every later request with 410 naming `reason` and wake the waiting ones (`close` then stops
        the rendering). With `unless_busy`, a busy client stays open: returns whether it was retired."""
        with self._cond:
            if unless_busy and self._busy():
                return False
            if self._closed is None:
                self._closed = reason
            self._cond.notify_all()
            return True

    def close(self, reason: str = "the server closed it") -> None:
        """Retire the client, stop rendering and cancel its queued projections."""
        self.retire(reason)
        with self._cond:
            session, self._session = self._session, None
            for up in self._uploads.values():
                up.future.cancel()
        if session is not None:
            session.close()


def gone_message(client_id: str, reason: str) -> str:
    return f"session {client_id!r} was closed: {reason}; start a new session (POST /api/sessions)"


class Clients:
    """The open clients of a server and their limits (see the module doc); idle for `ttl_s` s closes one."""

    def __init__(self, model: ServedModel, max_clients: int = 16, ttl_s: float = 600.0, max_per_owner: int = 8):
        if max_clients < 1 or max_per_owner < 1 or not ttl_s > 0:
            raise ValueError(f"max_clients and max_per_owner must be >= 1 and ttl_s > 0, got {max_clients}, "
                             f"{max_per_owner} and {ttl_s}")
        self.model, self.max_clients, self.ttl_s, self.max_per_owner = model, max_clients, ttl_s, max_per_owner
        self._lock = threading.Lock()
        self._clients: dict[str, Client] = {}
        self._closed: OrderedDict[str, str] = OrderedDict()  # id -> reason, of the latest REMEMBER_CLOSED

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)

    def create(self, owner: str = "") -> Client:
        """A new client of `owner`, in the place of an idle one if a limit is reached (429/503 if none is)."""
        self.expire()
        with self._lock:
            mine = [c for c in self._clients.values() if c.owner == owner]
            evicted = None
            if len(mine) >= self.max_per_owner:
                evicted = self._evict(mine, f"its address opened more than {self.max_per_owner} sessions, the "
                                            "limit, and this one was its least recently used")
                if evicted is None:
                    raise ApiError(429, f"your address already has {len(mine)} sessions rendering, its limit: "
                                        "retry in a few seconds", headers={"Retry-After": "5"})
            elif len(self._clients) >= self.max_clients:
                evicted = self._evict(self._clients.values(), f"the server holds at most {self.max_clients} "
                                                              "sessions and this one was the least recently used")
                if evicted is None:
                    raise ApiError(503, f"all {self.max_clients} sessions the server holds are rendering: retry "
                                        "in a few seconds", headers={"Retry-After": "5"})
            client = Client(self.model, secrets.token_urlsafe(12), owner)
            self._clients[client.id] = client
        if evicted is not None:
            evicted.close()  # outside the lock: this waits for its render thread to stop
        return client

    def _evict(self, candidates, reason: str) -> Client | None:
        """Retire and drop the least recently used of `candidates` that is not busy (with `_lock` held)."""
        for client in sorted(candidates, key=lambda c: c.last_seen):
            if client.retire(reason, unless_busy=True):
                self._forget(client, reason)
                return client
        return None

    def _forget(self, client: Client, reason: str) -> None:
        """Drop `client`, remembering why (with `_lock` held)."""
        del self._clients[client.id]
        self._closed[client.id] = reason
        while len(self._closed) > REMEMBER_CLOSED:
            self._closed.popitem(last=False)

    def get(self, client_id: str) -> Client:
        """The open client `client_id` (seen now); ApiError 410 if it was closed, 404 if it never was open."""
        self.expire()
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                raise self._missing(client_id)
        client.touch()
        return client

    def remove(self, client_id: str) -> None:
        """Close the client `client_id` at its page's request (ApiError 410 or 404 as `get`)."""
        reason = "its page closed it"
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                raise self._missing(client_id)
            self._forget(client, reason)
        client.close(reason)

    def _missing(self, client_id: str) -> ApiError:
        """The error for a client that is not open (with `_lock` held)."""
        reason = self._closed.get(client_id)
        if reason is not None:
            return ApiError(410, gone_message(client_id, reason))
        return ApiError(404, f"no session {client_id!r}: the server restarted or never opened it; start a new "
                             "session (POST /api/sessions)")

    def expire(self) -> None:
        """Close the clients idle for longer than `ttl_s`."""
        now = time.monotonic()
        reason = f"it was idle for more than {self.ttl_s:g} s"
        with self._lock:
            stale = [c for c in self._clients.values() if now - c.last_seen > self.ttl_s]
            for c in stale:
                self._forget(c, reason)
        for c in stale:
            c.close(reason)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close("the server stopped")
