"""Monitoring marts benchmark: calibration, threshold curve and slices for one day against a bare GROUP BY.

    python benchmarks/monitoring.py [--calls 10000000] [--memory-limit 3GB] [--workdir benchmarks/.work/monitoring]

One day of N calls is generated in SQL (raw.inference_events with confidence and a features JSON holding
language and tier, marts.joined_outcomes with the outcomes): 8 models x 5 features, 1 in 5 calls sampled at 25%.
Then, each in a fresh process with the same DuckDB memory limit:

- bare: the floor for this work in DuckDB: the day's joined outcomes joined to the raw calls for confidence and
  the language, then one GROUP BY per model x feature x confidence bin (weights, confidence and success sums)
  and one per model x feature x language (requests, successes, conversions, cost), written as tables.
- pipeline: aiso_pipeline.monitoring.build for that day with two declared slices (language, tier): calibration and
  its bins, the threshold curve (19 thresholds), slice sums with GROUPING SETS and the model totals, weighted
  p95 latency per slice, the slice tests with Benjamini-Hochberg, all written in one transaction.
- scorecard: then (after marts.cost_daily and marts.outcome_coverage are built, untimed) the scorecard and the
  model cards for that day (monitoring/scorecard.py, monitoring/cards.py), the nightly's last step.

Prints wall time, peak RSS of each process and the ratio.
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
CREATE OR REPLACE TEMP TABLE _calls AS
SELECT 'req-' || i AS request_id, TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_milliseconds(i % 86400000) AS ts,
       'model-' || (i % 8) AS model, 'feature_' || (i // 8 % 5) AS feature,
       CASE WHEN i % 5 = 0 THEN 0.25 ELSE 1.0 END AS sample_rate,
       CASE WHEN i % 37 = 0 THEN NULL ELSE ((i * 7919) % 1000) / 1000.0 END AS confidence,
       ['en', 'de', 'fr', 'es', 'ja', 'pt'][1 + (i * 13) % 6] AS language,
       ['free', 'pro'][1 + (i * 17) % 2] AS tier,
       (i * 31) % 100 < 40 + ((i * 7919) % 1000) / 25 AS success,
       i % 40 = 0 AS converted, i % 23 = 0 AS is_fallback,
       CASE WHEN i % 53 = 0 THEN NULL ELSE 0.0005 + ((i * 31) % 1000) * 2e-5 END AS cost_usd,
       round(200 + (i * 37) % 3000, 1) AS latency_ms
FROM range($calls) AS t(i);

INSERT INTO raw.inference_events BY NAME
SELECT request_id, ts AS "timestamp", model, feature, sample_rate, confidence, is_fallback,
       ('{"language": "' || language || '", "tier": "' || tier || '"}')::JSON AS features,
       DATE '2025-06-01' AS dt, 'bench' AS source_file
FROM _calls;

INSERT INTO marts.joined_outcomes BY NAME
SELECT request_id, DATE '2025-06-01' AS dt, ts AS "timestamp", model, feature, 'ok' AS status, is_fallback,
       latency_ms, cost_usd, 1 / sample_rate AS weight, success AS has_outcome, 0 AS events_attributed, success,
       converted, 0.0 AS revenue, true AS window_closed
FROM _calls;

DROP TABLE _calls;
"""

BARE = """
CREATE OR REPLACE TEMP TABLE _day AS
SELECT j.model, j.feature, j.weight, j.success, j.converted, j.cost_usd, r.confidence,
       json_extract_string(r.features, '$.language') AS language
FROM marts.joined_outcomes AS j
JOIN raw.inference_events AS r ON r.request_id = j.request_id
WHERE j.dt = DATE '2025-06-01' AND r.dt = DATE '2025-06-01';

CREATE OR REPLACE TABLE main.bare_bins AS
SELECT model, feature, least(floor(confidence * 10), 9) AS bin, sum(weight) AS w, sum(weight * confidence) AS c,
       sum(weight * success::INT) AS s
FROM _day WHERE confidence IS NOT NULL
GROUP BY ALL;

CREATE OR REPLACE TABLE main.bare_slices AS
SELECT model, feature, language, sum(weight) AS requests, sum(weight * success::INT) AS successes,
       sum(weight * converted::INT) AS conversions, sum(weight * cost_usd) AS cost
FROM _day
GROUP BY ALL;
"""


