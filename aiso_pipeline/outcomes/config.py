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


SETTINGS_FILE = "outcomes.yaml"  # <data dir>/reference/outcomes.yaml, optional


def load_config(data) -> OutcomeConfig:
    """The attribution settings of a data directory: `reference/outcomes.yaml` (window_hours, success_events,
    conversion_events), else the defaults. The one place they are read: the join, the schedule's and the landing
    sensor's choice of days, and the lineage all follow it.

        window_hours: 48
        success_events: [Task Completed, Answer Accepted, Order Completed]
        conversion_events: [Order Completed]
    """
    from aiso_pipeline.config import read_settings_yaml
    from aiso_pipeline.errors import AisoError

    path = data.reference / SETTINGS_FILE
    if not path.exists():
        return OutcomeConfig()
    raw = read_settings_yaml(path) or {}
    known = ("window_hours", "success_events", "conversion_events")
    if not isinstance(raw, dict) or set(raw) - set(known):
        unknown = sorted(set(raw) - set(known)) if isinstance(raw, dict) else raw
        raise AisoError(f"{path}: unknown setting(s) {unknown}: the settings are {', '.join(known)}")
    for key in ("success_events", "conversion_events"):
        if key in raw and (not isinstance(raw[key], list) or not all(isinstance(e, str) for e in raw[key])):
            raise AisoError(f"{path}: {key} must be a list of event names")
    window = raw.get("window_hours", OutcomeConfig.window_hours)
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 <= window <= 24 * 90:
        raise AisoError(f"{path}: window_hours must be a number of hours from 0 to 2160, got {window!r}")
    return OutcomeConfig(float(window), tuple(raw.get("success_events", DEFAULT_SUCCESS_EVENTS)),
                         tuple(raw.get("conversion_events", DEFAULT_CONVERSION_EVENTS)))
