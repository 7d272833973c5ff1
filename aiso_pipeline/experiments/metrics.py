"""Experiment metrics, declared once in metrics.yaml: the SQL that sums them, the statistic each gets, the
registry's defaults and validation, the report's units and the README's table all come from the declaration.

(`experiments/docs.py` renders the README's table from it.)

Naming in the generated SQL: a measure `x` per user (and `x_pre` over the 14 days before exposure); per variant
`x_sum`, `x_ss` (sum of squares) and `a__b`, the sum of products of two per-user columns (names sorted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from aiso_pipeline import stats, warehouse

HERE = Path(__file__).resolve().parent
KINDS = ("proportion", "mean", "ratio")
ROLES = ("primary", "secondary", "guardrail")
UNITS = ("rate", "usd", "ms")
AGGS = ("sum", "max")
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class DeclarationError(ValueError):
    """metrics.yaml is malformed: a bug in the package, caught by the tests."""


@dataclass(frozen=True)
class Measure:
    name: str
    sql: str
    agg: Literal["sum", "max"] = "sum"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Literal["proportion", "mean", "ratio"]
    better: Literal["higher", "lower"]
    role: Literal["primary", "secondary", "guardrail"]
    unit: Literal["rate", "usd", "ms"]
    description: str
    measure: str | None = None  # proportion / mean
    numerator: str | None = None  # ratio
    denominator: str | None = None
    cap: bool = False
    cuped: bool = False

    @property
    def measures(self) -> tuple[str, ...]:
        return (self.measure,) if self.kind != "ratio" else (self.numerator, self.denominator)

    @property
    def harm(self) -> str:
        """The direction that hurts, as a guardrail tests it."""
        return "increase" if self.better == "lower" else "decrease"


def _product(a: str, b: str) -> str:
    return "__".join(sorted((a, b)))


@dataclass(frozen=True)
class Catalog:
    measures: dict[str, Measure]
    metrics: dict[str, Metric]

    # ---- what the SQL needs --------------------------------------------------------------------------------

    @property
    def post_measures(self) -> tuple[str, ...]:
        """Measures some metric uses, in declaration order."""
        used = {m for metric in self.metrics.values() for m in metric.measures}
        return tuple(m for m in self.measures if m in used)

    @property
    def pre_measures(self) -> tuple[str, ...]:
        """Measures a CUPED metric needs over the pre-exposure period."""
        used = {m for metric in self.metrics.values() if metric.cuped for m in metric.measures}
        return tuple(m for m in self.measures if m in used)

    @property
    def capped_measures(self) -> tuple[str, ...]:
        """Measures the registry may cap (through a cappable metric)."""
        used = {metric.measure for metric in self.metrics.values() if metric.cap}
        return tuple(m for m in self.measures if m in used)

    def cap_measure(self, metric: str) -> str:
        return self.metrics[metric].measure

    @property
    def products(self) -> tuple[tuple[str, str], ...]:
        """Pairs of per-user columns whose sum of products some statistic needs (ratio: numerator x denominator;
        CUPED: post x pre; CUPED ratio: all six pairs of its four columns)."""
        pairs: dict[str, tuple[str, str]] = {}
        for metric in self.metrics.values():
            if metric.kind == "ratio":
                cols = [metric.numerator, metric.denominator]
                if metric.cuped:
                    cols += [f"{metric.numerator}_pre", f"{metric.denominator}_pre"]
                combos = [(a, b) for i, a in enumerate(cols) for b in cols[i + 1:]]
            else:
                combos = [(metric.measure, f"{metric.measure}_pre")] if metric.cuped else []
            for a, b in combos:
                pairs.setdefault(_product(a, b), (a, b))
        return tuple(pairs.values())

    # ---- SQL -----------------------------------------------------------------------------------------------

    def user_metrics_sql(self) -> str:
        values = ",\n           ".join(f"{self.measures[m].sql} AS {m}" for m in self.post_measures)
        aggregates = [f"{self.measures[m].agg}(post * {m}) AS {m}" for m in self.post_measures]
        aggregates += [f"{self.measures[m].agg}((1 - post) * {m}) AS {m}_pre" for m in self.pre_measures]
        cols = ", ".join(f"j.{m}" for m in self.post_measures)
        return _fill("user_metrics.sql", measure_values=values, measure_columns=cols,
                     aggregates=",\n       ".join(aggregates))

    def variant_stats_sql(self) -> str:
        capped = []
        for m in self.post_measures:
            for col in (m, f"{m}_pre") if m in self.pre_measures else (m,):
                value = f"coalesce(m.{col}, 0)"
                if m in self.capped_measures:
                    value = f"least({value}, coalesce(c.cap_{m}, 'inf'))"
                capped.append(f"{value} AS {col}")
        sums = []
        for m in self.post_measures:
            for col in (m, f"{m}_pre") if m in self.pre_measures else (m,):
                sums.append(f"sum({col}) AS {col}_sum, sum({col} * {col}) AS {col}_ss")
        sums += [f"sum({a} * {b}) AS {_product(a, b)}" for a, b in self.products]
        return _fill("variant_stats.sql", capped_values=",\n       ".join(capped),
                     sums=",\n       ".join(sums))

    def winsorize_sql(self) -> str:
        quantiles = ",\n       ".join(f"quantile_cont(coalesce(m.{m}, 0), $q_{m}) AS {m}" for m in self.capped_measures)
        return _fill("winsorize.sql", quantiles=quantiles)

    def config_columns(self) -> str:
        """_xp_config's cap columns."""
        return ", ".join(f"cap_{m} DOUBLE" for m in self.capped_measures)

    # ---- statistics ----------------------------------------------------------------------------------------

    def statistic(self, metric: str, row: Mapping[str, Any], cuped: bool) -> stats.Stat:
        """One metric's sufficient statistic from a variant_stats row."""
        d = self.metrics[metric]
        n = row["n"]

        def sums(col: str) -> tuple[Any, Any]:
            return row[f"{col}_sum"], row[f"{col}_ss"]

        def prod(a: str, b: str) -> Any:
            return row[_product(a, b)]

        cuped = cuped and d.cuped
        if d.kind == "ratio":
            m, den = d.numerator, d.denominator
            if not cuped:
                return stats.Ratio(n, *sums(m), *sums(den), prod(m, den))
            mp, dp = f"{m}_pre", f"{den}_pre"
            return stats.CupedRatio(n, *sums(m), *sums(den), *sums(mp), *sums(dp), prod(m, mp), prod(den, dp),
                                    prod(mp, dp), prod(m, den), prod(m, dp), prod(mp, den))
        x = d.measure
        if cuped:
            return stats.Cuped(n, *sums(x), *sums(f"{x}_pre"), prod(x, f"{x}_pre"),
                               proportion=d.kind == "proportion")
        return (stats.Proportion if d.kind == "proportion" else stats.SampleMean)(n, *sums(x))

    # ---- defaults ------------------------------------------------------------------------------------------

    @property
    def primary(self) -> str:
        return next(m for m, d in self.metrics.items() if d.role == "primary")

    @property
    def guardrails(self) -> tuple[str, ...]:
        return tuple(m for m, d in self.metrics.items() if d.role == "guardrail")

    @property
    def lower_is_better(self) -> tuple[str, ...]:
        return tuple(m for m, d in self.metrics.items() if d.better == "lower")

    @property
    def cappable(self) -> tuple[str, ...]:
        return tuple(m for m, d in self.metrics.items() if d.cap)


