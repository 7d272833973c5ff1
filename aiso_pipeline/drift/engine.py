"""Drift statistics for one partition day, per model and column, computed inside DuckDB.

Two full scans of the day and its reference window do the heavy lifting, whatever the row count:
  1. feature_keys.sql  the keys and JSON types of the `features` objects (skipped when features are not checked);
  2. histogram.sql     per model, side and column, in one GROUPING SETS scan: counts per category, and for numeric
                       columns counts per value rounded to a grid of step wasserstein_tolerance / 4 * std(reference)
                       (exact values for integer columns whose step would be below 1, and for constant columns).
The std that sizes the grid is estimated beforehand from a ~1% block sample (scale.sql), which costs next to
nothing (models the sample misses are read in full: they are small); models.sql lists the day's models.
The counts stay in a temp table; Python fetches them per column
(hist_summary.sql, hist_column.sql) and stattests.py turns them into Evidently's statistics. Rare extra passes, for
the (model, column) pairs concerned only:
  - a numeric column whose grid error bound (computed from the full data) exceeds wasserstein_tolerance is
    recounted on a finer grid;
  - a gridded numeric column with <= categorical_max_distinct buckets is recounted on a 10^4 times finer grid,
    then exactly if it still has that few (Evidently applies categorical tests to it, which need exact values);
  - the small-reference Kolmogorov-Smirnov path fetches at most small_reference_rows + ks_exact_max_rows values of
    a column, or computes D in SQL (ks_statistic.sql) when the current side is larger.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import duckdb
import numpy as np
import pandas as pd

from aiso_pipeline import warehouse
from aiso_pipeline.drift import stattests
from aiso_pipeline.drift.config import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS, DriftConfig

NUMERICAL, CATEGORICAL = "numerical", "categorical"
JSON_INTEGER_TYPES = {"UBIGINT", "BIGINT", "HUGEINT", "UHUGEINT", "INTEGER"}
JSON_NUMBER_TYPES = JSON_INTEGER_TYPES | {"DOUBLE"}
INTEGER_COLUMNS = {"input_tokens", "output_tokens", "cached_input_tokens"}  # BIGINT in raw.inference_events
NO_LIMIT = 2**62
DEFAULT_SOURCE = "raw.inference_events"
COUNT_ONLY = 1e300  # a grid step that puts every value in one or two buckets
FEATURE_PREFIX = "features."
SIDE = {False: "ref", True: "cur"}  # is_current in the SQL

METRIC_COLUMNS = ("dt", "model", "column_name", "column_type", "method", "statistic", "threshold", "drifted",
                  "reference_start", "reference_end", "reference_rows", "current_rows", "p_value", "test_statistic",
                  "declared_type", "reference_values", "current_values", "distinct_values", "reason", "shift_p_value")
SUMMARY_COLUMNS = ("dt", "model", "columns_checked", "columns_drifted", "share_drifted", "dataset_drift",
                   "columns_skipped", "drift_share_threshold", "reference_start", "reference_end", "reference_rows",
                   "current_rows", "feature_keys_skipped")


# ---------------------------------------------------------------------------------------------------------------
# SQL files


@cache
def _sql_text(name: str) -> str:
    return resources.files("aiso_pipeline.drift").joinpath("sql", name).read_text()


@cache
def _fragments() -> dict[str, str]:
    """expressions.sql split at its "-- name: x" lines, comments dropped."""
    out, name, lines = {}, None, []
    for line in _sql_text("expressions.sql").splitlines() + ["-- name: _end"]:
        m = re.match(r"--\s*name:\s*(\w+)", line)
        if m:
            if name:
                out[name] = " ".join(x.strip() for x in lines if x.strip())
            name, lines = m.group(1), []
        elif name and not line.lstrip().startswith("--"):
            lines.append(line)
    return out


_TOKEN = re.compile(r"\{([a-z_]+)\}")


def _fill(template: str, **parts: str) -> str:
    """Replace {name} placeholders, after dropping comments (the .sql files hold no '--' inside literals). Parts are
    built only from whitelisted identifiers, generated aliases and the fragments of expressions.sql."""
    template = re.sub(r"--[^\n]*", "", template)

    def sub(m):
        if m.group(1) not in parts:
            raise KeyError(f"drift SQL placeholder {{{m.group(1)}}} has no value")
        return str(parts[m.group(1)])
    return _TOKEN.sub(sub, template)


def _frag(name: str, **parts) -> str:
    return _fill(_fragments()[name], **parts)


_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict):
    used = dict.fromkeys(_PARAM.findall(sql))
    return con.execute(sql, {k: params[k] for k in used})


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _quote_source(source: str) -> str:
    parts = source.split(".")
    if not 1 <= len(parts) <= 3 or not all(_IDENT.fullmatch(p) for p in parts):
        raise ValueError(f"drift source must be a plain [catalog.][schema.]table name, got {source!r}")
    return ".".join(f'"{p}"' for p in parts)


# ---------------------------------------------------------------------------------------------------------------
# Columns


@dataclass(frozen=True)
class Column:
    name: str                 # column_name in the output: 'latency_ms' or 'features.<key>'
    declared: str             # NUMERICAL or CATEGORICAL, from the table type / JSON type
    alias: str = ""           # c0, c1, ... in the generated SQL
    base: str | None = None   # whitelisted raw column, or
    feature_index: int | None = None  # 1-based position in $feature_paths
    integer: bool = False     # integer-typed numeric column (BIGINT, JSON integers)

    def expression(self) -> str:
        expr = f'"{self.base}"' if self.base else _frag("feature_value", index=self.feature_index)
        return _frag("numeric" if self.declared == NUMERICAL else "categorical", expr=expr, c=self.alias)


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _feature_types(con, source: str, days: list[tuple[_dt.date, _dt.date]], models: list[str],
                   max_keys: int = NO_LIMIT) -> tuple[dict[str, dict[str, str | None]], dict[str, int]]:
    """(model -> {key: 'integer' | NUMERICAL | CATEGORICAL | None (JSON nulls only)}, model -> keys left out): the
    scalar keys seen per model over the day ranges `days`, at most `max_keys` per model, those in the most feature
    shapes first (a stray row's thousand keys are in one shape; a real feature is in most of them)."""
    seen: dict[str, dict[str, set]] = {}
    shapes: dict[str, dict[str, int]] = {}
    for _, model, keys, types in _feature_shapes(con, source, days):
        if model not in models:
            continue
        for key, typ in zip(keys or [], types or []):
            if typ not in ("OBJECT", "ARRAY"):  # nested objects / arrays are not features
                seen.setdefault(model, {}).setdefault(key, set()).add(typ)
                shapes.setdefault(model, {})[key] = shapes.get(model, {}).get(key, 0) + 1
    out: dict[str, dict[str, str | None]] = {}
    skipped: dict[str, int] = {}
    for model, keys in seen.items():
        kept = sorted(keys, key=lambda k: (-shapes[model][k], k))[:max_keys]
        skipped[model] = len(keys) - len(kept)
        out[model] = {}
        for key in sorted(kept):
            types = keys[key] - {"NULL"}
            if not types:
                out[model][key] = None
            elif types <= JSON_INTEGER_TYPES:
                out[model][key] = "integer"
            elif types <= JSON_NUMBER_TYPES:
                out[model][key] = NUMERICAL
            else:
                out[model][key] = CATEGORICAL  # strings, booleans, or a mix: compared as text
    return out, skipped


def _feature_shapes(con, source: str, days: list[tuple[_dt.date, _dt.date]]) -> list[tuple]:
    """Rows of feature_keys.sql for the day ranges `days`. For raw.inference_events each day is parsed once and kept
    in meta.feature_shapes (warehouse/sql/feature_shapes.sql; ingest drops a day it replaces), so a night reads the
    JSON of its own day only, not of the whole reference window again."""
    sql = _fill(_sql_text("feature_keys.sql"), source=source)
    if source != _quote_source(DEFAULT_SOURCE):
        return [row for lo, hi in days for row in _execute(con, sql, {"from": lo, "to": hi}).fetchall()]
    con.execute(warehouse.sql("warehouse/sql/feature_shapes.sql"))  # also on connections not made by connect()
    wanted = sorted({lo + _dt.timedelta(days=i) for lo, hi in days for i in range((hi - lo).days + 1)})
    if not wanted:
        return []
    span = {"from": wanted[0], "to": wanted[-1]}
    counts = dict(_execute(con, _fill(_sql_text("feature_counts.sql"), source=source), span).fetchall())
    cached = dict(con.execute("SELECT dt, rows FROM meta.feature_shape_days WHERE dt BETWEEN ? AND ?",
                              [wanted[0], wanted[-1]]).fetchall())
    for day in wanted:
        if cached.get(day, -1) != counts.get(day, 0):
            rows = _execute(con, sql, {"from": day, "to": day}).fetchall()
            with warehouse.transaction(con):
                con.execute("DELETE FROM meta.feature_shapes WHERE dt = ?", [day])
                con.execute("DELETE FROM meta.feature_shape_days WHERE dt = ?", [day])
                if rows:
                    con.executemany("INSERT INTO meta.feature_shapes VALUES (?, ?, ?, ?)", rows)
                con.execute("INSERT INTO meta.feature_shape_days VALUES (?, ?)", [day, counts.get(day, 0)])
    return [r for lo, hi in days for r in con.execute(
        "SELECT dt, model, keys, types FROM meta.feature_shapes WHERE dt BETWEEN ? AND ?", [lo, hi]).fetchall()]


def _columns(config: DriftConfig, features: dict[str, dict[str, str | None]]) -> list[Column]:
    cols = [Column(n, NUMERICAL, base=n, integer=n in INTEGER_COLUMNS) for n in config.numeric_columns]
    cols += [Column(n, CATEGORICAL, base=n) for n in config.categorical_columns]
    assert all(c.base in NUMERIC_COLUMNS + CATEGORICAL_COLUMNS for c in cols)
    merged: dict[str, set] = {}
    for keys in features.values():
        for key, typ in keys.items():
            merged.setdefault(key, set()).add(typ)
    for i, key in enumerate(sorted(merged), start=1):
        types = merged[key] - {None}
        numeric = bool(types) and types <= {"integer", NUMERICAL}  # mixed across models: compared as text
        cols.append(Column(FEATURE_PREFIX + key, NUMERICAL if numeric else CATEGORICAL, feature_index=i,
                           integer=types == {"integer"}))
    return _subset(cols)


def _subset(columns: list[Column]) -> list[Column]:
    """Alias columns c0, c1, ... and number their features 1.. in order, for a query over these columns only."""
    out, idx = [], 0
    for i, c in enumerate(columns):
        fi = None
        if c.feature_index:
            idx += 1
            fi = idx
        out.append(Column(c.name, c.declared, f"c{i}", c.base, fi, c.integer))
    return out


def _rows_sql(source: str, columns: list[Column], ref_models: str = "$model", sampled: bool = False) -> str:
    """rows.sql for these columns; ref_models lists the parameters holding the models compared ($rm0, ... for
    compute_drift, $model for one model). sampled: keep only about $keep_cur / $keep_ref per million rows."""
    bases = list(dict.fromkeys(c.base for c in columns if c.base))
    has_features = any(c.feature_index for c in columns)
    return _fill(
        _sql_text("rows.sql"),
        source=source,
        ref_models=ref_models,
        base="".join(f', "{b}"' for b in bases),
        features=", " + _frag("feature_values") if has_features else "",
        columns="".join(", " + c.expression() for c in columns),
        sample_cur=" " + _frag("row_sample", keep="$keep_cur") if sampled else "",
        sample_ref=" " + _frag("row_sample", keep="$keep_ref") if sampled else "",
    )


def _feature_paths(columns: list[Column]) -> list[str]:
    return [_json_path(c.name[len(FEATURE_PREFIX):]) for c in sorted(
        (c for c in columns if c.feature_index), key=lambda c: c.feature_index)]


# ---------------------------------------------------------------------------------------------------------------
# Aggregation


@dataclass
class Counts:
    """What the histogram pass knows about one model × column × side."""
    rows: int = 0                  # rows of the model on that side
    values: int = 0                # non-null values
    buckets: int = 0               # distinct values / buckets
    x: np.ndarray | None = None    # values (or bucket values), fetched unless too many categories
    n: np.ndarray | None = None


def _histograms(con, source: str, columns: list[Column], params: dict, config: DriftConfig,
                grid: dict[str, dict[str, float | None]]) -> dict[tuple[str, str, str], Counts]:
    """(model, column name, side) -> Counts, for the models in `grid` (model -> alias -> step of each numeric
    column: None skips it, 0 counts exact values, > 0 rounds to multiples of the step)."""
    if not columns or not grid:
        return {}
    numeric = [c for c in columns if c.declared == NUMERICAL]
    con.execute("CREATE OR REPLACE TEMP TABLE drift_grid (model VARCHAR"
                + "".join(f", h_{c.alias} DOUBLE" for c in numeric) + ")")
    out: dict[tuple[str, str, str], Counts] = {}
    try:
        con.executemany(f"INSERT INTO drift_grid VALUES ({', '.join(['?'] * (len(numeric) + 1))})",
                        [[m] + [steps.get(c.alias) for c in numeric] for m, steps in grid.items()])
        sql = _fill(
            _sql_text("histogram.sql"),
            rows=_rows_sql(source, columns, params["ref_models"]),
            bins="".join(", " + _frag("numeric_bin" if c.declared == NUMERICAL else "categorical_bin", c=c.alias)
                         for c in columns),
            outputs="".join(", " + _frag("bin_output", c=c.alias) for c in columns),
            sets=", ".join(_frag("bin_set", c=c.alias) for c in columns),
        )
        _execute(con, sql, {**params, "feature_paths": _feature_paths(columns)})
        summary = _execute(con, _fill(_sql_text("hist_summary.sql"), summaries="".join(
            ", " + _frag("column_summary", c=c.alias) for c in columns)), {}).fetchall()
        for row in summary:
            model, side, rest = row[0], SIDE[bool(row[1])], row[2:]
            for i, c in enumerate(columns):
                rows, values, buckets = rest[3 * i: 3 * i + 3]
                out[(model, c.name, side)] = Counts(int(rows or 0), int(values or 0), int(buckets or 0))
        for c in columns:
            limit = config.max_categories if c.declared == CATEGORICAL else NO_LIMIT
            res = _execute(con, _fill(_sql_text("hist_column.sql"), c=c.alias), {"max_groups": limit}).df()
            dtype = np.float64 if c.declared == NUMERICAL else object
            for (model, current), g in res.groupby(["model", "is_current"], sort=False):
                counts = out[(model, c.name, SIDE[bool(current)])]
                counts.x, counts.n = g["v"].to_numpy(dtype=dtype), g["n"].to_numpy(dtype=np.int64)
    finally:
        con.execute("DROP TABLE IF EXISTS temp.drift_hist")
        con.execute("DROP TABLE IF EXISTS temp.drift_grid")
    return out


def _scale(con, source: str, columns: list[Column], params: dict, models: list[str],
           min_values: int) -> dict[tuple[str, str], tuple[int, float]]:
    """(model, column name) -> (reference values, their std): from a ~1% block sample, then, for the models with
    fewer than min_values sampled values in some numeric column, from all their reference rows."""
    numeric = _subset([c for c in columns if c.declared == NUMERICAL])
    if not numeric:
        return {}

    def run(sample: str, only: list[str] | None):
        model_params = params["ref_models"] if only is None else ", ".join(f"$scale_m{i}" for i in range(len(only)))
        sql = _fill(_sql_text("scale.sql"), source=source, sample=sample, models=model_params,
                    base="".join(f', "{b}"' for b in dict.fromkeys(c.base for c in numeric if c.base)),
                    features=", " + _frag("feature_values") if any(c.feature_index for c in numeric) else "",
                    columns="".join(", " + c.expression() for c in numeric),
                    aggregates="".join(", " + _frag("numeric_moments", c=c.alias) for c in numeric))
        p = {**params, "feature_paths": _feature_paths(numeric), **{f"scale_m{i}": m for i, m in enumerate(only or [])}}
        res = {}
        for row in _execute(con, sql, p).fetchall():
            for i, c in enumerate(numeric):
                res[(row[0], c.name)] = (int(row[1 + 2 * i] or 0), float(row[2 + 2 * i] or 0.0))
        return res

    out = run(_frag("block_sample"), None)
    missing = [m for m in models if any(out.get((m, c.name), (0, 0))[0] < min_values for c in numeric)]
    if missing:
        out.update(run("", missing))
    return out


def _n_distinct(ref: Counts, cur: Counts) -> int:
    xs = [a for a in (ref.x, cur.x) if a is not None]
    if any(a.dtype == object for a in xs):
        return len(set().union(*(a.tolist() for a in xs)))
    return len(np.unique(np.concatenate(xs))) if xs else 0


def _as_dict(c: Counts) -> dict:
    return dict(zip(c.x.tolist(), c.n.tolist())) if c.x is not None else {}


def _std(c: Counts) -> float:
    w = c.n / c.n.sum()
    mean = float(np.dot(w, c.x))
    return float(np.sqrt(np.dot(w, (c.x - mean) ** 2)))


def _grid_error(ref: Counts, cur: Counts, norm: float, step: float) -> float:
    """Upper bound on |normed W from grid counts - normed W from the values| for a grid of this step.

    Rounding moves each value by <= step / 2, so W1 moves by <= step (both sides) and the reference std (the norm)
    by <= step / 2, which changes W1 / norm by at most (W1 / norm) * (step / 2) / (norm - step / 2).
    """
    if step == 0:
        return 0.0
    w = stattests.wasserstein_normed(ref.x, ref.n, cur.x, cur.n, norm)
    return step / norm + (w + step / norm) * (step / 2) / max(norm - step / 2, 1e-300)


# ---------------------------------------------------------------------------------------------------------------
# Per column evaluation


def _decide(d: dict, config: DriftConfig, method: str, statistic: float, p_value=None, test_statistic=None):
    thr = config.threshold(method)
    if method in ("wasserstein", "jensenshannon"):
        drifted = statistic >= thr
    elif method == "ks":
        drifted = statistic <= thr  # ks_stattest.py: p_value <= threshold
    else:
        drifted = statistic < thr  # chisquare_stattest.py, z_stattest.py: p_value < threshold
    d.update(method=method, statistic=float(statistic), threshold=thr, drifted=bool(drifted), p_value=p_value,
             test_statistic=test_statistic)


def _categorical_test(d: dict, config: DriftConfig, ref: dict, cur: dict, n_ref: int):
    n_values = len(set(ref) | set(cur))
    d.update(column_type=CATEGORICAL, distinct_values=n_values)
    if n_ref > config.small_reference_rows:
        _decide(d, config, "jensenshannon", stattests.jensenshannon_from_counts(ref, cur))
    elif n_values > config.binary_max_distinct:
        chi2, p = stattests.chisquare_from_counts(ref, cur)
        _decide(d, config, "chisquare", p, p_value=p, test_statistic=chi2)
    else:
        z, p = stattests.z_from_counts(ref, cur)
        _decide(d, config, "z", p, p_value=p, test_statistic=z)


def _ks(con, source, column: Column, model: str, params: dict, config: DriftConfig, n_ref: int, n_cur: int):
    (col,) = _subset([column])
    rows = _rows_sql(source, [col], "$model")
    p = {**params, "model": model, "feature_paths": _feature_paths([col]), "n_ref": n_ref, "n_cur": n_cur}
    if n_cur <= config.ks_exact_max_rows:
        df = _execute(con, _fill(_sql_text("column_values.sql"), rows=rows), p).fetchnumpy()
        current, v = np.asarray(df["is_current"], dtype=bool), np.asarray(df["v"], dtype=np.float64)
        return stattests.ks_from_values(v[~current], v[current])
    (d,) = _execute(con, _fill(_sql_text("ks_statistic.sql"), rows=rows), p).fetchone()
    return float(d), stattests.ks_asymptotic_p(float(d), n_ref, n_cur)


def _recount(con, source, columns: list[Column], params: dict, config: DriftConfig,
             steps: dict[tuple[str, str], float], hist: dict) -> None:
    """Recount (model, column name) -> step (0 exact, > 0 absolute grid) in one more scan, into `hist`."""
    names = list(dict.fromkeys(name for _, name in steps))
    subset = _subset([c for c in columns if c.name in names])
    grid: dict[str, dict[str, float | None]] = {}
    for (model, name), step in steps.items():
        alias = next(c.alias for c in subset if c.name == name)
        grid.setdefault(model, {})[alias] = step
    again = _histograms(con, source, subset, params, config, grid)
    for (model, name, side), counts in again.items():
        if (model, name) in steps:
            hist[(model, name, side)] = counts


def compute_drift(con: duckdb.DuckDBPyConnection, dt: _dt.date, config: DriftConfig = DriftConfig(),
                  source: str = DEFAULT_SOURCE) -> tuple[list[dict], list[dict]]:
    """Drift of day `dt` against its reference window, per model (with rows on dt) and column.

    Returns (metrics_rows, summary_rows): lists of dicts with the columns of marts.drift_metrics (METRIC_COLUMNS)
    and marts.drift_summary (SUMMARY_COLUMNS). `statistic` is Evidently's drift score: the distance for
    wasserstein / jensenshannon, the p-value for ks / chisquare / z (also in p_value; test_statistic holds D,
    chi2 or z). A column that cannot be tested has statistic NULL, drifted false and a `reason`. `shift_p_value`
    says whether the shift is more than sampling noise for these sample sizes (for alerts, not for `drifted`):
    two-sample KS for numeric columns (from the same counts), chi-square homogeneity for categorical ones, each
    counting independent units (users) rather than calls (units.sql: the design effect per side).
    """
    if isinstance(dt, str):
        dt = _dt.date.fromisoformat(dt)
    src = _quote_source(source)
    ref_start, ref_end = config.reference_window(dt)
    params = {"dt": dt, "ref_start": ref_start, "ref_end": ref_end}

    models = sorted(m for (m,) in _execute(con, _fill(_sql_text("models.sql"), source=src), params).fetchall())
    if not models:
        return [], []
    # the models compared, as bound parameters $rm0, $rm1, ... (only their reference rows are read)
    params = {**params, "ref_models": ", ".join(f"$rm{i}" for i in range(len(models))),
              **{f"rm{i}": m for i, m in enumerate(models)}}
    features, keys_skipped = (_feature_types(con, src, [(dt, dt), (ref_start, ref_end)], models,
                                             config.max_feature_keys) if config.include_features else ({}, {}))
    columns = _columns(config, features)
    if not columns:
        return [], []

    # Grid steps from the sampled std: tolerance / 4 of it, exact values where the sample says nothing, and for
    # integer columns whose step would be below 1.
    scale = _scale(con, src, columns, params, models, config.min_sampled_values)
    grid: dict[str, dict[str, float | None]] = {}
    for m in models:
        grid[m] = {}
        for c in columns:
            if c.declared != NUMERICAL:
                continue
            n_ref, sd = scale.get((m, c.name), (0, 0.0))
            if n_ref == 0:
                step = COUNT_ONLY  # no reference values: nothing to compare, count the current values only
            elif sd == 0 or c.integer and config.wasserstein_tolerance / 4 * sd < 1:
                step = 0.0
            else:
                step = config.wasserstein_tolerance / 4 * max(sd, config.wasserstein_norm_floor)
            grid[m][c.alias] = step
    hist = _histograms(con, src, columns, params, config, grid)
    empty = Counts()
    # design effect per model and side (calls per independent unit): the shift tests count users, not calls
    # (a source without user_id / request_id, e.g. a test table, counts calls)
    deff: dict[tuple[str, str], float] = {}
    if {"user_id", "request_id"} <= {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}:
        deff = {(m, SIDE[bool(cur)]): max(float(d), 1.0) for m, cur, d in _execute(
            con, _fill(_sql_text("units.sql"), source=src, ref_models=params["ref_models"]), params).fetchall()}

    def counts(m, c, side) -> Counts:
        return hist.get((m, c.name, side), empty)

    def design(m) -> tuple[float, float]:
        return deff.get((m, "ref"), 1.0), deff.get((m, "cur"), 1.0)

    def norm_of(ref: Counts) -> float:
        return max(_std(ref), config.wasserstein_norm_floor)

    # Recounts, only for the (model, column) pairs that need them (rare: at most two more passes).
    for last in (False, True):
        recount: dict[tuple[str, str], float] = {}
        for m in models:
            for c in columns:
                ref, cur = counts(m, c, "ref"), counts(m, c, "cur")
                step = grid[m].get(c.alias)
                if c.declared != NUMERICAL or not ref.values or not cur.values or not step or step == COUNT_ONLY:
                    continue
                finer = step * 1e-4
                if c.integer and finer < 1 or last:
                    finer = 0.0
                if _n_distinct(ref, cur) <= config.categorical_max_distinct:
                    # Few buckets: maybe few values, and Evidently's categorical tests would need them exact. A
                    # finer grid settles it for continuous data; exact values when that still shows few.
                    recount[(m, c.name)] = finer
                elif ref.values > config.small_reference_rows:
                    norm = norm_of(ref)
                    if _grid_error(ref, cur, norm, step) > config.wasserstein_tolerance:
                        w = stattests.wasserstein_normed(ref.x, ref.n, cur.x, cur.n, norm)
                        # the true std is at least norm - step / 2: size the new step on that
                        new = config.wasserstein_tolerance / (2 + w) * (norm - step / 2)
                        recount[(m, c.name)] = new if new > 0 else finer
        if not recount:
            break
        _recount(con, src, columns, params, config, recount, hist)
        for (m, name), step in recount.items():
            grid[m][next(c.alias for c in columns if c.name == name)] = step

    metrics: list[dict] = []
    summary: list[dict] = []
    for m in models:
        ref_rows, cur_rows = counts(m, columns[0], "ref").rows, counts(m, columns[0], "cur").rows
        model_keys = features.get(m, {})
        rows = []
        for c in columns:
            if c.feature_index and c.name[len(FEATURE_PREFIX):] not in model_keys:
                continue  # a key this model never sends
            ref, cur = counts(m, c, "ref"), counts(m, c, "cur")
            d = dict.fromkeys(METRIC_COLUMNS)
            d.update(dt=dt, model=m, column_name=c.name, column_type=c.declared, declared_type=c.declared,
                     drifted=False, reference_start=ref_start, reference_end=ref_end, reference_rows=ref_rows,
                     current_rows=cur_rows, reference_values=ref.values, current_values=cur.values)
            rows.append(d)
            if ref_rows == 0:
                d["reason"] = "empty_reference"
            elif ref.values == 0:
                d["reason"] = "reference_all_null"
            elif cur.values == 0:
                d["reason"] = "current_all_null"
            elif ref.x is None or cur.x is None:
                d["reason"] = "too_many_categories"
                d["distinct_values"] = max(ref.buckets, cur.buckets)
            elif c.declared == CATEGORICAL:
                _categorical_test(d, config, _as_dict(ref), _as_dict(cur), ref.values)
                d["shift_p_value"] = stattests.homogeneity_p(_as_dict(ref), _as_dict(cur), *design(m))
            else:
                exact = grid[m].get(c.alias) == 0.0
                n_values = _n_distinct(ref, cur)
                if exact and n_values <= config.categorical_max_distinct:
                    # registry.py: a numeric column with <= 5 distinct values (reference and current together)
                    # gets the categorical tests
                    _categorical_test(d, config, _as_dict(ref), _as_dict(cur), ref.values)
                    d["shift_p_value"] = stattests.homogeneity_p(_as_dict(ref), _as_dict(cur), *design(m))
                elif ref.values > config.small_reference_rows:
                    d["distinct_values"] = n_values if exact else None
                    w = stattests.wasserstein_normed(ref.x, ref.n, cur.x, cur.n, norm_of(ref))
                    _decide(d, config, "wasserstein", w)
                    d["shift_p_value"] = stattests.ks_from_counts(ref.x, ref.n, cur.x, cur.n, *design(m))[1]
                else:
                    d["distinct_values"] = n_values if exact else None
                    ks_d, p = _ks(con, src, c, m, params, config, ref.values, cur.values)
                    _decide(d, config, "ks", p, p_value=p, test_statistic=ks_d)
                    d["shift_p_value"] = stattests.ks_asymptotic_p(
                        ks_d, ref.values / design(m)[0], cur.values / design(m)[1])
        metrics.extend(rows)
        checked = [r for r in rows if r["statistic"] is not None]
        drifted = sum(r["drifted"] for r in checked)
        share = drifted / len(checked) if checked else None
        summary.append(dict(dt=dt, model=m, columns_checked=len(checked), columns_drifted=drifted,
                            share_drifted=share,
                            dataset_drift=bool(share is not None and share >= config.dataset_drift_share),
                            columns_skipped=len(rows) - len(checked),
                            drift_share_threshold=config.dataset_drift_share, reference_start=ref_start,
                            reference_end=ref_end, reference_rows=ref_rows, current_rows=cur_rows,
                            feature_keys_skipped=keys_skipped.get(m, 0)))
    return metrics, summary


def sample_for_report(con: duckdb.DuckDBPyConnection, dt: _dt.date, model: str,
                      config: DriftConfig = DriftConfig(), max_rows: int = 5000,
                      source: str = DEFAULT_SOURCE,
                      rows: tuple[int, int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current) samples of one model, at most max_rows each, with the checked columns flattened
    (features.<key> as columns): numeric columns as float64, categorical ones as text. Each frame's
    attrs['numerical_columns'] / attrs['categorical_columns'] give the declared types of the columns with values
    on both sides (Evidently raises on a column empty on one side); pass them to evidently.DataDefinition so
    Evidently does not re-infer them (it would call integer columns with <= 10 values, or strings with many
    values, something else). rows: the model's (reference, current) row counts, when known: only about 4 x
    max_rows of each side are then read and ordered, instead of all of them."""
    if isinstance(dt, str):
        dt = _dt.date.fromisoformat(dt)
    src = _quote_source(source)
    ref_start, ref_end = config.reference_window(dt)
    keep = [10**6 if not n else min(10**6, -(-4 * max_rows * 10**6 // n)) for n in (rows or (0, 0))]
    params = {"dt": dt, "ref_start": ref_start, "ref_end": ref_end, "model": model, "max_rows": int(max_rows),
              "keep_ref": keep[0], "keep_cur": keep[1]}
    features = (_feature_types(con, src, [(dt, dt), (ref_start, ref_end)], [model], config.max_feature_keys)[0]
                if config.include_features else {})
    columns = _columns(config, {model: features.get(model, {})})
    sql = _fill(_sql_text("sample.sql"), rows=_rows_sql(source=src, columns=columns, sampled=True),
                hash_args=", ".join(c.alias for c in columns))
    out = []
    for current in (False, True):
        df = _execute(con, sql, {**params, "is_current": current, "feature_paths": _feature_paths(columns)}).df()
        df = df[[c.alias for c in columns]].rename(columns={c.alias: c.name for c in columns})
        for c in columns:
            if c.declared == NUMERICAL:
                df[c.name] = df[c.name].astype("float64")
            else:
                df[c.name] = df[c.name].astype(object).where(df[c.name].notna(), None)
        out.append(df.reset_index(drop=True))
    # Evidently raises on a column with no values on one side: leave those out of the declared lists.
    usable = [c for c in columns if all(df[c.name].notna().any() for df in out)]
    for df in out:
        df.attrs["numerical_columns"] = [c.name for c in usable if c.declared == NUMERICAL]
        df.attrs["categorical_columns"] = [c.name for c in usable if c.declared == CATEGORICAL]
    return out[0], out[1]
