"""Experiment readouts benchmark: 50 experiments × 6 metrics for one as-of day against a bare DuckDB aggregation.

    python benchmarks/experiments.py [--inferences 10000000] [--users 500000] [--memory-limit 3GB]
                                     [--workdir benchmarks/.work/experiments] [--keep]

A synthetic marts.joined_outcomes is generated in SQL in a temporary pipeline database: 42 days of inferences
on 10 features; from day 15 every inference carries one of 50 experiments (5 mutually exclusive experiments per
feature, users split between them, 2 variants each, about 0.1% of users leaking into the other variant); the
first 14 days are untagged history for CUPED. Then, each in a fresh process with the same DuckDB memory limit:

- bare: the floor for this work in DuckDB: per experiment × user aggregates of the tagged rows up to the as-of
  day (conversion, revenue, weighted cost / requests / successes / errors / latency), then per experiment ×
  variant counts, sums and sums of squares, written as a table. No exposure logic, no exclusion of mixed users,
  no pre-period, no cross-products.
- same work: the pipeline's SQL work written minimally by hand (SAME_WORK below): exposures with mixed users
  dropped, post and 14-day pre-period measures per user over the experiment's feature, per-variant sums, sums of
  squares and cross-products. The bare line is the issue's target baseline; this one shows how much of the gap
  is work the bare query does not do.
- pipeline: aiso_pipeline.experiments.build_experiment_readouts for the last day with a 50-entry registry
  (exposures, mixed-variant exclusion, post and 14-day pre-period per user, sufficient statistics with
  cross-products, analyze() per experiment, one transaction, report pages, the UI markdown).

Prints wall time, peak RSS (ru_maxrss of each process) and the ratio.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import child_code, dumps, measure  # noqa: E402

START, AS_OF, DAYS, HISTORY_DAYS = "2025-05-01", "2025-06-11", 42, 14
EXPERIMENTS, FEATURES = 50, 10

GENERATE = """
INSERT INTO marts.joined_outcomes BY NAME
WITH base AS (
    SELECT i, (hash(i) % $users)::BIGINT AS u, i % 10 AS f,
           TIMESTAMPTZ '2025-05-01 00:00:00+00' + to_milliseconds((i * 7919) % 3628800000) AS ts
    FROM range($inferences) AS t(i)
),
tagged AS (
    SELECT *, f * 5 + u % 5 AS e, ts >= TIMESTAMPTZ '2025-05-15 00:00:00+00' AS live,
           -- sticky assignment by user and experiment; 1 user in 1000 sometimes served the other variant
           ((u * 2654435761 + f) % 1000 = 0 AND i % 3 = 0) AS leak
    FROM base
)
SELECT 'req-' || i AS request_id, ts::DATE AS dt, ts AS "timestamp",
       ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet-20241022'][1 + i % 3] AS model,
       'feature_' || f AS feature, 'u' || u AS user_id,
       CASE WHEN live THEN 'exp_' || lpad(e::VARCHAR, 2, '0') END AS experiment_id,
       CASE WHEN live THEN ['control', 'treatment'][1 + ((u * 40503 + e * 31) % 2 + leak::INT) % 2] END AS variant,
       CASE WHEN i % 97 = 0 THEN 'error' WHEN i % 101 = 0 THEN 'timeout' ELSE 'ok' END AS status,
       CASE WHEN i % 53 = 0 THEN NULL ELSE 0.0005 + ((i * 31) % 1000) * 2e-5 + (u % 7) * 1e-4 END AS cost_usd,
       CASE WHEN f = 3 THEN 4.0 ELSE 1.0 END AS weight,
       (i * 13) % 10 < 6 AS has_outcome, 0 AS events_attributed,
       (i * 13) % 10 < 5 AS success,
       (i * 17 + u) % 40 = 0 AS converted,
       CASE WHEN (i * 17 + u) % 40 = 0 THEN 5 + (i % 200) ELSE 0 END::DOUBLE AS revenue,
       true AS window_closed,
       CASE WHEN i % 89 = 0 THEN NULL ELSE round(200 + (i * 37) % 3000 + (u % 11) * 20, 1) END AS latency_ms,
       i % 23 = 0 AS is_fallback, 100 + i % 3000 AS input_tokens, 10 + i % 700 AS output_tokens
