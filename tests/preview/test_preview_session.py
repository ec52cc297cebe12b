"""PreviewSession with a slow fake generator: preview first, full when idle, stale renders never delivered."""

import threading
import time
from collections import defaultdict

import pytest
import torch

from anycost.preview import PreviewSession, Render, RenderError, Request, SessionClosed, Superseded

TIMEOUT = 10.0  # generous: nothing here should take more than a fraction of it
#: Real renders come from the session's worker thread and are checked against renders on the test's thread.
#: The intra-op thread count is a per-thread OpenMP setting, so the two may run the convolutions with
#: different thread counts, hence different float32 summation orders (as do other instruction sets). A
#: reordered sum moves each layer's output by a few ulps: on the tiny generator's images (|x| up to ~5)
#: that is ~3e-6 (measured between batch sizes on AMD Zen 4). 1e-4 leaves ~30x room; an image of another
#: latent or config differs by ~1, and the tests check that the stale request's image is outside it.
RENDER_TOL = dict(rtol=0, atol=1e-4)


class SlowFake:
    """A generator stand-in: returns w * 1 after sleeping; configs are the strings "P" and "F"."""

    def __init__(self, preview_s=0.01, full_s=0.05, fail=None):
        self.preview_s, self.full_s, self.fail = preview_s, full_s, fail
        self.started = defaultdict(threading.Event)
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, w, config=None, noise=None, impl=None):
        with self.lock:
            self.calls.append((config, float(w.flatten()[0])))
        self.started[config].set()
        time.sleep(self.preview_s if config == "P" else self.full_s)
        if self.fail is not None and self.fail(w, config):
            raise ValueError(f"bad w for {config}")
        return w * 1


class Recorder:
    def __init__(self):
        self.renders, self.errors, self.times = [], [], []
        self.lock = threading.Lock()

    def on_render(self, r: Render):
        with self.lock:
            self.renders.append(r)
            self.times.append(time.monotonic())

    def on_error(self, err, rid, kind):
        with self.lock:
            self.errors.append((err, rid, kind))

    def kinds(self, kind):
        with self.lock:
            return [r for r in self.renders if r.kind == kind]


def w_of(value: float) -> torch.Tensor:
    return torch.full((1, 4), float(value))


def session(fake, rec=None, idle_s=0.1, **kw):
    rec = rec or Recorder()
    return PreviewSession(fake, preview="P", full="F", idle_s=idle_s, on_render=rec.on_render,
                          on_error=rec.on_error, **kw), rec


def test_preview_then_full_for_one_request():
    s, rec = session(SlowFake())
    with s:
        rid = s.submit(w_of(3))
        p = s.wait_for("preview", TIMEOUT)
        f = s.wait_for("full", TIMEOUT)
    assert (p.kind, p.request_id, p.config) == ("preview", rid, "P") and torch.equal(p.image, w_of(3))
    assert (f.kind, f.request_id, f.config) == ("full", rid, "F") and f.ms > 0 and p.ms > 0
    assert [r.kind for r in rec.renders] == ["preview", "full"]
    assert s.latest("full") == f and s.latest() == f and s.latest("preview") == p
    assert not s._worker.is_alive()


def test_a_request_may_carry_its_own_preview_config():
    fake = SlowFake()
    s, rec = session(fake)
    with s:
        s.submit(Request(w_of(1), preview="cheap"))
        assert s.wait_for("preview", TIMEOUT).config == "cheap"
        assert s.wait_for("full", TIMEOUT).config == "F", "the full render never takes the preview config"
        s.submit(w_of(2))
        assert s.wait_for("preview", TIMEOUT).config == "P"
        s.wait_for("full", TIMEOUT)
    assert [c for c, _ in fake.calls] == ["cheap", "F", "P", "F"]


def test_submit_never_blocks_and_only_the_latest_gets_a_full_render():
    fake = SlowFake(preview_s=0.4, full_s=0.05)
    s, rec = session(fake, idle_s=0.1)
    with s:
        ids = [s.submit(w_of(0))]
        assert fake.started["P"].wait(TIMEOUT)
        start = time.monotonic()
        ids += [s.submit(w_of(i)) for i in range(1, 20)]
        assert time.monotonic() - start < 0.3  # 19 submits while a 0.4 s preview renders
        f = s.wait_for("full", TIMEOUT)
        time.sleep(0.3)
    assert ids == list(range(1, 21)) and f.request_id == 20 and torch.equal(f.image, w_of(19))
    assert [r.request_id for r in rec.kinds("full")] == [20]
    previews = [r.request_id for r in rec.kinds("preview")]
    assert previews[-1] == 20 and len(previews) < 20  # intermediate requests were dropped
    assert previews == sorted(previews)


def test_stale_full_render_is_never_delivered():
    fake = SlowFake(full_s=0.4)
    s, rec = session(fake, idle_s=0.05)
    with s:
        r1 = s.submit(w_of(1))
        assert fake.started["F"].wait(TIMEOUT)  # the full render of r1 is running
        r2 = s.submit(w_of(2))
        with pytest.raises(Superseded):
            s.wait_for("full", TIMEOUT, request_id=r1)
        f = s.wait_for("full", TIMEOUT)
        assert f.request_id == r2 and torch.equal(f.image, w_of(2))
        time.sleep(0.1)
    assert [r.request_id for r in rec.kinds("full")] == [r2]
    assert s.stats["discarded"] >= 1 and s.stats["full"] == 1