def _fill(template: str, **slots: str) -> str:
    """A SQL template of experiments/sql/ with its {{slot}}s filled in; every slot must be given and used."""
    try:
        return warehouse.fill(f"experiments/sql/{template}", **slots)
    except ValueError as e:
        raise DeclarationError(str(e)) from None


def _require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise DeclarationError(f"experiments/metrics.yaml: {where}: {message}")


def parse(doc: Any) -> Catalog:
    _require(isinstance(doc, dict) and set(doc) == {"measures", "metrics"}, "top level",
             "expected exactly `measures:` and `metrics:`")
    measures: dict[str, Measure] = {}
    for name, spec in doc["measures"].items():
        _require(bool(_NAME.match(name)) and isinstance(spec, dict), f"measure {name}", "bad name or not a mapping")
        _require(set(spec) <= {"sql", "agg"} and isinstance(spec.get("sql"), str), f"measure {name}",
                 "needs `sql` (and optionally `agg`)")
        _require(spec.get("agg", "sum") in AGGS, f"measure {name}", f"agg must be one of {AGGS}")
        measures[name] = Measure(name, spec["sql"].strip(), spec.get("agg", "sum"))
    metrics: dict[str, Metric] = {}
    keys = {"kind", "measure", "numerator", "denominator", "better", "role", "cap", "cuped", "unit", "description"}
    for name, spec in doc["metrics"].items():
        where = f"metric {name}"
        _require(bool(_NAME.match(name)) and isinstance(spec, dict), where, "bad name or not a mapping")
        _require(set(spec) <= keys, where, f"unknown keys {sorted(set(spec) - keys)}")
        _require(spec.get("kind") in KINDS, where, f"kind must be one of {KINDS}")
        _require(spec.get("better") in ("higher", "lower"), where, "better must be higher or lower")
        _require(spec.get("role") in ROLES, where, f"role must be one of {ROLES}")
        _require(spec.get("unit") in UNITS, where, f"unit must be one of {UNITS}")
        _require(isinstance(spec.get("description"), str), where, "needs a description")
        parts = ("numerator", "denominator") if spec["kind"] == "ratio" else ("measure",)
        for p in parts:
            _require(spec.get(p) in measures, where, f"{p} must be a declared measure")
        _require(not any(p in spec for p in {"measure", "numerator", "denominator"} - set(parts)), where,
                 f"a {spec['kind']} metric takes {' and '.join(parts)} only")
        _require(not (spec.get("cap") and spec["kind"] != "mean"), where, "only mean metrics can be capped")
        metrics[name] = Metric(name=name, **{k: v for k, v in spec.items()})
    _require(sum(d.role == "primary" for d in metrics.values()) == 1, "metrics", "exactly one role: primary")
    capped_by = {}
    for d in metrics.values():
        if d.cap:
            _require(d.measure not in capped_by, f"metric {d.name}",
                     f"measure {d.measure} is already capped through {capped_by.get(d.measure)}")
            capped_by[d.measure] = d.name
    return Catalog(measures, metrics)


@cache
def catalog() -> Catalog:
    return parse(yaml.safe_load((HERE / "metrics.yaml").read_text()))
