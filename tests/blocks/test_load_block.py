"""`load_block`: one API call per block per BLOCK_CACHE_S, a missing block included."""

import pytest

import blocks
from blocks import BackendCallback, forget_loaded_blocks, load_block


@pytest.fixture
def loads(monkeypatch):
    calls: list[str] = []
    block = BackendCallback(base_url="http://backend", internal_token="t")

    def load(name: str):
        calls.append(name)
        if name == "missing":
            raise ValueError("Unable to find block document named missing")
        return block

    monkeypatch.setattr(BackendCallback, "load", load)
    now = [1000.0]
    monkeypatch.setattr("blocks.time.monotonic", lambda: now[0])
    forget_loaded_blocks()
    yield calls, now
    forget_loaded_blocks()


def test_a_block_is_loaded_once_within_the_cache_time_then_again(loads):
    calls, now = loads
    first = load_block(BackendCallback, "backend")
    now[0] += blocks.BLOCK_CACHE_S - 1
    assert load_block(BackendCallback, "backend") is first
    assert calls == ["backend"]
    now[0] += 1
    load_block(BackendCallback, "backend")
    assert calls == ["backend", "backend"]


def test_a_missing_block_raises_each_time_but_is_asked_for_once(loads):
    calls, _ = loads
    for _ in range(3):
        with pytest.raises(ValueError, match="missing"):
            load_block(BackendCallback, "missing")
    assert calls == ["missing"]
