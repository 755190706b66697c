"""Seconds per phase of a long step, for its log line, its Dagster metadata and `make bench`.

    watch = Stopwatch()
    with watch.phase("tables"):
        ...
    watch.seconds  # {"tables": 12.345}

A phase entered twice adds up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Wall-clock seconds of each named phase, in the order the phases first ran."""

    def __init__(self, seconds: dict[str, float] | None = None) -> None:
        # `seconds`: an earlier stopwatch's phases, to add this one's to
        self.seconds: dict[str, float] = {} if seconds is None else seconds

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self.seconds[name] = round(self.seconds.get(name, 0.0) + spent, 3)
