"""A scripted drag against a running app, over its HTTP API: what a user dragging a slider gets.

`measure_drag` opens a session, sends edits at `rate_hz` for `seconds` (moving the first edit direction
back and forth, or stepping through samples when the server has no directions) while a second thread
long-polls the renders, as the page does. Per drag it reports the previews delivered per second and the
delay from the last edit (just before it is sent) to the arrival of that edit's full render.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request


def _call(url: str, method: str = "GET", body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def measure_drag(url: str, seconds: float = 3.0, rate_hz: float = 100.0, repeats: int = 3) -> dict:
    """Medians over `repeats` drags: previews/s, last-edit-to-full delay (ms), preview and full render ms."""
    created = _call(url.rstrip("/") + "/api/sessions", "POST", {})
    api = f"{url.rstrip('/')}/api/sessions/{created['session']}"
    directions = created["model"]["directions"]
    arrivals: list[tuple[float, dict]] = []
    failures: list[BaseException] = []
    lock, stop = threading.Lock(), threading.Event()

    def poll() -> None:
        after = 0
        try:
            while not stop.is_set():
                render = _call(f"{api}/render?after={after}&timeout=1")["render"]
                if render is not None:
                    after = render["seq"]
                    with lock:
                        arrivals.append((time.perf_counter(), render))
        except Exception as err:  # re-raised by the measuring thread
            failures.append(err)
            stop.set()

    def edit(i: int) -> int:
        if directions:
            d = directions[0]
            phase = (i % 40) / 20  # a triangle wave between -limit/2 and +limit/2
            body = {"seed": 0, "strengths": {d["name"]: round(d["limit"] * (abs(phase - 1) - 0.5), 4)}}
        else:
            body = {"seed": i}
        return _call(f"{api}/edit", "POST", body)["request"]

    poller = threading.Thread(target=poll, name="anycost-measure-poll", daemon=True)
    poller.start()
    runs = []
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            n = 0
            while time.perf_counter() - start < seconds:
                last_sent = time.perf_counter()
                last = edit(n)
                n += 1
                time.sleep(max(0.0, start + n / rate_hz - time.perf_counter()))
            end = time.perf_counter()
            deadline = end + 60
            while time.perf_counter() < deadline and not failures:
                with lock:
                    full = [(t, r) for t, r in arrivals if r["kind"] == "full" and r["request"] == last]
                if full:
                    break
                time.sleep(0.002)
            else:
                if failures:
                    raise RuntimeError(f"polling the renders failed: {failures[0]}") from failures[0]
                raise TimeoutError(f"no full render of request {last} within 60 s")
            with lock:
                previews = [r for t, r in arrivals if r["kind"] == "preview" and start <= t <= end]
            runs.append({"edits_per_s": n / (end - start), "previews_per_s": len(previews) / (end - start),
                         "full_delay_ms": (full[0][0] - last_sent) * 1000, "full_ms": full[0][1]["ms"],
                         "preview_ms": statistics.median(r["ms"] for r in previews) if previews else None})
    finally:
        stop.set()
        poller.join(5)
        _call(api, "DELETE")
    keys = ("edits_per_s", "previews_per_s", "full_delay_ms", "full_ms", "preview_ms")
    summary = {k: statistics.median(r[k] for r in runs if r[k] is not None) for k in keys
               if any(r[k] is not None for r in runs)}
    return {**summary, "runs": runs, "seconds": seconds, "rate_hz": rate_hz, "idle_ms": created["model"]["idle_ms"]}
