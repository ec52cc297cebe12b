import platform

import pytest

from anycost import memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


@glibc
def test_retain_freed_memory_sets_the_policy_and_is_idempotent():
    assert memory.retain_freed_memory()
    assert memory.is_retained()
    assert memory.retain_freed_memory()


def test_cli_policy_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("ANYCOST_RETAIN_MEMORY", "0")
    calls = []
    monkeypatch.setattr(memory, "retain_freed_memory", lambda: calls.append(1) or True)
    assert memory.apply_cli_policy() is False
    assert calls == []
    monkeypatch.setenv("ANYCOST_RETAIN_MEMORY", "1")
    assert memory.apply_cli_policy() is True
    assert calls == [1]
