"""The decode-ahead / encode-behind pipeline shared by generate and video."""

from __future__ import annotations

import threading

import pytest

from i2i.runtime.pipeline import WriteBehind, read_ahead


def test_read_ahead_loads_the_next_batch_while_the_caller_works():
    events, next_loaded = [], threading.Event()

    def load(batch):
        events.append(f"load {batch}")
        if batch == 2:
            next_loaded.set()
        return batch * 10

    seen = []
    for batch, loaded in read_ahead([1, 2, 3], load):
        if batch == 1:
            assert next_loaded.wait(5)  # batch 2 loads before the caller is done with batch 1
        seen.append((batch, loaded))
    assert seen == [(1, 10), (2, 20), (3, 30)]
    assert events == ["load 1", "load 2", "load 3"]
    assert list(read_ahead([], load)) == []


def test_a_load_error_reaches_the_caller():
    def load(batch):
        if batch == 2:
            raise ValueError("bad file")
        return batch

    with pytest.raises(ValueError, match="bad file"):
        list(read_ahead([1, 2, 3], load))


def test_write_behind_keeps_one_batch_in_flight_in_order_and_surfaces_errors():
    order, gate = [], threading.Event()
    with WriteBehind(1) as writes:
        assert writes.submit([lambda: (gate.wait(5), order.append("a"))]) == 0  # nothing before it
        gate.set()
        assert writes.submit([lambda: order.append("b"), lambda: order.append("c")]) == 1  # waited for "a"
        assert writes.close() == 2
    assert order == ["a", "b", "c"] and writes.written == 3

    failing = WriteBehind(2)
    failing.submit([lambda: (_ for _ in ()).throw(OSError("disk full: out.png"))])
    with pytest.raises(OSError, match="out.png"):
        failing.submit([])
