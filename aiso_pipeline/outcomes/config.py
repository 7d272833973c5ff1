"""Attribution settings (CONTRACT section 5): the window and which product events count as outcomes."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

DEFAULT_SUCCESS_EVENTS = ("Task Completed", "Answer Accepted", "Order Completed")
DEFAULT_CONVERSION_EVENTS = ("Order Completed",)
MIN_JOIN_RATE = 0.95  # the join-rate target analysts are held to
MAX_UNATTRIBUTED_SHARE = 0.05  # the mirror image for product events: most outcomes should find their inference


@dataclass(frozen=True)
class OutcomeConfig:
    window_hours: float = 24.0
    success_events: tuple[str, ...] = DEFAULT_SUCCESS_EVENTS
    conversion_events: tuple[str, ...] = DEFAULT_CONVERSION_EVENTS

    def __post_init__(self):
        if not (self.window_hours >= 0 and math.isfinite(self.window_hours)):
            raise ValueError(f"window_hours must be a finite number >= 0, got {self.window_hours!r}")
        # Accept lists (e.g. from Dagster config) but keep the dataclass hashable.
        object.__setattr__(self, "success_events", tuple(self.success_events))
        object.__setattr__(self, "conversion_events", tuple(self.conversion_events))

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)

    @property
    def window_days(self) -> int:
        """Product (and later inference) partitions after day D that an inference of D can reach."""
        return math.ceil(self.window_hours / 24)

    def params(self) -> dict:
        return {"window": self.window, "days": self.window_days, "success_events": list(self.success_events),
                "conversion_events": list(self.conversion_events)}
