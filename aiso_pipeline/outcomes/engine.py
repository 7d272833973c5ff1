"""Build the outcome marts for one day, all in DuckDB SQL (sql/*.sql), each partition replaced in one transaction.

joined_outcomes(D) reads inference partitions D .. D+k and product partitions D .. D+k (k = ceil(window/24h));
outcome_coverage(D) and cost_daily(D) read joined_outcomes(D) only. Rerunning a day is idempotent, and a
rerun after late product files land picks the late outcomes up. A refresh whose only new inputs are partitions
added after D (yesterday's, when today lands) attributes just their events and merges them (joined_merge.sql).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from aiso_pipeline import warehouse
from aiso_pipeline.outcomes.config import MAX_UNATTRIBUTED_SHARE, MIN_JOIN_RATE, OutcomeConfig

SQL = "outcomes/sql/"
TEMP_TABLES = ("_jo_outcomes", "_jo_check")


@dataclass(frozen=True)
class JoinSummary:
    dt: str
    inferences: int               # rows
    weighted_inferences: float
    joined: int                   # rows with has_outcome
    join_rate: float | None       # weighted
    window_closed: bool
    product_events: int           # of product partition dt (the attribution checks)
    unattributed_events: int
    unknown_request_id: int
    recomputed: bool = True       # False: join inputs unchanged since the last join, only window_closed updated
    checked: bool = True          # False: the attribution checks' inputs unchanged, their counts kept
    extended: bool = False        # True: only the events added since the last join were attributed and merged


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    warehouse.run(con, SQL + "schema.sql")


def _in_transaction(con: duckdb.DuckDBPyConnection, writes: list[tuple[str, str]], *steps: tuple[str, dict]) -> None:
    with warehouse.transaction(con, writes=writes):
        for name, params in steps:
            warehouse.run(con, SQL + name, **params)


def build_joined_outcomes(con: duckdb.DuckDBPyConnection, dt: str,
                          config: OutcomeConfig = OutcomeConfig()) -> JoinSummary:
    """Replace marts.joined_outcomes for `dt` and this day's attribution checks in quality.check_results.

    Each part is computed again only when what it was computed from changed (inputs.sql: same settings and SQL, no
    relevant row of its partitions added, changed or removed); otherwise only window_closed is brought up to date.
    The day before yesterday, whose window the nightly run must see close, usually needs neither; yesterday needs
    its join (today's product events), not its checks."""
    ensure_tables(con)
    params = {"dt": dt, **config.params()}
    parts, join_code, join_inputs, check_inputs = _fingerprints(con, params)
    (closed,) = warehouse.run(con, SQL + "window_closed.sql", **params).fetchone()
    stored = con.execute("""SELECT join_inputs, check_inputs, events, unattributed, unknown_request_id, join_code
                            FROM meta.outcome_inputs WHERE dt = ?""", [dt]).fetchone()
    joined_complete, checks_complete = warehouse.run(con, SQL + "outputs.sql", dt=dt).fetchone()
    join = stored is None or stored[0] != join_inputs or not joined_complete
    checks = stored is None or stored[1] != check_inputs or not checks_complete
    # Yesterday's usual refresh: today's partitions were added and nothing else changed, so only today's events
    # are attributed and merged into the day's rows, instead of joining the whole day again.
    extend = join and joined_complete and stored is not None and stored[5] == join_code
    events_from = _extension(con, params, parts) if extend else None
    if join:
        # Attribution into a temp table first, then the partition swap in one transaction. Two statements
        # measured ~15% less CPU than one INSERT with the attribution inline (DuckDB plans the shared CTE worse).
        warehouse.run(con, SQL + "joined_attribute.sql", **params, events_from=events_from or dt)
    stale = not join and con.execute("SELECT count(*) FROM marts.joined_outcomes WHERE dt = ? AND window_closed <> ?",
                                     [dt, closed]).fetchone()[0] > 0
    # A window that only closed since the last join flips the rows' flag here and in marts.outcome_windows; the
    # partition is not declared rewritten, so publish writes no Parquet for it (the published view reads the flag
    # from marts.outcome_windows, a small table copied whole).
    writes = [("marts.joined_outcomes", dt)] if join else []
    with warehouse.transaction(con, writes=writes + ([("quality.check_results", dt)] if checks else [])):
        con.execute("DELETE FROM marts.outcome_windows WHERE dt = ?", [dt])
        con.execute("INSERT INTO marts.outcome_windows VALUES (?, ?, current_timestamp)", [dt, closed])
        if events_from:
            warehouse.run(con, SQL + "joined_merge.sql", dt=dt)
        elif join:
            warehouse.run(con, SQL + "joined_write.sql", **params, window_closed=closed)
        if events_from or stale:  # rows kept from the last join: their window may have closed since
            con.execute("UPDATE marts.joined_outcomes SET window_closed = ? WHERE dt = ? AND window_closed <> ?",
                        [closed, dt, closed])
        if checks:
            warehouse.run(con, SQL + "attribution_checks.sql", **params,
                          max_unattributed_share=MAX_UNATTRIBUTED_SHARE)
            events, unattributed, unknown = con.execute(
                "SELECT events, unattributed, unknown_request_id FROM _jo_check").fetchone()
        else:
            events, unattributed, unknown = stored[2:5]
        con.execute("DELETE FROM meta.outcome_inputs WHERE dt = ?", [dt])
        con.execute("""INSERT INTO meta.outcome_inputs (dt, join_inputs, check_inputs, events, unattributed,
                       unknown_request_id, computed_at, join_code) VALUES (?, ?, ?, ?, ?, ?, current_timestamp, ?)""",
                    [dt, join_inputs, check_inputs, events, unattributed, unknown, join_code])
        if join:
            con.execute("DELETE FROM meta.outcome_join_parts WHERE dt = ?", [dt])
            if parts:
                con.executemany("INSERT INTO meta.outcome_join_parts VALUES (?, ?, ?, ?, ?)",
                                [(dt, *p) for p in parts])
    rows, weighted, joined, joined_weight, closed = con.execute(
        """SELECT count(*), coalesce(sum(weight), 0), count(*) FILTER (WHERE has_outcome),
                  coalesce(sum(weight) FILTER (WHERE has_outcome), 0), coalesce(bool_and(window_closed), false)
           FROM marts.joined_outcomes WHERE dt = ?""", [dt]).fetchone()
    for table in TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return JoinSummary(dt, rows, weighted, joined, joined_weight / weighted if weighted else None, closed,
                       events, unattributed, unknown, join, checks, bool(events_from))


JOIN_SQL = ("joined_attribute.sql", "joined_write.sql", "joined_merge.sql", "join_extendable.sql")


def _fingerprints(con: duckdb.DuckDBPyConnection, params: dict) -> tuple[list[tuple], str, str, str]:
    """The day's inputs (inputs.sql): the join's partitions as (stream, dt, rows, loaded_at); a digest of the
    join's settings and SQL; and per scope, a digest of its rows, the settings and the SQL that reads them."""
    rows = warehouse.run(con, SQL + "inputs.sql", **params).fetchall()
    settings = repr((sorted((k, str(v)) for k, v in params.items() if k != "dt"), MAX_UNATTRIBUTED_SHARE))

    def digest(scope: str | None, files: tuple[str, ...]) -> str:
        code = "".join(warehouse.sql(SQL + name) for name in files + ("inputs.sql",))
        text = repr([tuple(str(x) for x in r) for r in rows if r[0] == scope])
        return hashlib.sha256((code + settings + text).encode()).hexdigest()
    return ([tuple(r[1:]) for r in rows if r[0] == "join"], digest(None, JOIN_SQL), digest("join", JOIN_SQL),
            digest("checks", ("attribution_checks.sql",)))


def _extension(con: duckdb.DuckDBPyConnection, params: dict, parts: list[tuple]) -> str | None:
    """The first product partition to attribute when day D's last join (same settings and SQL, outputs in place)
    can be extended rather than redone: every partition it read is unchanged, the added ones all come after D and
    after the product partitions it read, and no added call can take an earlier event (join_extendable.sql).
    None: join the whole day. A date past the window when only inference partitions were added (no event to add)."""
    old = {tuple(r) for r in con.execute("SELECT stream, part_dt, rows, loaded_at FROM meta.outcome_join_parts "
                                         "WHERE dt = ?", [params["dt"]]).fetchall()}
    new = set(parts)
    added = new - old
    if not old or not added or not old <= new:
        return None
    day = date.fromisoformat(str(params["dt"]))
    old_product = sorted(p[1] for p in old if p[0] == "product")
    added_product = sorted(p[1] for p in added if p[0] == "product")
    if any(p[1] <= day for p in added) or old_product and added_product and added_product[0] <= old_product[-1]:
        return None
    (extendable,) = warehouse.run(con, SQL + "join_extendable.sql", **params, old_product=old_product,
                                  added_inference=[p[1] for p in added if p[0] == "inference"]).fetchone()
    if not extendable:
        return None
    return (added_product[0] if added_product else day + timedelta(days=params["days"] + 1)).isoformat()


def build_outcome_coverage(con: duckdb.DuckDBPyConnection, dt: str, min_join_rate: float = MIN_JOIN_RATE) -> None:
    """Replace marts.outcome_coverage for `dt` (and its join-rate row in quality.check_results)."""
    ensure_tables(con)
    _in_transaction(con, [("marts.outcome_coverage", dt), ("quality.check_results", dt)],
                    ("coverage_write.sql", {"dt": dt, "min_join_rate": min_join_rate}))


def build_cost_daily(con: duckdb.DuckDBPyConnection, dt: str) -> None:
    """Replace marts.cost_daily for `dt`."""
    ensure_tables(con)
    _in_transaction(con, [("marts.cost_daily", dt)], ("cost_daily_write.sql", {"dt": dt}))


def low_coverage(con: duckdb.DuckDBPyConnection, dt: str, min_join_rate: float = MIN_JOIN_RATE,
                 limit: int = 10) -> tuple[float | None, list[tuple]]:
    """The lowest join rate of `dt` and the worst model × feature rows below `min_join_rate`."""
    worst = con.execute(
        """SELECT model, feature, join_rate, inferences, joined, inference_rows FROM marts.outcome_coverage
           WHERE dt = ? AND join_rate < ? ORDER BY join_rate, model, feature LIMIT ?""",
        [dt, min_join_rate, limit]).fetchall()
    (lowest,) = con.execute("SELECT min(join_rate) FROM marts.outcome_coverage WHERE dt = ?", [dt]).fetchone()
    return lowest, worst


def headline(con: duckdb.DuckDBPyConnection, dt: str) -> dict:
    """Day totals across models: weighted join rate, cost, cost per success / conversion (priced calls only)."""
    row = con.execute(
        """SELECT sum(weight) AS requests,
                  sum(weight) FILTER (WHERE has_outcome) / sum(weight) AS join_rate,
                  sum(weight * cost_usd) AS cost_usd,
                  sum(weight * cost_usd) / sum(weight) FILTER (WHERE success AND cost_usd IS NOT NULL)
                      AS cost_per_success,
                  sum(weight * cost_usd) / sum(weight) FILTER (WHERE converted AND cost_usd IS NOT NULL)
                      AS cost_per_conversion,
                  sum(weight * revenue) AS revenue
           FROM marts.joined_outcomes WHERE dt = ?""", [dt]).fetchone()
    return dict(zip(("requests", "join_rate", "cost_usd", "cost_per_success", "cost_per_conversion", "revenue"), row))


def latency_by_hour(con: duckdb.DuckDBPyConnection, dt: str) -> list[tuple[int, str, float]]:
    """(hour, model, weighted p95 latency) for `dt`."""
    return warehouse.run(con, SQL + "latency_hourly.sql", dt=dt).fetchall()


def cost_trend(con: duckdb.DuckDBPyConnection, dt: str, days: int = 14) -> list[tuple]:
    """(dt, model, cost_usd, requests) for the `days` days ending `dt`."""
    return warehouse.run(con, SQL + "cost_trend.sql", dt=dt, days=days).fetchall()


def open_days(con: duckdb.DuckDBPyConnection, before: str, lookback_days: int = 7) -> list[str]:
    """Days before `before` (within `lookback_days`) whose outcome window was still open when last computed:
    the ones a nightly run should recompute so late product events reach them."""
    ensure_tables(con)
    rows = con.execute(
        """SELECT DISTINCT dt FROM marts.joined_outcomes
           WHERE dt < ?::DATE AND dt >= ?::DATE - ?::INTEGER AND NOT window_closed ORDER BY dt""",
        [before, before, lookback_days]).fetchall()
    return [d.isoformat() for (d,) in rows]