def generate_code(root: Path, calls: int) -> str:
    return child_code(f"""
import time
from aiso_pipeline import outcomes, warehouse
from aiso_pipeline.config import data_dir
d = data_dir({str(root)!r})
t = time.perf_counter()
with warehouse.connect(d) as con:
    outcomes.ensure_tables(con)
    warehouse.run_sql(con, {GENERATE!r}, calls={calls})
    con.execute('CHECKPOINT')
RESULT = {{'seconds': time.perf_counter() - t}}
""")


def bare_code(root: Path, memory_limit: str) -> str:
    return child_code(f"""
import time
from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
d = data_dir({str(root)!r})
with warehouse.connect(d, {memory_limit!r}) as con:
    t = time.perf_counter()
    warehouse.run_sql(con, {BARE!r})
    seconds = time.perf_counter() - t
    rows = con.execute('SELECT (SELECT count(*) FROM main.bare_bins) + (SELECT count(*) FROM main.bare_slices)').fetchall()[0][0]
    con.execute('DROP TABLE main.bare_bins'); con.execute('DROP TABLE main.bare_slices')
RESULT = {{'seconds': seconds, 'rows': rows}}
""")


def pipeline_code(root: Path, memory_limit: str) -> str:
    return child_code(f"""
import time
from aiso_pipeline import monitoring, warehouse
from aiso_pipeline.config import data_dir
import dagster  # the asset's process has Dagster loaded: keep the import cost out, the heap size in
d = data_dir({str(root)!r})
config = monitoring.MonitoringConfig(slices=('features.language', 'features.tier'))
with warehouse.connect(d, {memory_limit!r}) as con:
    monitoring.ensure_tables(con)
    t = time.perf_counter()
    s = monitoring.build(con, {DT!r}, config)
    seconds = time.perf_counter() - t
    from aiso_pipeline import outcomes
    from aiso_pipeline.monitoring import cards, scorecard
    outcomes.build_cost_daily(con, {DT!r})
    outcomes.build_outcome_coverage(con, {DT!r})
    t = time.perf_counter()
    scorecard.build(con, {DT!r})
    pages = cards.write_cards(con, {DT!r}, d.reports, {{}})
    scorecard_seconds = time.perf_counter() - t
RESULT = {{'seconds': seconds, 'calibrated': s.calibrated, 'curve_rows': s.curve_rows, 'slices': s.slices,
           'tested': s.tested, 'worse': s.worse, 'scorecard_seconds': scorecard_seconds, 'cards': len(pages)}}
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit for both sides")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / ".work" / "monitoring")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()
    root = args.workdir
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    try:
        gen = measure(generate_code(root, args.calls))
        print(f"generated {args.calls:,} calls in {gen['seconds']:.1f} s")
        bare = measure(bare_code(root, args.memory_limit))
        pipe = measure(pipeline_code(root, args.memory_limit))
        ratio = pipe["seconds"] / bare["seconds"]
        print(f"bare join + two group-bys:         {bare['seconds']:7.2f} s   peak RSS {bare['peak_rss_mib']:7.0f} MiB")
        print(f"monitoring marts (asset logic):    {pipe['seconds']:7.2f} s   peak RSS {pipe['peak_rss_mib']:7.0f} MiB "
              f"({pipe['calibrated']} calibrated, {pipe['curve_rows']} curve rows, {pipe['slices']} slices)")
        print(f"ratio {ratio:.2f}x")
        print(f"scorecard and {pipe['cards']} model card files: {pipe['scorecard_seconds']:.2f} s "
              f"({pipe['scorecard_seconds'] / bare['seconds']:.2f}x the bare join's time)")
        print(dumps({"calls": args.calls, "memory_limit": args.memory_limit, "bare": bare, "pipeline": pipe,
                     "ratio": ratio}))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
