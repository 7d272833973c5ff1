"""Drift statistics for one partition day, per model and column, computed inside DuckDB.

Three scans of the day and its reference window do the heavy lifting, whatever the row count:
  1. feature_keys.sql  the keys and JSON types of the `features` objects (skipped without features);
  2. moments.sql       per model and side: rows, non-null values, std of the reference, approximate distinct counts;
  3. histogram.sql     per model, side and column: counts per category, per exact value (low-cardinality numeric
                       columns) or per grid bucket of width resolution * std(reference) (other numeric columns).
Only those aggregates reach Python, where stattests.py turns them into Evidently's statistics. The small-reference
Kolmogorov-Smirnov path fetches at most small_reference_rows + ks_exact_max_rows values of a column (or computes D in
SQL when the current side is larger).
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import duckdb
import numpy as np
import pandas as pd

from aiso_pipeline.drift import stattests
from aiso_pipeline.drift.config import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS, DriftConfig

NUMERICAL, CATEGORICAL = "numerical", "categorical"
JSON_NUMBER_TYPES = {"UBIGINT", "BIGINT", "DOUBLE", "HUGEINT", "UHUGEINT", "INTEGER"}
JSON_CATEGORICAL_TYPES = {"VARCHAR", "BOOLEAN"}
FEATURE_PREFIX = "features."

METRIC_COLUMNS = ("dt", "model", "column_name", "column_type", "method", "statistic", "threshold", "drifted",
                  "reference_start", "reference_end", "reference_rows", "current_rows", "p_value", "test_statistic",
                  "declared_type", "reference_values", "current_values", "distinct_values", "reason")
SUMMARY_COLUMNS = ("dt", "model", "columns_checked", "columns_drifted", "share_drifted", "dataset_drift",
                   "columns_skipped", "drift_share_threshold", "reference_start", "reference_end", "reference_rows",
                   "current_rows")


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
    """Replace {name} placeholders. Parts are built only from whitelisted identifiers and generated aliases."""
    def sub(m):
        if m.group(1) not in parts:
            raise KeyError(f"drift SQL placeholder {{{m.group(1)}}} has no value")
        return str(parts[m.group(1)])
    return _TOKEN.sub(sub, template)


def _frag(name: str, **parts) -> str:
    return _fill(_fragments()[name], **parts)


_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict):
    sql = re.sub(r"--[^\n]*", "", sql)  # comments mention $names too (the .sql files hold no '--' in literals)
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
    alias: str                # c0, c1, ... in the generated SQL
    base: str | None = None   # whitelisted raw column, or
    feature_index: int | None = None  # 1-based position in $feature_paths

    def expression(self) -> str:
        expr = f'"{self.base}"' if self.base else _frag("feature_value", index=self.feature_index)
        return _frag("numeric" if self.declared == NUMERICAL else "categorical", expr=expr, c=self.alias)


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _feature_types(con, source: str, params: dict) -> dict[str, dict[str, str]]:
    """model -> {key: NUMERICAL | CATEGORICAL} for scalar keys seen in that model's rows."""
    sql = _fill(_sql_text("feature_keys.sql"), source=source)
    seen: dict[str, dict[str, set]] = {}
    for model, structure in _execute(con, sql, params).fetchall():
        try:
            shape = json.loads(structure)
        except (TypeError, ValueError):
            continue
        if not isinstance(shape, dict):
            continue
        for key, typ in shape.items():
            if isinstance(typ, str):  # nested objects / arrays are not features
                seen.setdefault(model, {}).setdefault(key, set()).add(typ)
    out = {}
    for model, keys in seen.items():
        out[model] = {}
        for key, types in keys.items():
            types = types - {"NULL"}
            if types and types <= JSON_NUMBER_TYPES:
                out[model][key] = NUMERICAL
            elif types & JSON_CATEGORICAL_TYPES or types:
                out[model][key] = CATEGORICAL
            else:
                out[model][key] = None  # only JSON nulls: reported as all-null
    return out


def _columns(config: DriftConfig, features: dict[str, dict[str, str]]) -> list[Column]:
    cols = [Column(n, NUMERICAL, "", base=n) for n in config.numeric_columns]
    cols += [Column(n, CATEGORICAL, "", base=n) for n in config.categorical_columns]
    assert all(c.base in NUMERIC_COLUMNS + CATEGORICAL_COLUMNS for c in cols)
    merged: dict[str, set] = {}
    for keys in features.values():
        for key, typ in keys.items():
            merged.setdefault(key, set()).add(typ)
    for i, key in enumerate(sorted(merged), start=1):
        types = merged[key] - {None}
        declared = NUMERICAL if types == {NUMERICAL} else CATEGORICAL  # mixed across models: compare as text
        cols.append(Column(FEATURE_PREFIX + key, declared, "", feature_index=i))
    return [Column(c.name, c.declared, f"c{i}", c.base, c.feature_index) for i, c in enumerate(cols)]


