"""Fixtures of the app tests: a tiny-generator app server on a free port (helpers: app_http.py)."""

import threading

import pytest
import torch

from anycost.app import AppServer, ServedModel
from anycost.editing import EditDirections


@pytest.fixture
def tiny_directions(tiny_arch):
    """Two directions: "smile" on every style layer, "age" on the first two only (needs W+)."""
    vectors = torch.randn(2, tiny_arch.style_dim, generator=torch.Generator().manual_seed(1))
    return EditDirections(("smile", "age"), vectors, layers=(None, (0, 2)), source="test")


@pytest.fixture
def serve(tiny_generator, tiny_directions):
    """serve(**kw) -> a running AppServer of the tiny generator; kw go to ServedModel (or max_clients,
    max_per_client, ttl_s to AppServer). Every server is shut down after the test."""
    running = []

    def start(**kw):
        server_kw = {k: kw.pop(k) for k in ("max_clients", "max_per_client", "ttl_s") if k in kw}
        kw.setdefault("directions", tiny_directions)
        model = ServedModel(tiny_generator, "tiny test model", **kw)
        server = AppServer(model, "127.0.0.1", 0, **server_kw)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return server

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(5)
