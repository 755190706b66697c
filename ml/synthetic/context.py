"""Run parameters, the calendar of the feeds and the random streams.

Every module draws from its own stream, `default_rng([seed, stream, ...])`, so the output depends
only on the arguments (never on the clock or on Python's string hashing) and changing one feed
does not shift the random numbers of another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from ml.synthetic.columns import DAY, epoch_day

# stream ids
PEOPLE, CRM, PRODUCTS, ORDERS, CONSENT, ERASURE, CLICKSTREAM, GHOSTS = range(1, 9)
ACCOUNTS = 9

DELTA_DAYS = 14  # CRM full export on end-14, then 14 daily deltas (also orders, consent)
CLICKSTREAM_DAYS = 90


@dataclass(frozen=True)
class Context:
    customers: int
    seed: int
    end: date

    def rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *keys])

    @property
    def full_export(self) -> date:
        """Date of the CRM full export and of the last monthly orders file."""
        return self.end - timedelta(days=DELTA_DAYS)

    @property
    def history_start(self) -> date:
        """First day of the orders history: two years before the full export."""
        full = self.full_export
        try:
            return full.replace(year=full.year - 2)
        except ValueError:  # 29 February
            return full.replace(year=full.year - 2, day=28)

    @property
    def delta_dates(self) -> list[date]:
        return [self.full_export + timedelta(days=k) for k in range(1, DELTA_DAYS + 1)]

    @property
    def clickstream_start(self) -> date:
        return self.end - timedelta(days=CLICKSTREAM_DAYS - 1)

    # epoch seconds of midnights (the same numbers serve for UTC and for London wall clock)
    @property
    def end_secs(self) -> int:
        """Midnight after end_date: nothing happens at or after this instant."""
        return (epoch_day(self.end) + 1) * DAY

    @property
    def full_export_secs(self) -> int:
        """Midnight after the full-export day: the delta window starts here."""
        return (epoch_day(self.full_export) + 1) * DAY

    @property
    def history_start_secs(self) -> int:
        return epoch_day(self.history_start) * DAY

    @property
    def clickstream_start_secs(self) -> int:
        return epoch_day(self.clickstream_start) * DAY