FROM tagged
ORDER BY dt;
"""

BARE = """
CREATE OR REPLACE TABLE main.bare_stats AS
WITH per_user AS (
    SELECT experiment_id, user_id, min(variant) AS variant,
           max(converted::INT)::DOUBLE AS conv, sum(revenue) AS rev, coalesce(sum(weight * cost_usd), 0) AS cost,
           sum(weight) AS req, sum(weight * success::INT) AS succ,
           sum(weight * (status IN ('error', 'timeout'))::INT) AS err,
           coalesce(sum(weight * latency_ms), 0) AS lat,
           coalesce(sum(weight) FILTER (WHERE latency_ms IS NOT NULL), 0) AS lat_d
    FROM marts.joined_outcomes
    WHERE experiment_id IS NOT NULL AND variant IS NOT NULL AND dt <= DATE '2025-06-11'
    GROUP BY experiment_id, user_id
)
SELECT experiment_id, variant, count(*) AS n,
       sum(conv), sum(conv * conv), sum(rev), sum(rev * rev), sum(cost), sum(cost * cost),
       sum(req), sum(req * req), sum(succ), sum(succ * succ), sum(err), sum(err * err),
       sum(lat), sum(lat * lat), sum(lat_d), sum(lat_d * lat_d)
FROM per_user
GROUP BY experiment_id, variant;
"""

# The same work as the pipeline's SQL, written minimally by hand: exposure (first tagged inference) per experiment
# x user with users in two variants dropped, each unit's eight measures after exposure and over the 14 days
# before it on the experiment's feature (all of the user's inferences there, tagged or not), then per variant
# the unit count, sums and sums of squares of the 16 per-user columns and the cross-products the statistics use
# (each measure x its pre-period value, each ratio's numerator x denominator).
SAME_WORK = """
CREATE OR REPLACE TEMP TABLE same_units AS
SELECT experiment_id, user_id, 'feature_' || (right(experiment_id, 2)::INT // 5) AS feature,
       min(variant) AS variant, min("timestamp") AS exposed_at
FROM marts.joined_outcomes
WHERE experiment_id IS NOT NULL AND variant IS NOT NULL AND dt BETWEEN DATE '2025-05-15' AND DATE '2025-06-11'
GROUP BY experiment_id, user_id
HAVING min(variant) = max(variant);

CREATE OR REPLACE TEMP TABLE same_user AS
SELECT u.experiment_id, u.user_id, any_value(u.variant) AS variant,
       coalesce(max(j.converted::INT) FILTER (WHERE j."timestamp" >= u.exposed_at), 0)::DOUBLE AS conv,
       coalesce(sum(j.revenue) FILTER (WHERE j."timestamp" >= u.exposed_at), 0) AS rev,
       coalesce(sum(j.weight * j.cost_usd) FILTER (WHERE j."timestamp" >= u.exposed_at), 0) AS cost,
       coalesce(sum(j.weight) FILTER (WHERE j."timestamp" >= u.exposed_at), 0) AS req,
       coalesce(sum(j.weight * j.success::INT) FILTER (WHERE j."timestamp" >= u.exposed_at), 0) AS succ,
       coalesce(sum(j.weight) FILTER (WHERE j."timestamp" >= u.exposed_at AND j.status IN ('error', 'timeout')), 0) AS err,
       coalesce(sum(j.weight * j.latency_ms) FILTER (WHERE j."timestamp" >= u.exposed_at), 0) AS lat,
       coalesce(sum(j.weight) FILTER (WHERE j."timestamp" >= u.exposed_at AND j.latency_ms IS NOT NULL), 0) AS lat_d,
       coalesce(max(j.converted::INT) FILTER (WHERE j."timestamp" < u.exposed_at), 0)::DOUBLE AS conv_p,
       coalesce(sum(j.revenue) FILTER (WHERE j."timestamp" < u.exposed_at), 0) AS rev_p,
       coalesce(sum(j.weight * j.cost_usd) FILTER (WHERE j."timestamp" < u.exposed_at), 0) AS cost_p,
       coalesce(sum(j.weight) FILTER (WHERE j."timestamp" < u.exposed_at), 0) AS req_p,
       coalesce(sum(j.weight * j.success::INT) FILTER (WHERE j."timestamp" < u.exposed_at), 0) AS succ_p,
       coalesce(sum(j.weight) FILTER (WHERE j."timestamp" < u.exposed_at AND j.status IN ('error', 'timeout')), 0) AS err_p,
       coalesce(sum(j.weight * j.latency_ms) FILTER (WHERE j."timestamp" < u.exposed_at), 0) AS lat_p,
       coalesce(sum(j.weight) FILTER (WHERE j."timestamp" < u.exposed_at AND j.latency_ms IS NOT NULL), 0) AS lat_d_p
FROM same_units AS u
JOIN marts.joined_outcomes AS j ON j.user_id = u.user_id AND j.feature = u.feature
WHERE j.dt BETWEEN DATE '2025-04-17' AND DATE '2025-06-11' AND j."timestamp" >= u.exposed_at - INTERVAL 14 DAY
GROUP BY u.experiment_id, u.user_id;

CREATE OR REPLACE TABLE main.bare_stats AS
SELECT experiment_id, variant, count(*) AS n,
       sum(conv), sum(conv * conv), sum(rev), sum(rev * rev), sum(cost), sum(cost * cost), sum(req), sum(req * req),
       sum(succ), sum(succ * succ), sum(err), sum(err * err), sum(lat), sum(lat * lat), sum(lat_d), sum(lat_d * lat_d),
       sum(conv_p), sum(conv_p * conv_p), sum(rev_p), sum(rev_p * rev_p), sum(cost_p), sum(cost_p * cost_p),
       sum(req_p), sum(req_p * req_p), sum(succ_p), sum(succ_p * succ_p), sum(err_p), sum(err_p * err_p),
       sum(lat_p), sum(lat_p * lat_p), sum(lat_d_p), sum(lat_d_p * lat_d_p),
       sum(conv * conv_p), sum(rev * rev_p), sum(cost * cost_p), sum(req * req_p), sum(succ * succ_p),
       sum(err * err_p), sum(lat * lat_p), sum(lat_d * lat_d_p),
       sum(succ * req), sum(err * req), sum(lat * lat_d), sum(cost * conv), sum(cost * succ)
FROM same_user
GROUP BY experiment_id, variant;
"""


def registry_yaml() -> str:
    lines = ["experiments:"]
    for e in range(EXPERIMENTS):
        lines += [f"  - id: exp_{e:02d}", f"    feature: feature_{e // 5}", "    control: control",
                  "    weights: {control: 0.5, treatment: 0.5}", "    mde: 0.02", "    start: 2025-05-15"]
    return "\n".join(lines) + "\n"


def generate_code(root: Path, inferences: int, users: int) -> str:
    return child_code(f"""
import time
from aiso_pipeline import outcomes, warehouse
from aiso_pipeline.config import data_dir
d = data_dir({str(root)!r})
d.reference.mkdir(parents=True, exist_ok=True)
d.experiments.write_text({registry_yaml()!r})
t = time.perf_counter()
with warehouse.connect(d) as con:
    outcomes.ensure_tables(con)
    for stmt in warehouse.statements({GENERATE!r}):
        con.execute(stmt, {{'inferences': {inferences}, 'users': {users}}})
    con.execute('CHECKPOINT')
    rows, tagged, exps = con.execute("SELECT count(*), count(experiment_id), count(DISTINCT experiment_id) "
                                     "FROM marts.joined_outcomes").fetchone()
RESULT = {{'seconds': time.perf_counter() - t, 'rows': rows, 'tagged': tagged, 'experiments': exps}}
""")


def bare_code(root: Path, memory_limit: str, sql: str = BARE) -> str:
    return child_code(f"""
import time, duckdb
from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
d = data_dir({str(root)!r})
con = duckdb.connect(str(d.work_db), config={{'memory_limit': {memory_limit!r}}})
con.execute("SET TimeZone = 'UTC'")
t = time.perf_counter()
for stmt in warehouse.statements({sql!r}):
    con.execute(stmt)
seconds = time.perf_counter() - t
rows = con.execute('SELECT count(*) FROM main.bare_stats').fetchone()[0]
con.execute('DROP TABLE main.bare_stats'); con.close()
RESULT = {{'seconds': seconds, 'rows': rows}}
""")


def pipeline_code(root: Path, memory_limit: str) -> str:
    return child_code(f"""
import time
from aiso_pipeline import experiments, warehouse
from aiso_pipeline.config import data_dir
import dagster  # the asset's process has Dagster loaded: keep the import cost out, the heap size in
d = data_dir({str(root)!r})
with warehouse.connect(d, {memory_limit!r}) as con:
    experiments.ensure_tables(con)
    t = time.perf_counter()
    registry = experiments.load(d.experiments)
    s = experiments.build_experiment_readouts(con, {AS_OF!r}, registry, d.reports)
    md = experiments.summary_markdown(s)
    seconds = time.perf_counter() - t
    rows = con.execute("SELECT count(*) FROM marts.experiment_readouts WHERE dt = ?", [{AS_OF!r}]).fetchone()[0]
decisions = {{}}
for v in s.decisions.values():
    decisions[v] = decisions.get(v, 0) + 1
RESULT = {{'seconds': seconds, 'rows': rows, 'experiments': len(s.experiments), 'decisions': decisions,
           'units': sum(sum(e.units.values()) for e in s.experiments), 'mixed_variant_users': s.mixed_variant_users,
           'markdown_chars': len(md), 'pages': len(s.report_paths)}}
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inferences", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=None, help="distinct users (default inferences / 20)")
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit for both sides")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / ".work" / "experiments")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()
    users = args.users or max(100, args.inferences // 20)
    root = args.workdir
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    try:
        gen = measure(generate_code(root, args.inferences, users))
        print(f"generated {gen['rows']:,} inferences ({gen['tagged']:,} tagged, {gen['experiments']} experiments, "
              f"{users:,} users) in {gen['seconds']:.1f} s")
        bare = measure(bare_code(root, args.memory_limit))
        same = measure(bare_code(root, args.memory_limit, SAME_WORK))
        pipe = measure(pipeline_code(root, args.memory_limit))
        ratio, same_ratio = pipe["seconds"] / bare["seconds"], pipe["seconds"] / same["seconds"]
        print(f"bare per-user + per-variant group-by: {bare['seconds']:7.2f} s   peak RSS {bare['peak_rss_mib']:7.0f} MiB")
        print(f"same work as plain SQL:               {same['seconds']:7.2f} s   peak RSS {same['peak_rss_mib']:7.0f} MiB")
        print(f"experiment readouts (asset logic):    {pipe['seconds']:7.2f} s   peak RSS {pipe['peak_rss_mib']:7.0f} MiB "
              f"({pipe['experiments']} experiments, {pipe['rows']} rows, {pipe['units']:,} units, "
              f"{pipe['mixed_variant_users']:,} mixed-variant users excluded; decisions {pipe['decisions']})")
        print(f"ratio {ratio:.2f}x the bare group-by, {same_ratio:.2f}x the same work as plain SQL")
        print(dumps({"inferences": args.inferences, "users": users, "memory_limit": args.memory_limit,
                     "bare": bare, "same_work": same, "pipeline": pipe, "ratio": ratio, "same_work_ratio": same_ratio}))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
