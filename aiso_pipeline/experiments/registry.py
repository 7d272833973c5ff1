"""The experiment registry, `<data dir>/reference/experiments.yaml` (CONTRACT section 6): loading and validation.

The file is optional, and so is every entry: an experiment seen in marts.joined_outcomes without an entry gets
the defaults below. A mistake in the file (unknown key, unknown metric, bad weight...) stops the run with a
one-line AisoError naming the file, the experiment and the key, because a silently ignored typo would change a
ship / stop decision.

    experiments:
      - id: confidence_threshold           # required; the experiment_id on the inference events
        description: Serve a cheap fallback when confidence < 0.5   # optional, shown in the readout
        control: control                   # default: the variant named `control`, else the first by name
        weights: {control: 0.5, fallback_low_conf: 0.5}  # expected split for SRM; default: equal
        primary_metric: conversion_rate    # default conversion_rate
        secondary_metrics: [revenue_per_user, success_rate]  # default: every other metric not a guardrail
        guardrails: [latency_ms, cost_per_user, error_rate]  # default these three; or {metric: increase|decrease}
        margins: {latency_ms: 0.05}        # non-inferiority margin per guardrail (relative); default 0.02
        mde: 0.05                          # target relative MDE, compared with the achievable one
        start: 2025-06-01                  # default: the first day with an exposure
        end: 2025-06-30                    # optional; later as-of days report the readout frozen at `end`;
                                           # a fixed-horizon test (sequential: false) decides from this day
        sample_size: 20000                 # fixed horizon: or once every arm has this many users
        feature: chat                      # optional (string or list): metrics from these features' inferences
        scope: experiment                  # experiment (default) | user: all of the user's inferences
        alpha: 0.05                        # significance level
        correction: holm                   # holm (default) | bh, over primary + secondary metrics x variants
        sequential: true                   # default: confidence sequences, valid at every daily look; false:
                                           # fixed horizon, deciding only from `end` / `sample_size`
        sequential_tuning: 5000            # total units at which the confidence sequence is tightest
        min_days: 7                        # burn-in of a sequential test: no ship/stop before this many days
        min_units_per_arm: 100             # ... and this many users in every arm
        power: 0.8                         # for the MDE
        cuped: true                        # CUPED on the 14 days before exposure (per-user metrics)
        cap: {revenue_per_user: 500}       # absolute cap per per-user metric
        winsorize: {revenue_per_user: 0.99}  # cap at this pooled quantile of exposed users
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from aiso_pipeline.config import read_settings_yaml
from aiso_pipeline.errors import AisoError
from aiso_pipeline.experiments.metrics import catalog
from aiso_pipeline.stats.decision import DEFAULT_MIN_DAYS, DEFAULT_MIN_UNITS_PER_ARM
from aiso_pipeline.text import safe_slug

# The metrics and their defaults come from experiments/metrics.yaml.
METRICS = catalog().metrics
LOWER_IS_BETTER = catalog().lower_is_better
DEFAULT_PRIMARY = catalog().primary
DEFAULT_GUARDRAILS = catalog().guardrails
DEFAULT_ALPHA = 0.05
CUPED_DAYS = 14
SCOPES = ("experiment", "user")
KEYS = ("id", "description", "name", "owner", "hypothesis", "control", "weights", "primary_metric",
        "secondary_metrics", "guardrails", "mde", "start", "end", "feature", "features", "scope", "alpha",
        "correction", "sequential", "sequential_tuning", "power", "cuped", "cap", "winsorize", "margins",
        "sample_size", "min_days", "min_units_per_arm")


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment's analysis settings: a registry entry with the defaults filled in."""

    id: str
    registered: bool = False
    description: str | None = None
    control: str | None = None
    weights: Mapping[str, float] | None = None  # None: equal weights over the variants seen
    primary: str = DEFAULT_PRIMARY
    secondary: tuple[str, ...] | None = None  # None: analyze()'s default (every other non-guardrail metric)
    guardrails: Mapping[str, str] = field(default_factory=lambda: {m: METRICS[m].harm for m in DEFAULT_GUARDRAILS})
    target_mde: float | None = None
    start: dt.date | None = None  # None: first exposure
    end: dt.date | None = None
    features: tuple[str, ...] | None = None  # None: the features the experiment's exposures were seen on
    scope: str = "experiment"
    alpha: float = DEFAULT_ALPHA
    correction: str = "holm"
    sequential: bool = True  # safe under daily peeking (stats.decision)
    sequential_tuning: float = 5000.0
    min_days: int = DEFAULT_MIN_DAYS
    min_units_per_arm: int = DEFAULT_MIN_UNITS_PER_ARM
    sample_size: int | None = None  # fixed horizon: users per arm at which it decides
    margins: Mapping[str, float] = field(default_factory=dict)  # guardrail -> relative margin (default 0.02)
    power: float = 0.8
    cuped: bool = True
    cap: Mapping[str, float] = field(default_factory=dict)
    winsorize: Mapping[str, float] = field(default_factory=dict)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metrics analysed: primary, secondaries, guardrails (each once, in that order)."""
        sec = self.secondary if self.secondary is not None else tuple(
            m for m in METRICS if m != self.primary and m not in self.guardrails)
        return tuple(dict.fromkeys((self.primary, *sec, *self.guardrails)))


def default_config(experiment_id: str) -> ExperimentConfig:
    """The settings of an experiment the registry does not list (CONTRACT section 6)."""
    return ExperimentConfig(id=experiment_id)


def _fail(path: Path, where: str, message: str) -> AisoError:
    return AisoError(f"{path}: {where}{message}")


def _metric(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or value not in METRICS:
        raise _fail(path, where, f"unknown metric {value!r} (known: {', '.join(METRICS)})")
    return value


def _number(path: Path, where: str, value: Any, lo: float, hi: float, *, lo_open=True, hi_open=False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        lb, rb = "(" if lo_open else "[", ")" if hi_open else "]"
        raise _fail(path, where, f"must be a number in {lb}{lo:g}, {hi:g}{rb}, got {value!r}")
    return float(value)


def _date(path: Path, where: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise _fail(path, where, f"must be a date YYYY-MM-DD, got {value!r}") from None


def _bool(path: Path, where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, where, f"must be true or false, got {value!r}")
    return value


def _str_list(path: Path, where: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise _fail(path, where, f"must be a name or a non-empty list of names, got {value!r}")
    return tuple(dict.fromkeys(items))


def _per_metric(path: Path, where: str, value: Any, lo: float, hi: float, hi_open: bool) -> dict[str, float]:
    if not isinstance(value, dict):
        raise _fail(path, where, f"must be a mapping metric -> number, got {value!r}")
    out = {}
    for metric, v in value.items():
        _metric(path, where, metric)
        if not METRICS[metric].cap:
            raise _fail(path, where, f"{metric} is a {METRICS[metric].kind} metric; caps apply to "
                                     f"{', '.join(catalog().cappable)}")
        out[metric] = _number(path, f"{where}{metric}: ", v, lo, hi, hi_open=hi_open)
    return out


def parse_entry(entry: Any, path: Path, index: int) -> ExperimentConfig:
    """One registry entry → ExperimentConfig, or AisoError naming the problem."""
    if not isinstance(entry, dict):
        raise _fail(path, f"experiments[{index}]: ", f"must be a mapping with at least `id`, got {entry!r}")
    eid = entry.get("id")
    if not isinstance(eid, str) or not eid.strip():
        raise _fail(path, f"experiments[{index}]: ", "needs an `id` (the experiment_id on the inference events)")
    w = f"experiment {eid!r}: "
    unknown = [k for k in entry if k not in KEYS]
    if unknown:
        raise _fail(path, w, f"unknown key {unknown[0]!r} (known: {', '.join(KEYS)}): fix the spelling")
    kw: dict[str, Any] = {"id": eid, "registered": True}
    for key in ("description", "name"):
        if entry.get(key) is not None and kw.get("description") is None:
            kw["description"] = str(entry[key])
    if "control" in entry:
        if not isinstance(entry["control"], str) or not entry["control"]:
            raise _fail(path, w, f"control must be a variant name, got {entry['control']!r}")
        kw["control"] = entry["control"]
    if "weights" in entry:
        weights = entry["weights"]
        if not isinstance(weights, dict) or len(weights) < 2:
            raise _fail(path, w, f"weights must map at least two variants to their share, got {weights!r}")
        clean = {str(k): _number(path, f"{w}weights.{k}: ", v, 0, float("inf"), hi_open=True)
                 for k, v in weights.items()}
        kw["weights"] = clean
        if "control" in kw and kw["control"] not in clean:
            raise _fail(path, w, f"control {kw['control']!r} is not among the weights' variants {list(clean)}")
    if "primary_metric" in entry:
        kw["primary"] = _metric(path, f"{w}primary_metric: ", entry["primary_metric"])
    if "guardrails" in entry:
        g = entry["guardrails"]
        if g is None:
            g = []
        if isinstance(g, list):
            kw["guardrails"] = {_metric(path, f"{w}guardrails: ", m): METRICS[m].harm for m in g}
        elif isinstance(g, dict):
            out = {}
            for m, harm in g.items():
                _metric(path, f"{w}guardrails: ", m)
                if harm not in ("increase", "decrease"):
                    raise _fail(path, f"{w}guardrails.{m}: ", f"harm must be increase or decrease, got {harm!r}")
                out[m] = harm
            kw["guardrails"] = out
        else:
            raise _fail(path, w, f"guardrails must be a list of metrics or a mapping metric -> harm, got {g!r}")
    if "secondary_metrics" in entry:
        s = entry["secondary_metrics"] or []
        if not isinstance(s, list):
            raise _fail(path, w, f"secondary_metrics must be a list of metrics, got {s!r}")
        kw["secondary"] = tuple(dict.fromkeys(_metric(path, f"{w}secondary_metrics: ", m) for m in s))
    if entry.get("mde") is not None:
        kw["target_mde"] = _number(path, f"{w}mde: ", entry["mde"], 0, 10)
    for key in ("start", "end"):
        if entry.get(key) is not None:
            kw[key] = _date(path, f"{w}{key}: ", entry[key])
    if kw.get("start") and kw.get("end") and kw["end"] < kw["start"]:
        raise _fail(path, w, f"end {kw['end']} is before start {kw['start']}")
    if "feature" in entry and "features" in entry:
        raise _fail(path, w, "give `feature` or `features`, not both")
    for key in ("feature", "features"):
        if entry.get(key) is not None:
            kw["features"] = _str_list(path, f"{w}{key}: ", entry[key])
    if "scope" in entry:
        if entry["scope"] not in SCOPES:
            raise _fail(path, w, f"scope must be one of {', '.join(SCOPES)}, got {entry['scope']!r}")
        kw["scope"] = entry["scope"]
    if "alpha" in entry:
        kw["alpha"] = _number(path, f"{w}alpha: ", entry["alpha"], 0, 0.5, hi_open=True)
    if "correction" in entry:
        c = str(entry["correction"]).lower()
        if c not in ("holm", "bh"):
            raise _fail(path, w, f"correction must be holm or bh, got {entry['correction']!r}")
        kw["correction"] = c
    for key in ("sequential", "cuped"):
        if key in entry:
            kw[key] = _bool(path, f"{w}{key}: ", entry[key])
    if "sequential_tuning" in entry:
        kw["sequential_tuning"] = _number(path, f"{w}sequential_tuning: ", entry["sequential_tuning"], 0,
                                          float("inf"), hi_open=True)
    if "power" in entry:
        kw["power"] = _number(path, f"{w}power: ", entry["power"], 0, 1, hi_open=True)
    for key, lo in (("min_days", 0), ("min_units_per_arm", 0), ("sample_size", 1)):
        if key in entry:
            v = entry[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise _fail(path, f"{w}{key}: ", f"must be a whole number >= {lo}, got {v!r}")
            kw[key] = v
    if "margins" in entry:
        m = entry["margins"]
        if not isinstance(m, dict):
            raise _fail(path, w, f"margins must map guardrail metrics to a relative margin, got {m!r}")
        kw["margins"] = {_metric(path, f"{w}margins: ", k): _number(path, f"{w}margins.{k}: ", v, 0, 1, lo_open=False)
                         for k, v in m.items()}
    if "cap" in entry:
        kw["cap"] = _per_metric(path, f"{w}cap: ", entry["cap"], 0, float("inf"), True)
    if "winsorize" in entry:
        kw["winsorize"] = _per_metric(path, f"{w}winsorize: ", entry["winsorize"], 0, 1, True)
    cfg = ExperimentConfig(**kw)
    stray = sorted(set(cfg.margins) - set(cfg.guardrails))
    if stray:
        raise _fail(path, f"{w}margins: ", f"{stray[0]} is not a guardrail of this experiment (guardrails: "
                                            f"{', '.join(cfg.guardrails) or 'none'})")
    if cfg.weights and abs(sum(cfg.weights.values()) - 1) > 1e-6 and all(v <= 1 for v in cfg.weights.values()):
        raise _fail(path, f"{w}weights: ", f"shares add up to {sum(cfg.weights.values()):g}, not 1: fix the shares")
    if cfg.secondary is not None:
        cfg = replace(cfg, secondary=tuple(m for m in cfg.secondary if m != cfg.primary))
    return cfg


def parse(loaded: Any, path: Path) -> dict[str, ExperimentConfig]:
    """The registry's parsed YAML → {experiment_id: ExperimentConfig}."""
    if loaded is None:
        return {}
    entries = loaded.get("experiments") if isinstance(loaded, dict) else loaded
    if isinstance(loaded, dict) and set(loaded) - {"experiments"}:
        extra = sorted(set(loaded) - {"experiments"})[0]
        raise _fail(path, "", f"unknown top-level key {extra!r}: the file holds `experiments:` followed by a list")
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise _fail(path, "", "expected `experiments:` followed by a list of experiments")
    out: dict[str, ExperimentConfig] = {}
    for i, entry in enumerate(entries):
        cfg = parse_entry(entry, path, i)
        if cfg.id in out:
            raise _fail(path, f"experiment {cfg.id!r}: ", "listed twice: keep one entry")
        out[cfg.id] = cfg
    return out


def load(path: Path) -> dict[str, ExperimentConfig]:
    """Read the registry; a missing file is an empty registry."""
    if not path.exists():
        return {}
    return parse(read_settings_yaml(path), path)


def control_of(cfg: ExperimentConfig, variants: list[str]) -> str:
    """The registry's control, else the variant named `control`, else the first by name."""
    if cfg.control:
        return cfg.control
    names = sorted(set(variants) | set(cfg.weights or {}))
    if "control" in names:
        return "control"
    return names[0] if names else "control"


def safe_name(experiment_id: str) -> str:
    """A file name (without .md) for an experiment's report page: the id when it is a plain, short file name,
    else a stable slug with a hash of the id (ids come from landing files: '../x', 'a/b' vs 'a b', 10k
    characters; see aiso_pipeline.text.safe_slug)."""
    return safe_slug(experiment_id)
