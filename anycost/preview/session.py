"""PreviewSession: render a cheap preview at once, the full-quality image when the user is idle.

An interactive app calls `submit(w)` on every slider move. `submit` never waits: it records the
request and returns its id. One worker thread then

1. renders the *preview* config for the latest request (older requests that were never started are
   dropped: only the latest matters);
2. once no new request has arrived for `idle_s` seconds, renders the *full* config for it.

A full render whose request is superseded is abandoned: on an `nn.Module` generator, forward pre-hooks on its
layers, there for the length of each full render, stop it at the next layer (so a full render runs layer by layer:
`Generator.forward` keeps its layers apart while they have hooks; previews run as one native call where they can);
on any other callable its result is discarded.
Either way a stale full render is never delivered. Previews are always delivered, even when a newer
request arrived while they rendered, so a continuous drag still shows frames.

Results arrive as `Render` records, through the `on_render` callback (called on the worker thread),
`latest(kind)`, or `wait_for(kind, timeout)`. A rendering exception is delivered too: `on_error`
receives it, and `wait_for` of that render raises `RenderError` from it. `close()` (or leaving the
``with`` block) stops the worker.

>>> with PreviewSession(G, preview=G.subnet(resolution=32, ratio=0.25)) as session:
...     request_id = session.submit(w)
...     quick = session.wait_for("preview", timeout=5).image
...     best = session.wait_for("full", timeout=30).image
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

KINDS = ("preview", "full")
#: How many finished (kind, request id) outcomes are kept for `wait_for`.
KEEP_OUTCOMES = 256


class RenderError(RuntimeError):
    """A render failed; the generator's exception is the ``__cause__``."""

    def __init__(self, message: str, request_id: int, kind: str):
        super().__init__(message)
        self.request_id, self.kind = request_id, kind


class Superseded(LookupError):
    """The awaited render will never be delivered: a newer request replaced it."""


class SessionClosed(RuntimeError):
    """The session was closed."""


class _Abandon(Exception):
    """Raised inside the generator (by a layer hook) to stop a full render that became stale."""


@dataclass(frozen=True)
class Request:
    """What to render: w (W [1, style_dim] or W+), an optional `tag` echoed back in the `Render`, and an
    optional `preview` config that replaces the session's for this request (an app's cost control)."""

    w: torch.Tensor
    tag: object = None
    preview: object = None

    def config(self, kind: str, configs: dict):
        return self.preview if kind == "preview" and self.preview is not None else configs[kind]


@dataclass(frozen=True)
class Render:
    """One delivered image: `kind` is "preview" or "full", `ms` the render's wall time."""

    image: torch.Tensor
    kind: str
    request_id: int
    ms: float
    config: object = None
    tag: object = field(default=None, compare=False)