def _rows_sql(source: str, columns: list[Column]) -> str:
    bases = list(dict.fromkeys(c.base for c in columns if c.base))
    has_features = any(c.feature_index for c in columns)
    return _fill(
        _sql_text("rows.sql"),
        source=source,
        base="".join(f', "{b}"' for b in bases),
        features=", " + _frag("feature_values") if has_features else "",
        columns="".join(", " + c.expression() for c in columns),
    )


def _feature_paths(columns: list[Column]) -> list[str]:
    return [_json_path(c.name[len(FEATURE_PREFIX):]) for c in sorted(
        (c for c in columns if c.feature_index), key=lambda c: c.feature_index)]


def _subset(columns: list[Column]) -> list[Column]:
    """Re-alias a subset of columns c0.. and renumber features, for single-column queries."""
    out, idx = [], 0
    for i, c in enumerate(columns):
        fi = None
        if c.feature_index:
            idx += 1
            fi = idx
        out.append(Column(c.name, c.declared, f"c{i}", c.base, fi))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Aggregation queries


def _moments(con, source: str, columns: list[Column], params: dict) -> dict[tuple[str, str], dict]:
    aggs = "".join(", " + _frag("numeric_moments" if c.declared == NUMERICAL else "categorical_moments", c=c.alias)
                   for c in columns)
    sql = _fill(_sql_text("moments.sql"), rows=_rows_sql(source, columns), aggregates=aggs)
    cur = _execute(con, sql, {**params, "feature_paths": _feature_paths(columns)})
    names = [d[0] for d in cur.description]
    return {(r[0], r[1]): dict(zip(names, r)) for r in cur.fetchall()}


def _histograms(con, source: str, columns: list[Column], grid: dict[str, dict[str, float | None]],
                params: dict) -> dict[tuple[str, str, str], dict]:
    """(model, alias, side) -> {value: count}, for the columns and models in `grid` (model -> alias -> step)."""
    if not columns or not grid:
        return {}
    con.execute("CREATE OR REPLACE TEMP TABLE drift_grid (model VARCHAR"
                + "".join(f", h_{c.alias} DOUBLE" for c in columns) + ")")
    try:
        con.executemany(f"INSERT INTO drift_grid VALUES ({', '.join(['?'] * (len(columns) + 1))})",
                        [[m] + [steps.get(c.alias) for c in columns] for m, steps in grid.items()])
        sql = _fill(
            _sql_text("histogram.sql"),
            rows=_rows_sql(source, columns),
            bins="".join(", " + _frag("numeric_bin" if c.declared == NUMERICAL else "categorical_bin", c=c.alias)
                         for c in columns),
            outputs="".join(", " + _frag("bin_output", c=c.alias) for c in columns),
            sets=", ".join(_frag("bin_set", c=c.alias) for c in columns),
        )
        res = _execute(con, sql, {**params, "feature_paths": _feature_paths(columns)}).df()
    finally:
        con.execute("DROP TABLE IF EXISTS temp.drift_grid")
    out: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
    for c in columns:
        part = res.loc[(res[f"g_{c.alias}"] == 0) & res[c.alias].notna(), ["model", "drift_side", c.alias, "n"]]
        for (model, side), g in part.groupby(["model", "drift_side"], sort=False):
            values = g[c.alias].to_numpy(dtype=np.float64 if c.declared == NUMERICAL else object)
            out[(model, c.alias, side)] = (values, g["n"].to_numpy(dtype=np.int64))
    return out


def _counts(hist, key) -> dict:
    values, counts = hist.get(key, ((), ()))
    return dict(zip(values.tolist() if hasattr(values, "tolist") else values,
                    counts.tolist() if hasattr(counts, "tolist") else counts))