def test_full_render_of_a_module_is_abandoned_between_layers(tiny_generator):
    G = tiny_generator
    preview, full = G.subnet(resolution=8, ratio=0.25), G.full_config
    in_full = threading.Event()

    def slow_last_block(module, args):  # only the full (32 px) config runs this layer
        in_full.set()
        time.sleep(0.3)

    handle = G.convs[-1].register_forward_pre_hook(slow_last_block)
    try:
        rec = Recorder()
        with PreviewSession(G, preview=preview, idle_s=0.05, on_render=rec.on_render) as s:
            assert s.configs["full"] == full
            w1, w2 = G.mapping(torch.randn(1, 32)), G.mapping(torch.randn(1, 32))
            s.submit(w1)
            assert in_full.wait(TIMEOUT)
            r2 = s.submit(w2)
            f = s.wait_for("full", TIMEOUT)
        assert s.stats["abandoned"] == 1 and s.stats["full"] == 1
        assert f.request_id == r2 and [r.request_id for r in rec.kinds("full")] == [r2]
        with torch.no_grad():
            torch.testing.assert_close(f.image, G(w2, config=full, noise="const"), **RENDER_TOL)
            assert not torch.allclose(f.image, G(w1, config=full, noise="const"), **RENDER_TOL)
            p = s.latest("preview")
            assert p.image.shape[-1] == 8
            torch.testing.assert_close(p.image, G(w2, config=preview, noise="const"), **RENDER_TOL)
            assert not torch.allclose(p.image, G(w1, config=preview, noise="const"), **RENDER_TOL)
    finally:
        handle.remove()
    with torch.no_grad():  # the session's hooks are gone after close
        G(w1, noise="const")


def test_no_full_render_while_submissions_keep_coming():
    fake = SlowFake(preview_s=0.0, full_s=0.01)
    idle = 0.4
    s, rec = session(fake, idle_s=idle)
    with s:
        end = time.monotonic() + 0.8
        while time.monotonic() < end:
            s.submit(w_of(1))
            last = time.monotonic()
            time.sleep(0.02)
        assert rec.kinds("full") == []
        f = s.wait_for("full", TIMEOUT)
    assert f.request_id == s.latest_id
    full_times = [t for r, t in zip(rec.renders, rec.times) if r.kind == "full"]
    assert len(full_times) == 1 and full_times[0] >= last + 0.8 * idle
    assert len(rec.kinds("preview")) >= 2


def test_many_threads_submitting():
    fake = SlowFake(preview_s=0.001, full_s=0.01)
    s, rec = session(fake, idle_s=0.05)
    ids, lock = [], threading.Lock()

    def worker(k):
        for i in range(50):
            rid = s.submit(w_of(k * 100 + i))
            with lock:
                ids.append(rid)

    with s:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        f = s.wait_for("full", TIMEOUT)
        time.sleep(0.1)
    assert sorted(ids) == list(range(1, 401)) and s.stats["submitted"] == 400
    assert f.request_id == 400 and rec.kinds("full")[-1].request_id == 400
    assert all(r.request_id <= 400 for r in rec.renders) and s.stats["errors"] == 0


def test_errors_reach_the_caller_and_the_session_survives():
    fake = SlowFake(fail=lambda w, config: float(w.flatten()[0]) < 0)
    s, rec = session(fake, idle_s=0.05)
    with s:
        bad = s.submit(w_of(-1))
        with pytest.raises(RenderError) as info:
            s.wait_for("preview", TIMEOUT)
        assert isinstance(info.value.__cause__, ValueError) and info.value.request_id == bad
        with pytest.raises(RenderError):
            s.wait_for("full", TIMEOUT)
        assert isinstance(s.last_error, ValueError) and s.stats["errors"] == 2
        assert [(rid, kind) for _, rid, kind in rec.errors] == [(bad, "preview"), (bad, "full")]
        good = s.submit(w_of(5))
        assert s.wait_for("full", TIMEOUT).request_id == good


def test_failing_callback_does_not_kill_the_worker():
    def boom(render):
        raise RuntimeError("callback bug")

    with PreviewSession(SlowFake(), preview="P", full="F", idle_s=0.01, on_render=boom) as s:
        s.submit(w_of(1))
        s.wait_for("full", TIMEOUT)
        assert isinstance(s.last_error, RuntimeError)
        rid = s.submit(w_of(2))
        assert s.wait_for("full", TIMEOUT).request_id == rid


def test_close_and_bad_arguments():
    fake = SlowFake(full_s=0.3)
    s, _ = session(fake, idle_s=0.0)
    with pytest.raises(ValueError, match="nothing was submitted"):
        s.wait_for("full", 0.1)
    with pytest.raises(ValueError, match="kind"):
        s.wait_for("final", 0.1)
    s.submit(w_of(1))
    assert fake.started["F"].wait(TIMEOUT)
    with pytest.raises(TimeoutError):
        s.wait_for("full", 0.01)
    with pytest.raises(ValueError, match="no request 7"):
        s.wait_for("full", 0.01, request_id=7)
    waiter_error = []

    def waiter():
        try:
            s.wait_for("full", TIMEOUT, request_id=1)
        except Exception as err:
            waiter_error.append(err)

    t = threading.Thread(target=waiter)
    t.start()
    s.close()
    t.join(TIMEOUT)
    assert not s._worker.is_alive() and s.closed
    assert waiter_error and isinstance(waiter_error[0], SessionClosed)
    assert s.stats["full"] == 0  # the render that finished after close() was not delivered
    with pytest.raises(SessionClosed):
        s.submit(w_of(2))
    s.close()  # idempotent
    with pytest.raises(ValueError):
        PreviewSession(fake, preview="P", full="F", idle_s=-1)
    with pytest.raises(TypeError):
        PreviewSession("not callable", preview="P")
    with PreviewSession(fake, preview="P", full="F") as s2:
        with pytest.raises(TypeError):
            s2.submit([1, 2])
