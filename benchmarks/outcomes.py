"""Outcomes benchmark: joined_outcomes + cost_daily for one day against a bare DuckDB join + group-by.

    python benchmarks/outcomes.py   (from the repository root) [--inferences 10000000] [--events 20000000] [--memory-limit 3GB]
                                  [--repeat 1] [--workdir benchmarks/.work/outcomes] [--keep]

Synthetic rows are generated straight into raw.inference_events (all on day D) and raw.product_events (days D and
D+1) of a temporary pipeline database, in SQL: about half the product events name their inference's request_id,
40% carry only the user (last touch), 5% name unknown request_ids and 5% are anonymous; delays run from -1 h to
+25 h, so some fall outside the 24 h window. Then, each in a fresh process with the same DuckDB memory limit:

- bare: the same attribution written as one plain DuckDB query, the fastest obvious way: request_id hash join
  within the window UNION ALL an ASOF last-touch join, GROUP BY request_id, LEFT JOIN to the day's inferences
  (CREATE TABLE with the same columns as marts.joined_outcomes), then one GROUP BY model, feature with weighted
  sums and DuckDB's built-in (unweighted) quantile_disc. No checks, no window_closed, no idempotent swap.
- pipeline: aiso_pipeline.outcomes.build_joined_outcomes + build_cost_daily for day D (the above plus
  window_closed, attribution checks, the partition swap in a transaction, weighted percentiles), with
  build_outcome_coverage timed on the side.
- floor (reference only): request_id matches only, no window, no last touch: what a join + group-by costs
  when half the work is skipped.

Bare and pipeline run alternately (--repeat times; the fastest of each counts) so a busy machine slows both
alike. Prints wall and CPU time, peak RSS (ru_maxrss of each process) and the ratios.
Target: pipeline <= 1.5x bare, peak RSS <= 4 GB.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import child_code, dumps, measure  # noqa: E402

DT = "2025-06-01"

GENERATE = """
INSERT INTO raw.inference_events BY NAME
SELECT 'req-' || i AS request_id,
       TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_milliseconds((i * 7919) % 86400000) AS "timestamp",
       ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet-20241022', 'gemini-1.5-flash', 'acme-7b'][1 + i % 5] AS model,
       ['chat', 'search', 'recommendations'][1 + i % 3] AS feature,
       'u' || ((i * 104729) % $users) AS user_id,
       50 + (i * 31) % 4000 AS input_tokens, 10 + (i * 17) % 1500 AS output_tokens,
       CASE WHEN i % 5 = 4 THEN NULL ELSE ((i * 31) % 4000) * 2.5e-6 + ((i * 17) % 1500) * 1e-5 END AS cost_usd,
       CASE WHEN i % 5 = 4 THEN NULL ELSE 'price_table' END AS cost_source,
       round(200 + (i * 37) % 5000 + 0.5, 1) AS latency_ms,
       CASE WHEN i % 97 = 0 THEN 'error' WHEN i % 101 = 0 THEN 'timeout' ELSE 'ok' END AS status,
       i % 23 = 0 AS is_fallback,
       CASE WHEN i % 3 = 1 THEN 0.25 ELSE 1.0 END AS sample_rate,
       CASE WHEN i % 4 = 0 THEN 'exp1' END AS experiment_id,
       CASE WHEN i % 4 = 0 THEN ['a', 'b'][1 + i % 2] END AS variant,
       DATE '2025-06-01' AS dt, 'bench' AS source_file, i AS line_number
FROM range($inferences) AS t(i);

INSERT INTO raw.product_events BY NAME
WITH e AS (
    SELECT j, (j * 2654435761) % $inferences AS i, j % 20 AS kind,
           to_milliseconds(((j * 40503) % 93600000) - 3600000) AS delay   -- -1 h .. +25 h
    FROM range($events) AS t(j)
),
placed AS (
    SELECT e.*, TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_milliseconds((i * 7919) % 86400000) + delay AS ts
    FROM e
)
SELECT 'msg-' || j AS message_id,
       ['Task Completed', 'Answer Accepted', 'Order Completed', 'Page Viewed'][1 + j % 4] AS event,
       ts AS "timestamp",
       CASE WHEN kind < 19 THEN 'u' || ((i * 104729) % $users) END AS user_id,
       CASE WHEN kind = 19 THEN 'anon-' || j END AS anonymous_id,
       CASE WHEN kind < 10 THEN 'req-' || i WHEN kind = 18 THEN 'ghost-' || j END AS request_id,
       CASE WHEN j % 4 = 2 THEN (j % 200)::DOUBLE END AS revenue,
       greatest(least(ts::DATE, DATE '2025-06-02'), DATE '2025-06-01') AS dt,
       'bench' AS source_file, j AS line_number
