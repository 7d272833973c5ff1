"""Anomalies in the daily marts: a robust baseline per model × feature × metric (CONTRACT section 7, marts.anomalies).

For day D and each metric, the baseline is the median of the trailing `window_days` days before D and the spread
is the MAD (median absolute deviation) × 1.4826, floored so a flat history does not make every blip significant.
The robust z-score (value − median) / spread flags a `warning` at |z| ≥ warn_z and `critical` at |z| ≥ critical_z,
in the direction that matters for the metric (a request drop and a request spike both matter; a join-rate rise
does not); the expected calibration error (marts.calibration) rising past its baseline is one of those metrics.
Drift comes from marts.drift_metrics / drift_summary as decided by the drift assets: each drifted column whose
shift is significant for its sample sizes, grouped into episodes (anomalies/sql/drift.sql), and dataset drift.
Slices the monitoring marts marked `worse` are parity anomalies.

Only the trailing window is read, so the work grows with a day's data, not with history. Plain Python + DuckDB
SQL; the Dagster wiring is aiso_pipeline/defs/anomalies.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from aiso_pipeline import warehouse
from aiso_pipeline.monitoring.config import MonitoringConfig

SQL = "anomalies/sql"
SOURCES = (  # source table → the SQL file turning its trailing window into observations
    ("marts.cost_daily", f"{SQL}/obs_cost.sql"),
    ("marts.outcome_coverage", f"{SQL}/obs_coverage.sql"),
    ("marts.calibration", f"{SQL}/obs_calibration.sql"),
)
DRIFT_SOURCE = "marts.drift_summary"
PARITY_SOURCE = "marts.slice_metrics"
TEMP_TABLES = ("_anomaly_obs", "_anomaly_found", "_anomaly_rules", "_anomaly_prev", "_anomaly_drift_weights",
               "_anomaly_drift_metrics")


@dataclass(frozen=True)
class Rule:
    """How one metric is judged. The spread is floored at max(abs_floor, rel_floor·|median|, sampling noise)."""

    metric: str
    direction: str  # 'up', 'down' or 'both': which side of the baseline is an anomaly
    abs_floor: float
    rel_floor: float
    # 'poisson' (a count: √median), 'binomial' (a rate: √(p(1−p)/the day's requests)) or 'sqrt_n' (0.5/√n: an
    # error such as ECE, whose sampling noise is at most about that on n calls)
    noise: str | None = None
    volume_gated: bool = True  # days with fewer than min_requests requests are neither judged nor history
    needs_closed_window: bool = False  # outcome-based: only days whose attribution window has closed


RULES = (
    Rule("requests", "both", abs_floor=1.0, rel_floor=0.05, noise="poisson", volume_gated=False),
    Rule("cost_usd", "up", abs_floor=0.01, rel_floor=0.05),
    Rule("cost_per_success", "up", abs_floor=0.0001, rel_floor=0.05, needs_closed_window=True),
    Rule("latency_p95_ms", "up", abs_floor=10.0, rel_floor=0.05),
    Rule("error_rate", "up", abs_floor=0.005, rel_floor=0.10, noise="binomial"),
    Rule("fallback_rate", "up", abs_floor=0.005, rel_floor=0.10, noise="binomial"),
    Rule("join_rate", "down", abs_floor=0.01, rel_floor=0.0, noise="binomial", needs_closed_window=True),
    Rule("ece", "up", abs_floor=0.01, rel_floor=0.10, noise="sqrt_n", needs_closed_window=True),
)


@dataclass(frozen=True)
class Thresholds:
    warn_z: float = 3.5
    critical_z: float = 6.0
    # fewer usable days before D: not judged (a new model or feature). Four are enough for a median to ignore one
    # outlier, and the floors keep a short history from being twitchy; a week would hide incidents of week one.
    min_history_days: int = 4
    window_days: int = 14  # trailing days in the baseline (weeks, with seasonality='weekly')
    min_requests: float = 20.0  # volume a day needs for its rates to be judged or used as history
    drift_critical_share: float = 0.5  # dataset drift with at least this share of columns drifted is critical
    # a drifted column is critical when weight x (statistic / threshold) reaches this (p-value tests: log p / log
    # threshold), e.g. a normed Wasserstein distance of 0.3 against 0.1
    drift_critical_score: float = 3.0
    # a column flagged again within this many days continues its episode (the drift reference window: 7 days)
    drift_episode_days: int = 7
    # 'weekly': compare a day only with the same weekday of the last window_days weeks, for traffic with a weekly
    # cycle (a quiet weekend is not a drop). Needs min_history_days weeks of history before anything is judged.
    seasonality: str = "none"
    rules: tuple[Rule, ...] = field(default=RULES)

    @property
    def lookback_days(self) -> int:
        """Days before D that the baseline reads."""
        return self.window_days * (7 if self.seasonality == "weekly" else 1)

    def __post_init__(self):
        if not 0 < self.warn_z <= self.critical_z:
            raise ValueError(f"need 0 < warn_z <= critical_z, got warn_z={self.warn_z}, critical_z={self.critical_z}")
        if not 1 <= self.min_history_days <= self.window_days:
            raise ValueError(f"need 1 <= min_history_days <= window_days, got {self.min_history_days} and "
                             f"{self.window_days}")
        if self.min_requests < 0 or not 0 <= self.drift_critical_share <= 1:
            raise ValueError("min_requests must be >= 0 and drift_critical_share in [0, 1]")
        if not self.drift_critical_score > 0 or not 1 <= self.drift_episode_days <= 90:
            raise ValueError("drift_critical_score must be > 0 and drift_episode_days from 1 to 90")
        if self.seasonality not in ("none", "weekly"):
            raise ValueError(f"seasonality must be 'none' or 'weekly', got {self.seasonality!r}")
        for r in self.rules:
            if (r.direction not in ("up", "down", "both") or r.abs_floor <= 0 or r.rel_floor < 0
                    or r.noise not in (None, "poisson", "binomial", "sqrt_n")):
                raise ValueError(f"rule {r.metric}: direction must be up/down/both, abs_floor > 0, rel_floor >= 0, "
                                 f"noise poisson/binomial/sqrt_n/None")


@dataclass(frozen=True)
class DetectSummary:
    dt: str
    anomalies: int
    critical: int
    by_metric: dict[str, int]
    missing_sources: tuple[str, ...]  # marts not built (yet): their metrics were not judged


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    warehouse.run(con, f"{SQL}/schema.sql")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = 'marts'").fetchall()}


def _drift_columns(con: duckdb.DuckDBPyConnection, dt: str, present: bool) -> None:
    """_anomaly_drift_metrics: the day's drifted columns from marts.drift_metrics, empty when that table (or its
    shift_p_value, added later) does not exist yet."""
    con.execute("""CREATE OR REPLACE TEMP TABLE _anomaly_drift_metrics (dt DATE, model VARCHAR, column_name VARCHAR,
                   method VARCHAR, statistic DOUBLE, threshold DOUBLE, drifted BOOLEAN, shift_p_value DOUBLE)""")
    has_p = present and con.execute(
        """SELECT count(*) FROM information_schema.columns WHERE table_schema = 'marts'
           AND table_name = 'drift_metrics' AND column_name = 'shift_p_value'""").fetchall()[0][0]
    if has_p:
        con.execute("""INSERT INTO _anomaly_drift_metrics SELECT dt, model, column_name, method, statistic, threshold,
                       drifted, shift_p_value FROM marts.drift_metrics WHERE dt = ? AND drifted""", [dt])


def detect(con: duckdb.DuckDBPyConnection, dt: str, thresholds: Thresholds = Thresholds(),
           monitoring: MonitoringConfig = MonitoringConfig(), clock_offset_seconds: float = 0.0) -> DetectSummary:
    """Replace marts.anomalies for day `dt` (one transaction): idempotent, and ids are stable across reruns.
    `monitoring` (reference/monitoring.yaml) gives the drift alert level and the columns' weights.
    `clock_offset_seconds` shifts the clock that stamps detected_at (a replay of past nights, see
    `runner.replay_tags`); 0 is the wall clock."""
    t = thresholds
    ensure_table(con)
    present = _tables(con)
    params = {"dt": dt, "lookback_days": t.lookback_days, "weekly": t.seasonality == "weekly",
              "min_history_days": t.min_history_days, "min_requests": t.min_requests, "warn_z": t.warn_z,
              "critical_z": t.critical_z, "drift_critical_share": t.drift_critical_share,
              "drift_critical_score": t.drift_critical_score, "drift_episode_days": t.drift_episode_days,
              "drift_alert_alpha": monitoring.drift_alert_alpha, "clock_offset_seconds": float(clock_offset_seconds)}
    warehouse.run(con, f"{SQL}/prepare.sql")
    con.execute("""CREATE OR REPLACE TEMP TABLE _anomaly_rules (metric VARCHAR, direction VARCHAR, abs_floor DOUBLE,
                   rel_floor DOUBLE, noise VARCHAR, volume_gated BOOLEAN, needs_closed_window BOOLEAN)""")
    con.executemany("INSERT INTO _anomaly_rules VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(r.metric, r.direction, r.abs_floor, r.rel_floor, r.noise, r.volume_gated,
                      r.needs_closed_window) for r in t.rules])
    con.execute("CREATE OR REPLACE TEMP TABLE _anomaly_drift_weights (column_name VARCHAR, weight DOUBLE)")
    if monitoring.drift_weights:
        con.executemany("INSERT INTO _anomaly_drift_weights VALUES (?, ?)",
                        [(c, float(w)) for c, w in monitoring.drift_weights.items()])
    missing = []
    for table, file in SOURCES:
        if table in present:
            warehouse.run(con, file, **params)
        else:
            missing.append(table)
    warehouse.run(con, f"{SQL}/score.sql", **params)
    if DRIFT_SOURCE in present:
        _drift_columns(con, dt, "marts.drift_metrics" in present)
        warehouse.run(con, f"{SQL}/drift.sql", **params)
    else:
        missing.append(DRIFT_SOURCE)
    if PARITY_SOURCE in present:
        warehouse.run(con, f"{SQL}/parity.sql", **params)
    else:
        missing.append(PARITY_SOURCE)
    with warehouse.transaction(con, writes=[("marts.anomalies", dt)]):
        warehouse.run(con, f"{SQL}/write.sql", **params)
    by_metric = dict(con.execute(
        "SELECT metric, count(*) FROM _anomaly_found GROUP BY metric ORDER BY metric").fetchall())
    critical = con.execute("SELECT count(*) FROM _anomaly_found WHERE severity = 'critical'").fetchone()[0]
    for table in TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return DetectSummary(dt, sum(by_metric.values()), critical, by_metric, tuple(missing))