class PreviewSession:
    """Preview first, full quality when idle, for the latest submitted request (see the module doc).

    `G` is a generator (``G(w, config=..., noise=..., impl=...)``) or any callable with that signature.
    `preview` / `full` are the two `SubnetConfig`s (`full` defaults to ``G.full_config``). `noise` is
    passed through ("const" keeps the image stable between requests). Thread-safe: any thread may
    submit, read or wait.
    """

    def __init__(self, G, preview, full=None, idle_s: float = 0.3, impl: str = "auto", *, noise="const",
                 on_render: Callable[[Render], None] | None = None,
                 on_error: Callable[[BaseException, int, str], None] | None = None, name: str = "anycost-preview"):
        if not callable(G):
            raise TypeError(f"G must be a generator or a callable, got {type(G).__name__}")
        if isinstance(idle_s, bool) or not isinstance(idle_s, (int, float)) or not idle_s >= 0:
            raise ValueError(f"idle_s must be a number >= 0, got {idle_s!r}")
        self.G = G
        self.configs = {"preview": preview, "full": full if full is not None else getattr(G, "full_config", None)}
        self.idle_s, self.impl, self.noise = float(idle_s), impl, noise
        self.on_render, self.on_error = on_render, on_error
        self.stats = {"submitted": 0, "preview": 0, "full": 0, "abandoned": 0, "discarded": 0, "errors": 0}
        self._cond = threading.Condition()
        self._next_id = 0
        self._latest: tuple[int, Request] | None = None  # the newest request
        self._last_submit = 0.0
        self._preview_due = False  # the newest request still needs its preview
        self._full_due = False  # ... and its full render
        self._busy: tuple[str, int] | None = None  # (kind, id) being rendered
        self._abort = threading.Event()  # set when the full render in progress became stale
        self._closed = False
        self._latest_render: dict[str, Render] = {}
        self._outcomes: OrderedDict[tuple[str, int], Render | BaseException] = OrderedDict()
        self._last_error: BaseException | None = None
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    # -- the caller's side ---------------------------------------------------------------------
    def submit(self, request) -> int:
        """Queue `request` (a w tensor or a `Request`) as the latest; returns its id at once."""
        if not isinstance(request, Request):
            request = Request(request)
        if not isinstance(request.w, torch.Tensor):
            raise TypeError(f"w must be a torch.Tensor, got {type(request.w).__name__}")
        with self._cond:
            if self._closed:
                raise SessionClosed("the preview session is closed")
            self._next_id += 1
            rid = self._next_id
            self._latest = (rid, request)
            self._last_submit = time.monotonic()
            self._preview_due = self._full_due = True
            self.stats["submitted"] += 1
            if self._busy is not None and self._busy[0] == "full":
                self._abort.set()
            self._cond.notify_all()
        return rid

    @property
    def latest_id(self) -> int | None:
        with self._cond:
            return self._latest[0] if self._latest else None

    @property
    def last_error(self) -> BaseException | None:
        """The most recent rendering exception (also given to `on_error` and raised by `wait_for`)."""
        with self._cond:
            return self._last_error

    def latest(self, kind: str | None = None) -> Render | None:
        """The most recently delivered render (of `kind`, if given), or None."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        with self._cond:
            if kind is not None:
                return self._latest_render.get(kind)
            renders = list(self._latest_render.values())
        return max(renders, key=lambda r: (r.request_id, r.kind == "full")) if renders else None

    def wait_for(self, kind: str, timeout: float | None = None, request_id: int | None = None) -> Render:
        """Block until the `kind` render of `request_id` (default: of whatever request is the latest) is
        delivered and return it. Raises `RenderError` if it failed, `Superseded` if a newer request means
        it will never come, `TimeoutError` after `timeout` seconds, `SessionClosed` if the session closes."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                rid = request_id if request_id is not None else (self._latest[0] if self._latest else None)
                if rid is None:
                    raise ValueError("nothing was submitted yet")
                if rid > self._latest[0] or rid < 1:
                    raise ValueError(f"no request {rid} was submitted (the latest is {self._latest[0]})")
                outcome = self._outcomes.get((kind, rid))
                if isinstance(outcome, Render):
                    return outcome
                if outcome is not None:
                    raise RenderError(f"the {kind} render of request {rid} failed: {outcome!r}", rid, kind) \
                        from outcome
                if request_id is not None and self._latest[0] != rid and (kind == "full" or self._busy != (kind, rid)):
                    raise Superseded(f"request {rid} was superseded by request {self._latest[0]} before its "
                                     f"{kind} render was delivered")
                if self._closed:
                    raise SessionClosed("the preview session is closed")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no {kind} render of request {rid} within {timeout} s")
                self._cond.wait(remaining)

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop the worker (a render in progress is abandoned where possible) and wait for it."""
        with self._cond:
            self._closed = True
            self._abort.set()
            self._cond.notify_all()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> PreviewSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the worker ----------------------------------------------------------------------------
    def _install_hooks(self) -> list:
        """Pre-hooks on the generator's layers that stop a stale full render (only in the worker thread): installed
        for the length of one full render."""
        if not isinstance(self.G, torch.nn.Module):
            return []

        def check(module, args):
            if self._abort.is_set() and threading.current_thread() is self._worker:
                raise _Abandon()

        return [m.register_forward_pre_hook(check) for name, m in self.G.named_modules() if name.count(".") <= 1
                and name and not isinstance(m, (torch.nn.ModuleList, torch.nn.ModuleDict))]

    def _next_job(self) -> tuple[str, int, Request] | None:
        with self._cond:
            while not self._closed:
                if self._preview_due:
                    self._preview_due = False
                    rid, req = self._latest
                    self._busy = ("preview", rid)
                    self._abort.clear()
                    return "preview", rid, req
                if self._full_due:
                    wait = self._last_submit + self.idle_s - time.monotonic()
                    if wait <= 0:
                        self._full_due = False
                        rid, req = self._latest
                        self._busy = ("full", rid)
                        self._abort.clear()
                        return "full", rid, req
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _render(self, kind: str, req: Request) -> torch.Tensor:
        hooks = self._install_hooks() if kind == "full" else []
        try:
            with torch.inference_mode():
                return self.G(req.w, config=req.config(kind, self.configs), noise=self.noise, impl=self.impl)
        finally:
            for h in hooks:
                h.remove()

    def _finish(self, kind: str, rid: int, outcome) -> bool:
        """Record an outcome unless it is a stale full render (or the session closed); True if recorded."""
        with self._cond:
            self._busy = None
            stale = self._closed or (kind == "full" and self._latest[0] != rid)
            if stale:
                self.stats["discarded"] += 1
            else:
                self._outcomes[(kind, rid)] = outcome
                while len(self._outcomes) > KEEP_OUTCOMES:
                    self._outcomes.popitem(last=False)
                if isinstance(outcome, Render):
                    self._latest_render[kind] = outcome
                    self.stats[kind] += 1
                else:
                    self._last_error = outcome
                    self.stats["errors"] += 1
            self._cond.notify_all()
            return not stale

    def _run(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                break
            kind, rid, req = job
            start = time.perf_counter()
            try:
                image = self._render(kind, req)
            except _Abandon:
                with self._cond:
                    self._busy = None
                    self.stats["abandoned"] += 1
                    self._cond.notify_all()
                continue
            except Exception as err:  # delivered to the caller, never swallowed
                if self._finish(kind, rid, err) and self.on_error is not None:
                    self._call_back(self.on_error, err, rid, kind)
                continue
            render = Render(image, kind, rid, (time.perf_counter() - start) * 1000, req.config(kind, self.configs),
                            req.tag)
            if self._finish(kind, rid, render) and self.on_render is not None:
                self._call_back(self.on_render, render)
        with self._cond:
            self._busy = None
            self._cond.notify_all()

    def _call_back(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as err:  # a failing callback must not kill the worker: it becomes `last_error`
            with self._cond:
                self._last_error = err
                self.stats["errors"] += 1
