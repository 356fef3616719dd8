"""Decode ahead, infer here, encode behind: the three-stage pipeline of `i2i generate` and `i2i video`.

While the caller's thread runs the model on one batch, the next batch is being decoded on a
reader thread and the previous batch's outputs are being encoded on writer threads. At most one
batch is read ahead and one written behind, so memory stays bounded whatever the input's length,
and an error of either side surfaces in the caller's thread, naming its file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Batch = TypeVar("Batch")
Loaded = TypeVar("Loaded")


def read_ahead(batches: Iterable[Batch], load: Callable[[Batch], Loaded]) -> Iterator[tuple[Batch, Loaded]]:
    """Each batch with `load(batch)`; the next batch's load runs on a reader thread while the
    caller works on this one."""
    with ThreadPoolExecutor(1, "read-ahead") as reader:
        upcoming = iter(batches)
        batch = next(upcoming, None)
        pending = reader.submit(load, batch) if batch is not None else None
        while pending is not None:
            loaded = pending.result()
            current, batch = batch, next(upcoming, None)
            pending = reader.submit(load, batch) if batch is not None else None
            yield current, loaded


class WriteBehind:
    """Writes run on `threads` writer threads; submitting a batch waits for the batch before it,
    so one batch is written while the next is computed. With one thread, writes keep their order
    (a video's frames)."""

    def __init__(self, threads: int, name: str = "write-behind"):
        self.pool = ThreadPoolExecutor(threads, name)
        self.pending: list[Future] = []
        self.written = 0

    def submit(self, writes: list[Callable[[], object]]) -> int:
        """Start `writes`; returns how many writes of the previous batch completed."""
        earlier, self.pending = self.pending, [self.pool.submit(write) for write in writes]
        return self._wait(earlier)

    def close(self) -> int:
        """Wait for the last batch; returns how many of its writes completed."""
        done, self.pending = self._wait(self.pending), []
        self.pool.shutdown()
        return done

    def _wait(self, jobs: list[Future]) -> int:
        for job in jobs:
            job.result()  # a write's error (disk full, permissions) with its file named
        self.written += len(jobs)
        return len(jobs)

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True)  # what was started is finished: each write is whole or absent
