"""End-to-end nightly benchmark: the whole nightly run against the bare-DuckDB floor and the pandas + Evidently path,
and how a run's cost moves with history.

    python benchmarks/nightly.py [--inferences 10000000] [--events 20000000] [--history-days 7]
                                 [--scale-inferences 1000000] [--scale-days 30] [--parts full scaling pandas]
                                 [--workdir benchmarks/.work/nightly]

full     One day D of --inferences model calls and --events product events as JSON lines (canonical keys, a
         `features` object, experiment assignments; half the events name their request_id, 40% carry only the user,
         5% name unknown ids, 5% are anonymous), on top of --history-days days of the same volume written straight
         into the warehouse (raw tables in SQL, then each history day's joined outcomes and cost rollups by the
         pipeline's own functions, then a publish so the timed one is a steady-state publish). Then, each in a
         fresh process:
         - floor: the minimal DuckDB SQL doing the same ingest, join and rollups: read_json of the day's files into
           tables, price by model, the same attribution (request_id within 24 h, else ASOF last touch), one GROUP BY
           model, feature. No validation, quarantine, dedup, drift, experiments, anomalies or publishing.
         - nightly: `aiso run --date D` (runner.run_days): ingest both streams, GX validation, outcomes (and the
           refresh of D-1, whose outcome window is still open), cost, drift with Evidently HTML, experiments,
           anomalies, and the atomic publish of warehouse.duckdb.
scaling  --scale-days consecutive days at --scale-inferences calls (2 events each), each day generated then run
         nightly in a fresh process, as the schedule would: prints day 1, day 8 and the last day.
pandas   On day 8 of the scaling run (7 days of reference, as the pipeline's drift uses): what a user would write
         instead: pandas read_json, drop_duplicates, merges and merge_asof for attribution, groupby rollups,
         Evidently's DataDriftPreset per model against the 7 reference days, scipy t-test per experiment. Timed in a
         fresh process against the pipeline's nightly for the same day. (It does not run at the full size: read_json
         of 10M + 20M lines and Evidently on 70M reference rows need far more than this machine's memory.)

Prints wall seconds, peak RSS (the process's VmHWM) and ratios. Targets: nightly <= 2x floor; >= 20x faster than
pandas; peak RSS <= 4 GB; last day <= 1.2x day 1.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import child_code, measure  # noqa: E402

DAY = dt.date(2025, 6, 15)  # day D of the full run; history is the days before it
SCALE_START = dt.date(2025, 5, 1)
FILE_ROWS = 1_000_000
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-1.5-flash", "acme-7b"]
PRICES = """model_pattern,valid_from,input_per_mtok,output_per_mtok,cached_input_per_mtok
gpt-4o,2024-10-01,2.50,10.00,1.25
gpt-4o-mini,2024-07-18,0.15,0.60,0.075
claude-3-5-sonnet(-\\d{8}|-latest)?,2024-06-20,3.00,15.00,0.30
gemini-1\\.5-flash(-\\d{3})?,2024-05-14,0.075,0.30,
acme-7b,2024-01-01,0.20,0.20,
"""

# One day of inferences ($tag makes ids unique per day). Users: $users, ~10 calls each; feature chat runs an
# experiment split by user; models rotate independently of features.
INFERENCES = """
SELECT 'r' || $tag || '-' || i AS request_id,
       $day::TIMESTAMPTZ + to_milliseconds((i * 7919) % 86400000) AS ts,
       ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet-20241022', 'gemini-1.5-flash', 'acme-7b'][1 + i % 5] AS model,
       'openai' AS provider,
       ['chat', 'search', 'recommendations'][1 + (i // 5) % 3] AS feature,
       'u' || ((i * 104729) % $users) AS user_id,
       's' || $tag || '-' || (i // 7) AS session_id,
       50 + (i * 31) % 4000 AS input_tokens, 10 + (i * 17) % 1500 AS output_tokens,
       (i * 13) % 50 AS cached_input_tokens,
       round(200 + (i * 37) % 5000 + 0.5, 1) AS latency_ms,
       CASE WHEN i % 97 = 0 THEN 'error' ELSE 'ok' END AS status,
       i % 23 = 0 AS is_fallback, round(((i * 11) % 1000) / 1000.0, 3) AS confidence,
       CASE WHEN i % 3 = 1 THEN 0.25 ELSE 1.0 END AS sample_rate,
       CASE WHEN (i // 5) % 3 = 0 THEN 'chat_model_test' END AS experiment_id,
       CASE WHEN (i // 5) % 3 = 0 THEN ['control', 'treatment'][1 + ((i * 104729) % $users) % 2] END AS variant,
       {'prompt_chars': (i * 53) % 8000, 'language': ['en', 'de', 'fr'][1 + i % 3],
        'user_tier': ['free', 'pro'][1 + i % 2]} AS features
FROM range($lo, $hi) AS t(i)
"""

# Product events following that day's inferences, within the same day (delays up to 6 h, capped at midnight).
EVENTS = """
WITH e AS (
    SELECT j, (j * 2654435761) % $n AS i, j % 20 AS kind, to_milliseconds((j * 40503) % 21600000) AS delay
    FROM range($lo, $hi) AS t(j)
)
SELECT 'm' || $tag || '-' || j AS message_id,
       ['Task Completed', 'Answer Accepted', 'Order Completed', 'Page Viewed'][1 + j % 4] AS event,
       least($day::TIMESTAMPTZ + to_milliseconds((i * 7919) % 86400000) + delay,
             $day::TIMESTAMPTZ + INTERVAL 86399999 MILLISECOND) AS ts,
       CASE WHEN kind < 19 THEN 'u' || ((i * 104729) % $users) END AS user_id,
       CASE WHEN kind = 19 THEN 'anon-' || j END AS anonymous_id,
       CASE WHEN kind < 10 THEN 'r' || $tag || '-' || i WHEN kind = 18 THEN 'ghost-' || j END AS request_id,
       CASE WHEN j % 4 = 2 THEN {'revenue': (j % 200)::DOUBLE} END AS properties
FROM e
"""

ISO = "strftime(ts, '%Y-%m-%dT%H:%M:%S.%gZ') AS \"timestamp\""

# History straight into the warehouse, typed as ingestion would have left it.
HISTORY = f"""
INSERT INTO raw.inference_events BY NAME
SELECT * EXCLUDE (ts, features), ts AS "timestamp", 'chat' AS operation, to_json(features) AS features,
       ((input_tokens - cached_input_tokens) * 2.5 + cached_input_tokens * 1.25 + output_tokens * 10) / 1e6 AS cost_usd,
       'price_table' AS cost_source, $day::DATE AS dt, 'history' AS source_file, hash(request_id) AS key_hash
FROM ({INFERENCES});
INSERT INTO raw.product_events BY NAME
SELECT * EXCLUDE (ts, properties), ts AS "timestamp", to_json(properties) AS properties,
       properties.revenue AS revenue, $day::DATE AS dt, 'history' AS source_file, hash(message_id) AS key_hash
FROM ({EVENTS.replace('$lo', '0').replace('$hi', '$m')});
"""

# The attribution the joined rows use (request_id within 24 h, else ASOF last touch by user), per request.
ATTRIBUTION = """WITH attributed AS (
    SELECT i.request_id, e.event, e.revenue
    FROM ev AS e JOIN inf AS i ON i.request_id = e.request_id
    WHERE e."timestamp" BETWEEN i."timestamp" AND i."timestamp" + INTERVAL 24 HOUR
    UNION ALL
    SELECT c.request_id, e.event, e.revenue
    FROM (SELECT * FROM ev WHERE request_id IS NULL AND user_id IS NOT NULL) AS e
    ASOF JOIN (SELECT request_id, user_id, "timestamp" FROM inf) AS c
      ON e.user_id = c.user_id AND e."timestamp" >= c."timestamp"
    WHERE e."timestamp" <= c."timestamp" + INTERVAL 24 HOUR
), per_request AS (
    SELECT request_id, bool_or(event IN ('Task Completed', 'Answer Accepted', 'Order Completed')) AS success,
           bool_or(event = 'Order Completed') AS converted, sum(revenue) FILTER (WHERE event = 'Order Completed') AS revenue
    FROM attributed GROUP BY request_id
)
"""

# What both floors share: the attribution (request_id within 24 h, else ASOF last touch by user), the joined rows
# and the rollup per model and feature.
JOIN_AND_ROLLUP = """CREATE TABLE joined AS
{ATTRIBUTION}SELECT i.request_id, i."timestamp", i.model, i.feature, i.user_id, i.experiment_id, i.variant, i.status, i.is_fallback,
       i.latency_ms, i.input_tokens, i.output_tokens, i.cost_usd, 1.0 / i.sample_rate AS weight,
       p.request_id IS NOT NULL AS has_outcome, coalesce(p.success, false) AS success,
       coalesce(p.converted, false) AS converted, coalesce(p.revenue, 0) AS revenue
FROM inf AS i LEFT JOIN per_request AS p USING (request_id);
CREATE TABLE daily AS
SELECT model, feature, sum(weight) AS requests, sum(weight * input_tokens) AS input_tokens,
       sum(weight * output_tokens) AS output_tokens, sum(weight * cost_usd) AS cost_usd,
       sum(weight) FILTER (WHERE success) AS successes, sum(weight) FILTER (WHERE converted) AS conversions,
       sum(weight) FILTER (WHERE status <> 'ok') / sum(weight) AS error_rate,
       sum(weight) FILTER (WHERE is_fallback) / sum(weight) AS fallback_rate,
       sum(weight) FILTER (WHERE has_outcome) / sum(weight) AS join_rate,
       quantile_disc(latency_ms, [0.5, 0.95, 0.99]) AS latency
FROM joined GROUP BY model, feature;
""".replace("{ATTRIBUTION}", ATTRIBUTION)

FLOOR = """
CREATE TABLE prices AS SELECT * FROM (VALUES ('gpt-4o', 2.5, 10.0, 1.25), ('gpt-4o-mini', 0.15, 0.6, 0.075),
    ('claude-3-5-sonnet-20241022', 3.0, 15.0, 0.3), ('gemini-1.5-flash', 0.075, 0.3, 0.075), ('acme-7b', 0.2, 0.2, 0.2))
    AS p(model, input_per_mtok, output_per_mtok, cached_input_per_mtok);
CREATE TABLE inf AS
SELECT i.*, ((i.input_tokens - i.cached_input_tokens) * p.input_per_mtok + i.cached_input_tokens * p.cached_input_per_mtok
             + i.output_tokens * p.output_per_mtok) / 1e6 AS cost_usd
FROM read_json($inference_glob) AS i LEFT JOIN prices AS p USING (model);
CREATE TABLE ev AS SELECT *, properties.revenue AS revenue FROM read_json($product_glob);
{JOIN_AND_ROLLUP}
""".replace("{JOIN_AND_ROLLUP}", JOIN_AND_ROLLUP)

# The same work as the nightly, written minimally (issue 20): what FLOOR does, from a typed parse with the pipeline's
# range checks (one read per stream with an explicit schema, a reason per bad row, bad rows set aside), dedup of
# the day against all loaded history (the history's key hashes, as the pipeline's), validation aggregates of both
# streams, drift histograms and category counts of 8 columns per model (the reference side is cached by the
# pipeline, so only the day's are computed here), per-user and per-variant experiment sums with a 7-day pre-period
# per user, and the publish's Parquet writes of the day's raw, product and joined rows. $warehouse is the
# pipeline's working database, attached read-only (history).
SAME_WORK = """
ATTACH $warehouse AS h (READ_ONLY);
CREATE TABLE prices AS SELECT * FROM (VALUES ('gpt-4o', 2.5, 10.0, 1.25), ('gpt-4o-mini', 0.15, 0.6, 0.075),
    ('claude-3-5-sonnet-20241022', 3.0, 15.0, 0.3), ('gemini-1.5-flash', 0.075, 0.3, 0.075), ('acme-7b', 0.2, 0.2, 0.2))
    AS p(model, input_per_mtok, output_per_mtok, cached_input_per_mtok);
CREATE TABLE parsed AS
SELECT *, CASE WHEN request_id IS NULL THEN 'missing: request_id' WHEN "timestamp" IS NULL THEN 'missing: timestamp'
               WHEN model IS NULL THEN 'missing: model'
               WHEN input_tokens < 0 OR output_tokens < 0 OR cached_input_tokens < 0 THEN 'out_of_range: tokens'
               WHEN cached_input_tokens > input_tokens THEN 'out_of_range: cached_input_tokens'
               WHEN confidence NOT BETWEEN 0 AND 1 THEN 'out_of_range: confidence'
               WHEN sample_rate <= 0 OR sample_rate > 1 THEN 'out_of_range: sample_rate'
               WHEN latency_ms < 0 THEN 'out_of_range: latency_ms'
               WHEN status NOT IN ('ok', 'error', 'timeout') THEN 'out_of_range: status' END AS reason
FROM read_json($inference_glob, format = 'newline_delimited', columns = {
    'request_id': 'VARCHAR', 'timestamp': 'TIMESTAMPTZ', 'model': 'VARCHAR', 'provider': 'VARCHAR',
    'feature': 'VARCHAR', 'user_id': 'VARCHAR', 'session_id': 'VARCHAR', 'input_tokens': 'BIGINT',
    'output_tokens': 'BIGINT', 'cached_input_tokens': 'BIGINT', 'latency_ms': 'DOUBLE', 'status': 'VARCHAR',
    'is_fallback': 'BOOLEAN', 'confidence': 'DOUBLE', 'sample_rate': 'DOUBLE', 'experiment_id': 'VARCHAR',
    'variant': 'VARCHAR', 'features': 'JSON'});
CREATE TABLE inf AS
SELECT i.* EXCLUDE (reason), hash(i.request_id) AS key_hash,
       ((i.input_tokens - i.cached_input_tokens) * p.input_per_mtok + i.cached_input_tokens * p.cached_input_per_mtok
        + i.output_tokens * p.output_per_mtok) / 1e6 AS cost_usd
FROM parsed AS i LEFT JOIN prices AS p USING (model)
WHERE i.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM h.raw.inference_events AS x WHERE x.key_hash = hash(i.request_id)
                  AND x.request_id = i.request_id)
QUALIFY row_number() OVER (PARTITION BY i.request_id ORDER BY i."timestamp") = 1;
CREATE TABLE quarantine AS SELECT request_id, reason FROM parsed WHERE reason IS NOT NULL;
CREATE TABLE ev_parsed AS
SELECT *, properties.revenue AS revenue,
       CASE WHEN message_id IS NULL THEN 'missing: message_id' WHEN event IS NULL THEN 'missing: event'
            WHEN "timestamp" IS NULL THEN 'missing: timestamp'
            WHEN user_id IS NULL AND anonymous_id IS NULL THEN 'missing: user_id' END AS reason
FROM read_json($product_glob, format = 'newline_delimited', columns = {
    'message_id': 'VARCHAR', 'event': 'VARCHAR', 'timestamp': 'TIMESTAMPTZ', 'user_id': 'VARCHAR',
    'anonymous_id': 'VARCHAR', 'request_id': 'VARCHAR', 'properties': 'STRUCT(revenue DOUBLE)'});
CREATE TABLE ev AS
SELECT e.* EXCLUDE (reason) FROM ev_parsed AS e
WHERE e.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM h.raw.product_events AS x WHERE x.key_hash = hash(e.message_id)
                  AND x.message_id = e.message_id)
QUALIFY row_number() OVER (PARTITION BY e.message_id ORDER BY e."timestamp") = 1;
CREATE TABLE validation AS
SELECT count(*) AS n, count(DISTINCT request_id) AS ids, count(*) FILTER (WHERE user_id IS NULL) AS no_user,
       count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced, min("timestamp"), max("timestamp"),
       avg(latency_ms), max(input_tokens), count(DISTINCT model), count(*) FILTER (WHERE experiment_id IS NOT NULL
       AND variant IS NULL) AS no_variant
FROM inf;
CREATE TABLE validation_ev AS
SELECT count(*) AS n, count(DISTINCT message_id) AS ids, count(*) FILTER (WHERE request_id IS NOT NULL) AS with_id,
       count(*) FILTER (WHERE request_id IS NOT NULL AND request_id NOT IN (SELECT request_id FROM inf)) AS unknown,
       min("timestamp"), max("timestamp"), count(DISTINCT event)
FROM ev;
{JOIN_AND_ROLLUP}
CREATE TABLE drift_numeric AS
WITH v AS (
    UNPIVOT (SELECT model, latency_ms, input_tokens::DOUBLE AS input_tokens, output_tokens::DOUBLE AS output_tokens,
                    cached_input_tokens::DOUBLE AS cached_input_tokens, confidence, cost_usd, sample_rate FROM inf)
    ON latency_ms, input_tokens, output_tokens, cached_input_tokens, confidence, cost_usd, sample_rate
    INTO NAME column_name VALUE x
), r AS (SELECT model, column_name, min(x) AS lo, max(x) AS hi FROM v GROUP BY ALL)
SELECT v.model, v.column_name, least(floor((x - lo) / nullif(hi - lo, 0) * 100), 99) AS bin, count(*) AS n
FROM v JOIN r USING (model, column_name) GROUP BY ALL;
CREATE TABLE drift_categorical AS
UNPIVOT (SELECT model, status, is_fallback::VARCHAR AS is_fallback, provider, feature, experiment_id, variant,
                json_extract_string(features, '$.language') AS language, json_extract_string(features, '$.user_tier') AS tier
         FROM inf)
ON status, is_fallback, provider, feature, experiment_id, variant, language, tier INTO NAME column_name VALUE value;
CREATE TABLE drift_counts AS SELECT model, column_name, value, count(*) AS n FROM drift_categorical GROUP BY ALL;
CREATE TABLE users AS
SELECT experiment_id, variant, user_id, max(converted::INT) AS converted, sum(revenue) AS revenue, sum(cost_usd) AS cost,
       count(*) AS calls
FROM joined WHERE experiment_id IS NOT NULL GROUP BY ALL;
CREATE TABLE pre AS
SELECT user_id, max(converted::INT) AS converted_pre, sum(revenue) AS revenue_pre
FROM h.marts.joined_outcomes WHERE dt BETWEEN $day::DATE - 7 AND $day::DATE - 1 AND user_id IN (SELECT user_id FROM users)
GROUP BY user_id;
CREATE TABLE variant_sums AS
SELECT experiment_id, variant, count(*) AS n, sum(converted) AS conv, sum(converted * converted) AS conv2,
       sum(revenue) AS rev, sum(revenue * revenue) AS rev2, sum(cost) AS cost, sum(cost * cost) AS cost2,
       sum(coalesce(converted_pre, 0)) AS pre, sum(coalesce(converted_pre, 0) * converted) AS pre_x,
       sum(coalesce(revenue_pre, 0) * revenue) AS rev_pre_x
FROM users LEFT JOIN pre USING (user_id) GROUP BY ALL;
COPY (SELECT * FROM inf) TO $out_inference (FORMAT parquet, COMPRESSION zstd);
COPY (SELECT * FROM ev) TO $out_product (FORMAT parquet, COMPRESSION zstd);
COPY (SELECT * FROM joined) TO $out_joined (FORMAT parquet, COMPRESSION zstd);
""".replace("{JOIN_AND_ROLLUP}", JOIN_AND_ROLLUP)


def params(day: dt.date, n: int, m: int) -> dict:
    return {"day": day.isoformat(), "tag": day.strftime("%m%d"), "users": max(n // 10, 1), "n": n, "m": m}


def write_landing(root: Path, day: dt.date, n: int, m: int) -> None:
    """One day's landing files: inference and product JSON lines, at most FILE_ROWS rows a file."""
    import duckdb

    con = duckdb.connect(config={"threads": 2})
    p = params(day, n, m)
    for stream, total, select in (("inference", n, INFERENCES), ("product", m, EVENTS)):
        folder = root / "landing" / stream / f"dt={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        for k, lo in enumerate(range(0, total, FILE_ROWS)):
            query = f"SELECT * EXCLUDE (ts), {ISO} FROM ({select})"
            used = {key: v for key, v in {**p, "lo": lo, "hi": min(total, lo + FILE_ROWS)}.items() if f"${key}" in query}
            con.execute(f"COPY ({query}) TO '{folder / f'part-{k:03d}.jsonl'}' (FORMAT json)", used)
    con.close()


def prepare_data_dir(root: Path, drift_reports: str = "significant") -> None:
    shutil.rmtree(root, ignore_errors=True)
    (root / "reference").mkdir(parents=True)
    (root / "reference" / "model_prices.csv").write_text(PRICES)
    (root / "reference" / "monitoring.yaml").write_text(f"drift_reports: {drift_reports}\n")


def history_code(root: Path, days: list[dt.date], n: int, m: int) -> str:
    return child_code(f"""
from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
from aiso_pipeline.outcomes import build_cost_daily, build_joined_outcomes, build_outcome_coverage
from aiso_pipeline.drift import compute_drift
import datetime
d = data_dir({str(root)!r})
sql = {HISTORY!r}
with warehouse.connect(d) as con:
    for day in {[x.isoformat() for x in days]!r}:
        p = {{'day': day, 'tag': day[5:7] + day[8:10], 'users': max({n} // 10, 1), 'n': {n}, 'm': {m}, 'lo': 0, 'hi': {n}}}
        for stmt in warehouse.statements(sql):
            con.execute(stmt, {{k: v for k, v in p.items() if '$' + k in stmt}})
    # Outcomes once every history day is loaded, as the nightly runs would have left them: days whose window has
    # closed are final, the last two (whose next days' product events had not landed) are still open.
    for day in {[x.isoformat() for x in days]!r}:
        build_joined_outcomes(con, day)
        build_outcome_coverage(con, day)
        build_cost_daily(con, day)
    # drift of the last history day: caches its window's feature shapes, as the nightly runs would have
    compute_drift(con, datetime.date.fromisoformat({days[-1].isoformat()!r}))
    con.execute("CHECKPOINT")
warehouse.publish(d)  # history is published: the timed run's publish writes only what it changes
""")


def floor_code(root: Path, day: dt.date) -> str:
    return child_code(f"""
import time, duckdb
from aiso_pipeline import warehouse
con = duckdb.connect({str(root / 'floor.duckdb')!r})
con.execute("SET TimeZone = 'UTC'")
start = time.perf_counter()
globs = {{'inference_glob': {str(root / 'landing' / 'inference' / f'dt={day}' / '*.jsonl')!r},
          'product_glob': {str(root / 'landing' / 'product' / f'dt={day}' / '*.jsonl')!r}}}
for stmt in warehouse.statements({FLOOR!r}):
    con.execute(stmt, {{k: v for k, v in globs.items() if '$' + k in stmt}})
RESULT = {{'seconds': time.perf_counter() - start, 'rows': con.execute('SELECT count(*) FROM joined').fetchone()[0]}}
""")


def same_work_code(root: Path, day: dt.date) -> str:
    out = root / "same_work"
    return child_code(f"""
import time, duckdb, shutil, pathlib
from aiso_pipeline import warehouse
out = pathlib.Path({str(out)!r}); shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
con = duckdb.connect({str(root / 'same_work.duckdb')!r})
con.execute("SET TimeZone = 'UTC'")
con.execute("SET memory_limit = '3GB'")
start = time.perf_counter()
p = {{'inference_glob': {str(root / 'landing' / 'inference' / f'dt={day}' / '*.jsonl')!r},
      'product_glob': {str(root / 'landing' / 'product' / f'dt={day}' / '*.jsonl')!r},
      'warehouse': {str(root / '.work' / 'pipeline.duckdb')!r}, 'day': {day.isoformat()!r},
      'out_inference': str(out / 'inference.parquet'), 'out_product': str(out / 'product.parquet'),
      'out_joined': str(out / 'joined.parquet')}}
for stmt in warehouse.statements({SAME_WORK!r}):
    con.execute(stmt, {{k: v for k, v in p.items() if '$' + k in stmt}})
RESULT = {{'seconds': time.perf_counter() - start, 'rows': con.execute('SELECT count(*) FROM joined').fetchone()[0]}}
con.close()
""")


def nightly_code(root: Path, day: dt.date, steps: bool = False) -> str:
    return child_code(f"""
import time
from aiso_pipeline.config import data_dir
from aiso_pipeline.runner import dagster_instance, run_days
d = data_dir({str(root)!r})
hwm = lambda: max(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024
peaks, walls = [], []  # per run of the night and the publish: peak RSS after it (which step set it), its wall time
def note(line):
    step = line.split(': ok')[0].strip()
    peaks.append((step, round(hwm())))
    walls.append((step, float(line.split('(', 1)[1].split(' s')[0])))
start = time.perf_counter()
run_days(d, [{day.isoformat()!r}], progress=note)
RESULT = {{'seconds': time.perf_counter() - start, 'peak_after_mib': peaks, 'wall_s_of': walls}}
if {steps!r}:
    instance = dagster_instance(d)
    for run in instance.get_runs(limit=50):
        for s in instance.get_run_step_stats(run.run_id):
            key = f"{{run.job_name}}/{{s.step_key}}"
            RESULT[key] = round(RESULT.get(key, 0) + s.end_time - s.start_time, 1)
        RESULT[f"{{run.job_name}} runs"] = RESULT.get(f"{{run.job_name}} runs", 0) + 1
""")


def pandas_code(root: Path, day: dt.date, reference_days: list[dt.date]) -> str:
    files = lambda stream, d: sorted(str(p) for p in (root / "landing" / stream / f"dt={d}").glob("*.jsonl"))  # noqa: E731
    return child_code(f"""
import time, warnings
warnings.filterwarnings('ignore')
start = time.perf_counter()
import numpy as np, pandas as pd
from scipy import stats
from evidently import Report
from evidently.presets import DataDriftPreset

def read(paths):
    return pd.concat([pd.read_json(p, lines=True) for p in paths], ignore_index=True)

inf = read({files('inference', day)!r}).drop_duplicates('request_id')
ev = read({files('product', day)!r}).drop_duplicates('message_id')
inf['timestamp'] = pd.to_datetime(inf['timestamp'], utc=True, format='ISO8601')
ev['timestamp'] = pd.to_datetime(ev['timestamp'], utc=True, format='ISO8601')
prices = pd.read_csv({str(root / 'reference' / 'model_prices.csv')!r})
prices['cached_input_per_mtok'] = prices['cached_input_per_mtok'].fillna(prices['input_per_mtok'])
inf = inf.merge(prices.rename(columns={{'model_pattern': 'model'}}), on='model', how='left')
inf['cost_usd'] = ((inf.input_tokens - inf.cached_input_tokens) * inf.input_per_mtok
                   + inf.cached_input_tokens * inf.cached_input_per_mtok + inf.output_tokens * inf.output_per_mtok) / 1e6
ev['revenue'] = ev['properties'].map(lambda p: p.get('revenue') if isinstance(p, dict) else None)
window = pd.Timedelta(hours=24)
direct = ev[ev.request_id.notna()].merge(inf[['request_id', 'timestamp']], on='request_id', suffixes=('', '_inf'))
direct = direct[(direct.timestamp >= direct.timestamp_inf) & (direct.timestamp <= direct.timestamp_inf + window)]
touch = pd.merge_asof(ev[ev.request_id.isna() & ev.user_id.notna()].drop(columns='request_id').sort_values('timestamp'),
                      inf[['request_id', 'user_id', 'timestamp']].rename(columns={{'timestamp': 'ts_inf'}}).sort_values('ts_inf'),
                      left_on='timestamp', right_on='ts_inf', by='user_id', direction='backward', tolerance=window)
att = pd.concat([direct[['request_id', 'event', 'revenue']], touch.dropna(subset=['request_id'])[['request_id', 'event', 'revenue']]])
att['success'] = att.event.isin(['Task Completed', 'Answer Accepted', 'Order Completed'])
att['converted'] = att.event == 'Order Completed'
att['revenue'] = att.revenue.where(att.converted, 0.0)
per = att.groupby('request_id').agg(success=('success', 'any'), converted=('converted', 'any'), revenue=('revenue', 'sum'))
j = inf.merge(per, on='request_id', how='left')
j['has_outcome'] = j.success.notna()
j[['success', 'converted']] = j[['success', 'converted']].fillna(False).astype(bool)
j['weight'] = 1 / j.sample_rate
j['wcost'], j['wsucc'], j['wconv'] = j.weight * j.cost_usd, j.weight * j.success, j.weight * j.converted
daily = j.groupby(['model', 'feature']).agg(requests=('weight', 'sum'), cost=('wcost', 'sum'), successes=('wsucc', 'sum'),
                                             conversions=('wconv', 'sum'), p50=('latency_ms', 'median'),
                                             p95=('latency_ms', lambda s: s.quantile(0.95)))
daily['cost_per_success'] = daily.cost / daily.successes
t_rollups = time.perf_counter() - start

ref = read({[p for d in reference_days for p in files('inference', d)]!r})
def features(df):
    return pd.concat([df[['model']].reset_index(drop=True), pd.json_normalize(df['features'].tolist())], axis=1)
ref, cur = features(ref), features(inf)
for model in sorted(cur.model.unique()):
    Report([DataDriftPreset()]).run(ref[ref.model == model].drop(columns='model'), cur[cur.model == model].drop(columns='model'))
t_drift = time.perf_counter() - start - t_rollups

users = j[j.experiment_id.notna()].groupby(['experiment_id', 'variant', 'user_id']).agg(converted=('converted', 'max'))
for exp, g in users.groupby(level=0):
    c, t = (g.xs(v, level=1).converted.astype(float) for v in ('control', 'treatment'))
    stats.ttest_ind(t, c, equal_var=False)
RESULT = {{'seconds': time.perf_counter() - start, 'rollups_s': t_rollups, 'drift_s': t_drift, 'rows': len(j)}}
""")


def gib(mib: float) -> str:
    return f"{mib / 1024:.2f} GiB"


def full(args) -> dict:
    root = args.workdir / "full"
    prepare_data_dir(root, args.drift_reports)
    history = [DAY - dt.timedelta(days=k) for k in range(args.history_days, 0, -1)]
    print(f"full: day {DAY} with {args.inferences:,} calls and {args.events:,} events; "
          f"{len(history)} history days of the same volume", flush=True)
    write_landing(root, DAY, args.inferences, args.events)
    setup = measure(history_code(root, history, args.inferences, args.events))
    print(f"  history written in {setup['wall_s']:.0f} s; warehouse {(root / '.work' / 'pipeline.duckdb').stat().st_size / 2**30:.1f} GiB", flush=True)
    floor = measure(floor_code(root, DAY))
    same = measure(same_work_code(root, DAY))
    ours = measure(nightly_code(root, DAY, steps=True))
    print(f"  floor   {floor['seconds']:7.1f} s  peak {gib(floor['peak_rss_mib'])}  ({floor['rows']:,} joined rows)")
    print(f"  same work as plain SQL {same['seconds']:7.1f} s  peak {gib(same['peak_rss_mib'])}  "
          f"({same['rows']:,} joined rows)")
    print(f"  nightly {ours['seconds']:7.1f} s  peak {gib(ours['peak_rss_mib'])}  -> {ours['seconds'] / floor['seconds']:.2f}x "
          f"floor, {ours['seconds'] / same['seconds']:.2f}x the same work (target <= 1.5x)")
    print("      peak RSS after: " + ", ".join(f"{step} {gib(mib)}" for step, mib in ours.get("peak_after_mib", [])))
    walls = ours.get("wall_s_of", [])
    print("      wall (each Dagster run, and the publish): " + ", ".join(f"{step} {sec:.1f} s" for step, sec in walls)
          + f"; outside them {ours['seconds'] - sum(sec for _, sec in walls):.1f} s")
    for key, value in sorted(ours.items()):
        if "/" in key:
            print(f"      {key:60} {value:6.1f} s")
        elif key.endswith(" runs"):
            print(f"      {key:60} {value:6d}")
    (root / "floor.duckdb").unlink(missing_ok=True)
    (root / "same_work.duckdb").unlink(missing_ok=True)
    shutil.rmtree(root / "same_work", ignore_errors=True)
    return {"floor": floor, "same_work": same, "nightly": ours}


def scaling(args) -> dict:
    root = args.workdir / "scaling"
    prepare_data_dir(root, args.drift_reports)
    n, m = args.scale_inferences, 2 * args.scale_inferences
    days = [SCALE_START + dt.timedelta(days=k) for k in range(args.scale_days)]
    print(f"scaling: {len(days)} days of {n:,} calls and {m:,} events, one nightly run a day", flush=True)
    times, out = {}, {}
    for k, day in enumerate(days, 1):
        write_landing(root, day, n, m)
        r = measure(nightly_code(root, day))
        times[k] = r
        print(f"  day {k:2d} {day}  {r['seconds']:6.1f} s  peak {gib(r['peak_rss_mib'])}", flush=True)
        if k == 8 and "pandas" in args.parts:
            p = measure(pandas_code(root, day, days[:7]))
            out["pandas"] = p
            print(f"  pandas + Evidently, day 8: {p['seconds']:.1f} s (rollups {p['rollups_s']:.1f} s, drift "
                  f"{p['drift_s']:.1f} s)  peak {gib(p['peak_rss_mib'])}  -> nightly is {p['seconds'] / r['seconds']:.1f}x "
                  f"faster", flush=True)
        if k >= 8:  # the first 7 days stay for the pandas path's reference
            shutil.rmtree(root / "landing" / "inference" / f"dt={days[k - 8]}", ignore_errors=True)
            shutil.rmtree(root / "landing" / "product" / f"dt={days[k - 8]}", ignore_errors=True)
    last = len(days)
    print(f"  last day / day 1: {times[last]['seconds'] / times[1]['seconds']:.2f}x; "
          f"last day / day 8: {times[last]['seconds'] / times[min(8, last)]['seconds']:.2f}x")
    out["days"] = {k: v["seconds"] for k, v in times.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inferences", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--history-days", type=int, default=7)
    parser.add_argument("--scale-inferences", type=int, default=1_000_000)
    parser.add_argument("--scale-days", type=int, default=30)
    parser.add_argument("--parts", nargs="+", default=["full", "scaling", "pandas"], choices=["full", "scaling", "pandas"])
    parser.add_argument("--workdir", type=Path, default=Path(__file__).parent / ".work" / "nightly")
    parser.add_argument("--keep", action="store_true", help="keep the generated data directories")
    parser.add_argument("--drift-reports", default="significant", choices=["significant", "always", "never"],
                        help="monitoring.yaml's drift_reports (always: an Evidently page per model each night)")
    args = parser.parse_args()
    results = {}
    if "full" in args.parts:
        results["full"] = full(args)
        if not args.keep:
            shutil.rmtree(args.workdir / "full", ignore_errors=True)
    if "scaling" in args.parts or "pandas" in args.parts:
        if args.scale_days < 8 and "pandas" in args.parts:
            sys.exit("the pandas path runs on day 8 of the scaling run: use --scale-days 8 or more")
        results["scaling"] = scaling(args)
        if not args.keep:
            shutil.rmtree(args.workdir / "scaling", ignore_errors=True)
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