def _n_distinct(hist, m, alias) -> int:
    empty = (np.array([], dtype=np.float64), None)
    ref, cur = hist.get((m, alias, "ref"), empty)[0], hist.get((m, alias, "cur"), empty)[0]
    if ref.dtype == object or cur.dtype == object:
        return len(set(ref.tolist()) | set(cur.tolist()))
    return len(np.union1d(ref, cur))


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
    rows = _rows_sql(source, [col])
    p = {**params, "model": model, "feature_paths": _feature_paths([col]), "n_ref": n_ref, "n_cur": n_cur}
    if n_cur <= config.ks_exact_max_rows:
        df = _execute(con, _fill(_sql_text("column_values.sql"), rows=rows), p).fetchnumpy()
        side, v = np.asarray(df["drift_side"]), np.asarray(df["v"], dtype=np.float64)
        return stattests.ks_from_values(v[side == "ref"], v[side == "cur"])
    (d,) = _execute(con, _fill(_sql_text("ks_statistic.sql"), rows=rows), p).fetchone()
    return float(d), stattests.ks_asymptotic_p(float(d), n_ref, n_cur)


def compute_drift(con: duckdb.DuckDBPyConnection, dt: _dt.date, config: DriftConfig = DriftConfig(),
                  source: str = "raw.inference_events") -> tuple[list[dict], list[dict]]:
    """Drift of day `dt` against its reference window, per model (with rows on dt) and column.

    Returns (metrics_rows, summary_rows): lists of dicts with the columns of marts.drift_metrics (METRIC_COLUMNS)
    and marts.drift_summary (SUMMARY_COLUMNS). `statistic` is Evidently's drift score: the distance for
    wasserstein / jensenshannon, the p-value for ks / chisquare / z (also in p_value; test_statistic holds D,
    chi2 or z). A column that cannot be tested has statistic NULL, drifted false and a `reason`.
    """
    if isinstance(dt, str):
        dt = _dt.date.fromisoformat(dt)
    src = _quote_source(source)
    ref_start, ref_end = config.reference_window(dt)
    params = {"dt": dt, "ref_start": ref_start, "ref_end": ref_end}

    features = _feature_types(con, src, params) if config.include_features else {}
    columns = _columns(config, features)
    moments = _moments(con, src, columns, params)
    models = sorted(m for (m, side), row in moments.items() if side == "cur" and row["n_rows"] > 0)

    def stat(model, side, key, default=0):
        row = moments.get((model, side))
        return default if row is None or row[key] is None else row[key]

    # Bucket steps: exact values for low-cardinality numeric columns, a grid of resolution * norm otherwise.
    grid: dict[str, dict[str, float | None]] = {}
    for m in models:
        if stat(m, "ref", "n_rows") == 0:
            continue
        steps = {}
        for c in columns:
            n_ref, n_cur = stat(m, "ref", f"n_{c.alias}"), stat(m, "cur", f"n_{c.alias}")
            if n_ref == 0 or n_cur == 0:
                steps[c.alias] = None
                continue
            nd = stat(m, "ref", f"nd_{c.alias}") + stat(m, "cur", f"nd_{c.alias}")
            if c.declared == CATEGORICAL:
                steps[c.alias] = 1.0 if nd <= config.max_categories else None
            elif nd <= config.exact_distinct_max:
                steps[c.alias] = 0.0
            else:
                norm = max(float(stat(m, "ref", f"sd_{c.alias}")), config.wasserstein_norm_floor)
                steps[c.alias] = norm * config.wasserstein_resolution
        grid[m] = steps
    hist = _histograms(con, src, columns, grid, params)

    # Safety net: a gridded column with few buckets may hide few distinct values; recount it exactly.
    recount = {m: {c.alias: 0.0 for c in columns
                   if c.declared == NUMERICAL and (grid[m].get(c.alias) or 0) > 0
                   and _n_distinct(hist, m, c.alias) <= config.categorical_max_distinct}
               for m in grid}
    recount = {m: s for m, s in recount.items() if s}
    if recount:
        subset = [c for c in columns if any(c.alias in s for s in recount.values())]
        sub = _subset(subset)
        back = {s.alias: c.alias for s, c in zip(sub, subset)}
        again = _histograms(con, src, sub, {m: {s.alias: s_steps.get(back[s.alias]) for s in sub}
                                             for m, s_steps in recount.items()}, params)
        for (m, alias, side), counts in again.items():
            hist[(m, back[alias], side)] = counts
        for m, s in recount.items():
            for alias in s:
                grid[m][alias] = 0.0

    metrics: list[dict] = []
    summary: list[dict] = []
    for m in models:
        ref_rows, cur_rows = stat(m, "ref", "n_rows"), stat(m, "cur", "n_rows")
        model_keys = features.get(m, {})
        rows = []
        for c in columns:
            if c.feature_index and c.name[len(FEATURE_PREFIX):] not in model_keys:
                continue  # a key this model never sends
            n_ref, n_cur = stat(m, "ref", f"n_{c.alias}"), stat(m, "cur", f"n_{c.alias}")
            d = dict.fromkeys(METRIC_COLUMNS)
            d.update(dt=dt, model=m, column_name=c.name, column_type=c.declared, declared_type=c.declared,
                     drifted=False, reference_start=ref_start, reference_end=ref_end, reference_rows=ref_rows,
                     current_rows=cur_rows, reference_values=n_ref, current_values=n_cur)
            rows.append(d)
            if ref_rows == 0:
                d["reason"] = "empty_reference"
                continue
            if n_ref == 0:
                d["reason"] = "reference_all_null"
                continue
            if n_cur == 0:
                d["reason"] = "current_all_null"
                continue
            step = grid[m].get(c.alias)
            if step is None:  # only categorical columns over max_categories get here
                d["reason"] = "too_many_categories"
                continue
            n_values = _n_distinct(hist, m, c.alias)
            if c.declared == CATEGORICAL or (step == 0 and n_values <= config.categorical_max_distinct):
                # registry.py: a numeric column with <= 5 distinct values (reference and current together)
                # gets the categorical tests
                _categorical_test(d, config, _counts(hist, (m, c.alias, "ref")),
                                  _counts(hist, (m, c.alias, "cur")), n_ref)
                continue
            d["distinct_values"] = n_values if step == 0 else None
            if n_ref > config.small_reference_rows:
                norm = max(float(stat(m, "ref", f"sd_{c.alias}")), config.wasserstein_norm_floor)
                scale = step if step > 0 else 1.0
                (rx, rn), (cx, cn) = hist[(m, c.alias, "ref")], hist[(m, c.alias, "cur")]
                w = stattests.wasserstein_normed(rx * scale, rn, cx * scale, cn, norm)
                _decide(d, config, "wasserstein", w)
            else:
                ks_d, p = _ks(con, src, c, m, params, config, n_ref, n_cur)
                _decide(d, config, "ks", p, p_value=p, test_statistic=ks_d)
        metrics.extend(rows)
        checked = [r for r in rows if r["statistic"] is not None]
        drifted = sum(r["drifted"] for r in checked)
        share = drifted / len(checked) if checked else None
        summary.append(dict(dt=dt, model=m, columns_checked=len(checked), columns_drifted=drifted,
                            share_drifted=share,
                            dataset_drift=bool(share is not None and share >= config.dataset_drift_share),
                            columns_skipped=len(rows) - len(checked),
                            drift_share_threshold=config.dataset_drift_share, reference_start=ref_start,
                            reference_end=ref_end, reference_rows=ref_rows, current_rows=cur_rows))
    return metrics, summary


