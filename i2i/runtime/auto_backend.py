"""`--backend auto` on the CPU: time every installed backend on the first batch, keep the fastest."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

Runner = Callable[[np.ndarray], np.ndarray]


class FastestRunner:
    """Holds candidate runners (name → factory); the first call builds each, times it on one
    image of the batch (after a warm-up run), keeps the fastest and says so in one line on
    stderr. A candidate that cannot be built here is left out, with its reason in that line."""

    def __init__(self, factories: dict[str, Callable[[], Runner]], on_choice: Callable[[str], None] = lambda _: None):
        self.factories, self.on_choice = factories, on_choice
        self.chosen: Runner | None = None
        self.timings: dict[str, float] = {}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.chosen is None:
            self._choose(batch[:1])
        return self.chosen(batch)

    def _choose(self, probe: np.ndarray) -> None:
        runners, skipped = {}, []
        for name, factory in self.factories.items():
            try:
                runners[name] = factory()
            except Exception as exc:  # noqa: BLE001 — e.g. a graph one runtime cannot convert; the others still run
                skipped.append(f"{name} unavailable ({type(exc).__name__})")
                continue
            runners[name](probe)  # warm-up: first-call allocation and kernel selection
            started = time.perf_counter()
            runners[name](probe)
            self.timings[name] = time.perf_counter() - started
        name = min(self.timings, key=self.timings.get)
        self.chosen = runners[name]
        self.on_choice(name)
        measured = ", ".join(f"{n} {1e3 * s:.0f} ms" for n, s in sorted(self.timings.items(), key=lambda kv: kv[1]))
        shape = "×".join(str(v) for v in probe.shape[1:3])
        print(
            f"backend auto: {name} ({measured} per {shape} image{'; ' if skipped else ''}{'; '.join(skipped)})",
            file=sys.stderr,
        )