FROM placed;
"""

BARE = """
CREATE OR REPLACE TABLE main.bare_joined AS
WITH attributed AS (
    SELECT i.request_id, e."timestamp" AS ts, e.event, e.revenue
    FROM raw.product_events AS e
    JOIN raw.inference_events AS i ON i.request_id = e.request_id
    WHERE e.dt BETWEEN DATE '2025-06-01' AND DATE '2025-06-02' AND i.dt = DATE '2025-06-01'
      AND e."timestamp" BETWEEN i."timestamp" AND i."timestamp" + INTERVAL 24 HOUR
    UNION ALL
    SELECT c.request_id, e."timestamp", e.event, e.revenue
    FROM (SELECT * FROM raw.product_events
          WHERE dt BETWEEN DATE '2025-06-01' AND DATE '2025-06-02' AND request_id IS NULL AND user_id IS NOT NULL) AS e
    ASOF JOIN (SELECT request_id, user_id, "timestamp", dt FROM raw.inference_events
               WHERE dt BETWEEN DATE '2025-06-01' AND DATE '2025-06-02') AS c
      ON e.user_id = c.user_id AND e."timestamp" >= c."timestamp"
    WHERE c.dt = DATE '2025-06-01' AND e."timestamp" <= c."timestamp" + INTERVAL 24 HOUR
),
per_request AS (
    SELECT request_id, count(*) AS events,
           bool_or(event IN ('Task Completed', 'Answer Accepted', 'Order Completed')) AS success,
           bool_or(event = 'Order Completed') AS converted,
           sum(revenue) FILTER (WHERE event = 'Order Completed') AS revenue, min(ts) AS first_outcome_at
    FROM attributed
    GROUP BY request_id
)
SELECT i.request_id, i.dt, i."timestamp", i.model, i.feature, i.user_id, i.experiment_id, i.variant, i.status,
       i.is_fallback, i.latency_ms, i.input_tokens, i.output_tokens, i.cost_usd, 1.0 / i.sample_rate AS weight,
       p.request_id IS NOT NULL AS has_outcome, coalesce(p.events, 0) AS events_attributed,
       coalesce(p.success, false) AS success, coalesce(p.converted, false) AS converted,
       coalesce(p.revenue, 0) AS revenue, p.first_outcome_at, false AS window_closed
FROM raw.inference_events AS i
LEFT JOIN per_request AS p ON p.request_id = i.request_id
WHERE i.dt = DATE '2025-06-01';

CREATE OR REPLACE TABLE main.bare_daily AS
SELECT model, feature, sum(weight) AS requests, sum(weight * input_tokens) AS input_tokens,
       sum(weight * output_tokens) AS output_tokens, sum(weight * cost_usd) AS cost_usd,
       sum(weight) FILTER (WHERE success) AS successes, sum(weight) FILTER (WHERE converted) AS conversions,
       sum(weight) FILTER (WHERE status <> 'ok') / sum(weight) AS error_rate,
       sum(weight) FILTER (WHERE is_fallback) / sum(weight) AS fallback_rate,
       quantile_disc(latency_ms, [0.5, 0.95, 0.99]) AS latency   -- unweighted: DuckDB has no weighted quantile
FROM main.bare_joined
GROUP BY model, feature;
"""

# The floor below any version of the work: direct request_id matches only, no window, no last touch.
FLOOR = """
CREATE OR REPLACE TABLE main.floor_joined AS
WITH per_request AS (
    SELECT request_id, count(*) AS events, bool_or(event IN ('Task Completed', 'Answer Accepted', 'Order Completed'))
               AS success, bool_or(event = 'Order Completed') AS converted,
           sum(revenue) FILTER (WHERE event = 'Order Completed') AS revenue
    FROM raw.product_events
    WHERE dt BETWEEN DATE '2025-06-01' AND DATE '2025-06-02'
    GROUP BY request_id
)
SELECT i.request_id, i.dt, i."timestamp", i.model, i.feature, i.user_id, i.experiment_id, i.variant, i.status,
       i.is_fallback, i.latency_ms, i.input_tokens, i.output_tokens, i.cost_usd, 1.0 / i.sample_rate AS weight,
       coalesce(p.events, 0) AS events, coalesce(p.success, false) AS success,
       coalesce(p.converted, false) AS converted, coalesce(p.revenue, 0) AS revenue
FROM raw.inference_events AS i
LEFT JOIN per_request AS p ON p.request_id = i.request_id
WHERE i.dt = DATE '2025-06-01';

CREATE OR REPLACE TABLE main.floor_daily AS
SELECT model, feature, sum(weight) AS requests, sum(weight * cost_usd) AS cost_usd,
       sum(weight) FILTER (WHERE success) AS successes, quantile_disc(latency_ms, [0.5, 0.95, 0.99]) AS latency
FROM main.floor_joined
GROUP BY model, feature;
"""


def generate_code(root: Path, inferences: int, events: int) -> str:
    return child_code(f"""
