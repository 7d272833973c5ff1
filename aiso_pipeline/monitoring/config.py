"""Monitoring settings: `<data dir>/reference/monitoring.yaml`, optional, key by key over the defaults.

    slices: [features.language, provider]   # categorical inputs to slice by: features.<key> or a raw column
    slice_min_requests: 200                 # weighted requests a slice (and the rest of its model) needs to be tested
    slice_margin: 0.02                      # success-rate gap below the rest of the model that is tolerated
    slice_alpha: 0.05                       # Benjamini-Hochberg false discovery rate over the day's slices
    slice_max_values: 50                    # values kept per model × feature × key (the most requested)
    drift_alert_alpha: 0.001                # a drifted column alerts only when its shift is significant at this level
    drift_weights: {features.language: 2}   # per column (default 1; 0: never alerts on its own)
    drift_reports: significant              # Evidently HTML pages: for models with a significant shift (the ones
                                            # that alert), `always` (every model every night) or `never`
    model_owners: {gpt-4o: team-search}     # shown on the model cards
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from aiso_pipeline.drift.config import CATEGORICAL_COLUMNS

SETTINGS_FILE = "monitoring.yaml"
# When the drift asset renders Evidently's HTML page for a model: `significant` only for a model with a drifted
# column whose shift is significant at drift_alert_alpha (what alerts; a quiet night then never imports Evidently,
# about 5 s), `always`, or `never`.
DRIFT_REPORTS = ("significant", "always", "never")
_FEATURE_KEY = re.compile(r"features\.[A-Za-z0-9_.:-]{1,100}\Z")


@dataclass(frozen=True)
class MonitoringConfig:
    slices: tuple[str, ...] = ("features.language",)
    slice_min_requests: float = 200.0
    slice_margin: float = 0.02
    slice_alpha: float = 0.05
    slice_max_values: int = 50
    drift_alert_alpha: float = 0.001
    drift_weights: dict[str, float] = field(default_factory=dict)
    model_owners: dict[str, str] = field(default_factory=dict)
    drift_reports: str = "significant"

    def __post_init__(self):
        object.__setattr__(self, "slices", tuple(dict.fromkeys(self.slices)))
        for key in self.slices:
            if not (_FEATURE_KEY.match(key) or key in CATEGORICAL_COLUMNS):
                raise ValueError(f"slices: {key!r} is neither features.<key> nor one of {', '.join(CATEGORICAL_COLUMNS)}")
        checks = [("slice_min_requests", self.slice_min_requests >= 1), ("slice_margin", 0 <= self.slice_margin < 1),
                  ("slice_alpha", 0 < self.slice_alpha < 1), ("slice_max_values", 1 <= self.slice_max_values <= 10_000),
                  ("drift_alert_alpha", 0 < self.drift_alert_alpha < 1)]
        if self.drift_reports not in DRIFT_REPORTS:
            raise ValueError(f"drift_reports: one of {', '.join(DRIFT_REPORTS)}, got {self.drift_reports!r}")
        for name, ok in checks:
            if not ok:
                raise ValueError(f"{name}: out of range, got {getattr(self, name)!r}")
        for col, w in self.drift_weights.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not (0 <= w <= 100 and math.isfinite(w)):
                raise ValueError(f"drift_weights.{col}: must be a number from 0 to 100, got {w!r}")

    def drift_weight(self, column: str) -> float:
        return float(self.drift_weights.get(column, 1.0))

    def slice_sources(self) -> list[tuple[str, str]]:
        """(key, source) per declared slice: a JSON path ($."a"."b", bound as a parameter) for features.<key>, else
        the raw column's whitelisted name."""
        out = []
        for key in self.slices:
            if key.startswith("features."):
                out.append((key, "$." + ".".join('"' + part.replace('"', "") + '"' for part in key.split(".")[1:])))
            else:
                out.append((key, key))
        return out


def load(data) -> MonitoringConfig:
    from aiso_pipeline.config import read_settings_yaml
    from aiso_pipeline.errors import AisoError

    path = data.reference / SETTINGS_FILE
    if not path.exists():
        return MonitoringConfig()
    raw = read_settings_yaml(path) or {}
    known = [f for f in MonitoringConfig.__dataclass_fields__]
    if not isinstance(raw, dict) or set(raw) - set(known):
        unknown = sorted(set(raw) - set(known)) if isinstance(raw, dict) else raw
        raise AisoError(f"{path}: unknown setting(s) {unknown}: the settings are {', '.join(known)}")
    if "slices" in raw and (not isinstance(raw["slices"], list) or not all(isinstance(s, str) for s in raw["slices"])):
        raise AisoError(f"{path}: slices must be a list of names (features.<key> or a raw column)")
    for key in ("slice_min_requests", "slice_margin", "slice_alpha", "slice_max_values", "drift_alert_alpha"):
        if key in raw and (isinstance(raw[key], bool) or not isinstance(raw[key], (int, float))):
            raise AisoError(f"{path}: {key} must be a number, got {raw[key]!r}")
    if "model_owners" in raw and (not isinstance(raw["model_owners"], dict)
                                  or not all(isinstance(v, str) for v in raw["model_owners"].values())):
        raise AisoError(f"{path}: model_owners must be a mapping model -> owner")
    if "drift_weights" in raw and not isinstance(raw["drift_weights"], dict):
        raise AisoError(f"{path}: drift_weights must be a mapping column -> weight")
    try:
        return MonitoringConfig(**{k: tuple(v) if k == "slices" else v for k, v in raw.items()})
    except (TypeError, ValueError) as e:
        raise AisoError(f"{path}: {e}") from None