def sample_for_report(con: duckdb.DuckDBPyConnection, dt: _dt.date, model: str,
                      config: DriftConfig = DriftConfig(), max_rows: int = 5000,
                      source: str = "raw.inference_events") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current) samples of one model, at most max_rows each, with the checked columns flattened
    (features.<key> as columns): numeric columns as float64, categorical ones as text. Each frame's
    attrs['numerical_columns'] / attrs['categorical_columns'] give the declared types; pass them to
    evidently.DataDefinition so Evidently does not re-infer them (it would call integer columns with <= 10
    values, or strings with many values, something else)."""
    if isinstance(dt, str):
        dt = _dt.date.fromisoformat(dt)
    src = _quote_source(source)
    ref_start, ref_end = config.reference_window(dt)
    params = {"dt": dt, "ref_start": ref_start, "ref_end": ref_end, "model": model, "max_rows": int(max_rows)}
    features = _feature_types(con, src, params) if config.include_features else {}
    columns = _columns(config, {model: features.get(model, {})})
    sql = _fill(_sql_text("sample.sql"), rows=_rows_sql(source=src, columns=columns),
                hash_args=", ".join(c.alias for c in columns))
    out = []
    for side in ("ref", "cur"):
        df = _execute(con, sql, {**params, "side": side, "feature_paths": _feature_paths(columns)}).df()
        df = df[[c.alias for c in columns]].rename(columns={c.alias: c.name for c in columns})
        for c in columns:
            if c.declared == NUMERICAL:
                df[c.name] = df[c.name].astype("float64")
            else:
                df[c.name] = df[c.name].astype(object).where(df[c.name].notna(), None)
        df.attrs["numerical_columns"] = [c.name for c in columns if c.declared == NUMERICAL]
        df.attrs["categorical_columns"] = [c.name for c in columns if c.declared == CATEGORICAL]
        out.append(df.reset_index(drop=True))
    return out[0], out[1]