import time
from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
d = data_dir({str(root)!r})
t = time.perf_counter()
with warehouse.connect(d) as con:
    for stmt in warehouse.statements({GENERATE!r}):
        con.execute(stmt, {{k: v for k, v in {{'inferences': {inferences}, 'events': {events},
                                            'users': {max(1, inferences // 5)}}}.items() if '$' + k in stmt}})
    con.execute('CHECKPOINT')
    counts = con.execute("SELECT (SELECT count(*) FROM raw.inference_events), "
                         "(SELECT count(*) FROM raw.product_events)").fetchone()
RESULT = {{'seconds': time.perf_counter() - t, 'inferences': counts[0], 'product_events': counts[1]}}
""")


def sql_code(root: Path, memory_limit: str, script: str) -> str:
    """Run a SQL script against the database in a fresh process; time it, then drop what it created."""
    return child_code(f"""
import re, resource, time, duckdb
from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
d = data_dir({str(root)!r})
con = duckdb.connect(str(d.work_db), config={{'memory_limit': {memory_limit!r}}})
con.execute("SET TimeZone = 'UTC'")
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
t, c = time.perf_counter(), cpu()
for stmt in warehouse.statements({script!r}):
    con.execute(stmt)
seconds, cpu_s = time.perf_counter() - t, cpu() - c
for table in re.findall(r"TABLE (main\\.\\w+)", {script!r}):
    con.execute(f"DROP TABLE IF EXISTS {{table}}")
con.execute("CHECKPOINT"); con.close()
RESULT = {{'seconds': seconds, 'cpu_s': cpu_s}}
""")


def pipeline_code(root: Path, memory_limit: str) -> str:
    return child_code(f"""
import resource, time
from aiso_pipeline import outcomes, warehouse
from aiso_pipeline.config import data_dir
d = data_dir({str(root)!r})
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
with warehouse.connect(d, {memory_limit!r}) as con:
    outcomes.ensure_tables(con)
    t, c = time.perf_counter(), cpu()
    s = outcomes.build_joined_outcomes(con, {DT!r})
    t_joined = time.perf_counter() - t
    t2 = time.perf_counter()
    outcomes.build_cost_daily(con, {DT!r})
    t_cost = time.perf_counter() - t2
    seconds, cpu_s = time.perf_counter() - t, cpu() - c
    t3 = time.perf_counter()
    outcomes.build_outcome_coverage(con, {DT!r})
    t_coverage = time.perf_counter() - t3
    con.execute("DELETE FROM marts.joined_outcomes; DELETE FROM marts.cost_daily; DELETE FROM marts.outcome_coverage")
    con.execute("CHECKPOINT")
RESULT = {{'seconds': seconds, 'cpu_s': cpu_s, 'joined_outcomes_s': t_joined, 'cost_daily_s': t_cost,
           'outcome_coverage_s': t_coverage, 'rows': s.inferences, 'join_rate': s.join_rate,
           'unattributed_events': s.unattributed_events, 'window_closed': s.window_closed}}
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inferences", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=None, help="product events (default 2x inferences)")
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit for both sides")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / ".work" / "outcomes")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved bare/pipeline runs; the best counts")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()
    events = args.events or 2 * args.inferences
    root = args.workdir
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    try:
        gen = measure(generate_code(root, args.inferences, events))
        print(f"generated {gen['inferences']:,} inferences and {gen['product_events']:,} product events "
              f"in {gen['seconds']:.1f} s")
        runs = {"bare": [], "pipeline": [], "floor": []}
        for _ in range(args.repeat):  # interleaved, so a busy machine slows both sides alike
            runs["bare"].append(measure(sql_code(root, args.memory_limit, BARE)))
            runs["pipeline"].append(measure(pipeline_code(root, args.memory_limit)))
        runs["floor"].append(measure(sql_code(root, args.memory_limit, FLOOR)))
        best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
        bare, pipe, floor = best["bare"], best["pipeline"], best["floor"]
        ratio, cpu_ratio = pipe["seconds"] / bare["seconds"], pipe["cpu_s"] / bare["cpu_s"]
        line = "{:<44}{:7.2f} s wall {:7.2f} s cpu   peak RSS {:6.0f} MiB"
        print(line.format("bare join + group-by (same attribution):", bare["seconds"], bare["cpu_s"],
                          bare["peak_rss_mib"]))
        print(line.format("joined_outcomes + cost_daily:", pipe["seconds"], pipe["cpu_s"], pipe["peak_rss_mib"])
              + f"  (joined {pipe['joined_outcomes_s']:.2f} s, cost {pipe['cost_daily_s']:.2f} s; "
                f"coverage {pipe['outcome_coverage_s']:.2f} s on the side)")
        print(line.format("floor: request_id join only (reference):", floor["seconds"], floor["cpu_s"],
                          floor["peak_rss_mib"]))
        print(f"ratio {ratio:.2f}x wall, {cpu_ratio:.2f}x cpu (target <= 1.5x); peak RSS target <= 4096 MiB; "
              f"join rate {pipe['join_rate']:.3f}, unattributed product events of the day {pipe['unattributed_events']:,}")
        print(dumps({"inferences": args.inferences, "events": events, "memory_limit": args.memory_limit,
                     "runs": runs, "ratio": ratio, "cpu_ratio": cpu_ratio}))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
