"""Validation benchmark: every check of both raw streams on a big partition, against one hand-written query.

    python benchmarks/validation.py [--rows 10000000] [--repeat 2] [--workdir benchmarks/.work]

Builds, directly in DuckDB SQL, a pipeline database with one day of `--rows` inference events and `--rows`
product events (1 % unpriced, 1 % of product events naming an unknown request), seven trailing days of
`--rows // 10` rows each, and the ingest log. Then, in fresh processes, alternately:
(a) the suites: `validate_partition` for inference then product — Great Expectations inside DuckDB (two passes,
    see validation/suites.py), the SQL metrics, writing quality.check_results and the JSON reports;
(b) the floor: one hand-written DuckDB query computing the same numbers (every expectation's unexpected count,
    the ingest log, the volume history, unknown requests) in a single statement.
Prints the best wall time of each, peak RSS and the ratio, and checks that both found the same numbers.
Target: suites <= 3x the query, peak RSS <= 2 GB. Importing great_expectations (seconds, once per process) is
reported apart: it is not work on the partition.
(With --rows // 10 rows of history the volume check fails by design: ratio 10, a WARN.)
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import child_code, measure  # noqa: E402

DT = "2025-06-08"

SETUP = """
INSERT INTO raw.inference_events BY NAME
SELECT 'req-' || i AS request_id,
       TIMESTAMPTZ '{dt} 00:00:00+00' + to_milliseconds((i * 7919) % 86400000) AS "timestamp",
       ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet-20241022', 'gemini-1.5-flash'][1 + i % 4] AS model,
       'openai' AS provider, 'chat' AS operation, ['chat', 'search', 'recommendations'][1 + i % 3] AS feature,
       'u' || (i % 50000) AS user_id, 's' || (i // 7) AS session_id,
       50 + (i * 31) % 4000 AS input_tokens, 10 + (i * 17) % 1500 AS output_tokens,
       (i * 13) % 50 AS cached_input_tokens, round(200 + (i * 37) % 5000 + 0.5, 1) AS latency_ms,
       CASE WHEN i % 97 = 0 THEN 'error' WHEN i % 211 = 0 THEN 'timeout' ELSE 'ok' END AS status,
       i % 23 = 0 AS is_fallback, round(((i * 11) % 1000) / 1000.0, 3) AS confidence,
       CASE WHEN i % 100 = 7 THEN NULL ELSE 0.00001 * (i % 1000) END AS cost_usd,
       CASE WHEN i % 100 = 7 THEN NULL ELSE 'price_table' END AS cost_source,
       CASE WHEN i % 3 = 1 THEN 0.25 ELSE 1.0 END AS sample_rate,
       DATE '{dt}' AS dt, 'landing/inference/dt={dt}/part-' || (i % 4) || '.jsonl' AS source_file,
       i AS line_number, now() AS loaded_at
FROM range({rows}) AS t(i);

INSERT INTO raw.product_events BY NAME
SELECT 'msg-' || i AS message_id,
       ['Answer Accepted', 'Task Completed', 'Order Completed', 'Page Viewed'][1 + i % 4] AS event,
       TIMESTAMPTZ '{dt} 00:00:00+00' + to_milliseconds((i * 6271) % 86400000) AS "timestamp",
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'u' || (i % 50000) END AS user_id,
       CASE WHEN i % 10 = 0 THEN 'anon-' || i END AS anonymous_id,
       CASE WHEN i % 5 < 3 THEN CASE WHEN i % 100 = 1 THEN 'ghost-' || i ELSE 'req-' || ((i * 7) % {rows}) END END
           AS request_id,
       CASE WHEN i % 4 = 2 THEN 10 + i % 90 END AS revenue,
       DATE '{dt}' AS dt, 'landing/product/dt={dt}/part-' || (i % 4) || '.jsonl' AS source_file,
       i AS line_number, now() AS loaded_at
FROM range({rows}) AS t(i);

INSERT INTO raw.inference_events (request_id, "timestamp", model, status, dt, source_file)
SELECT 'h' || d || '-' || i, TIMESTAMPTZ '{dt} 00:00:00+00' - to_days(d::INTEGER), 'gpt-4o', 'ok',
       DATE '{dt}' - d::INTEGER, 'history'
FROM range(1, 8) AS a(d), range({history}) AS b(i);

INSERT INTO raw.product_events (message_id, event, "timestamp", user_id, dt, source_file)
SELECT 'h' || d || '-' || i, 'Page Viewed', TIMESTAMPTZ '{dt} 00:00:00+00' - to_days(d::INTEGER), 'u1',
       DATE '{dt}' - d::INTEGER, 'history'
FROM range(1, 8) AS a(d), range({history}) AS b(i);

INSERT INTO quality.ingest_log (stream, dt, source_file, rows_read, rows_loaded, rows_duplicate, rows_quarantined)
SELECT stream, DATE '{dt}' - d::INTEGER, 'landing/' || stream || '/part-' || k || '.jsonl',
       CASE WHEN d = 0 THEN {rows} ELSE {history} END // 4 + 10, CASE WHEN d = 0 THEN {rows} ELSE {history} END // 4,
       0, 10
FROM (VALUES ('inference'), ('product')) AS s(stream), range(0, 8) AS a(d), range(4) AS f(k);
"""

# Everything the suites compute, as one statement: the GX expectations' unexpected counts (same semantics: NULLs
# are not unexpected for ranges and sets) and the SQL checks. Uniqueness the way one would write it by hand,
# count(id) - count(DISTINCT id): the rows repeating an id (the suites report every row of a repeated id; both are
# 0 exactly when the ids are unique, which is what the benchmark data has).
REFERENCE = """
WITH inf AS (SELECT * FROM raw.inference_events WHERE dt = DATE '{dt}'),
prod AS (SELECT * FROM raw.product_events WHERE dt = DATE '{dt}'),
inf_rows AS (
    SELECT count(*) AS rows,
           count(*) FILTER (WHERE request_id IS NULL) + count(*) FILTER (WHERE "timestamp" IS NULL)
               + count(*) FILTER (WHERE model IS NULL) AS required_keys_not_null,
           count(*) FILTER (WHERE status NOT IN ('ok', 'error', 'timeout')) AS status_accepted_values,
           count(*) FILTER (WHERE input_tokens < 0) + count(*) FILTER (WHERE output_tokens < 0)
               + count(*) FILTER (WHERE cached_input_tokens < 0) + count(*) FILTER (WHERE latency_ms < 0)
               + count(*) FILTER (WHERE cached_input_tokens > input_tokens)
               + count(*) FILTER (WHERE confidence NOT BETWEEN 0 AND 1)
               + count(*) FILTER (WHERE sample_rate <= 0 OR sample_rate > 1) AS values_in_range,
           count(*) FILTER (WHERE "timestamp" < TIMESTAMPTZ '{lo}' OR "timestamp" >= TIMESTAMPTZ '{hi}')
               / count("timestamp") AS timestamps_in_window,
           count(*) FILTER (WHERE cost_usd IS NULL) / count(*) AS unpriced_share,
           count(request_id) - count(DISTINCT request_id) AS request_id_unique
    FROM inf
),
prod_rows AS (
    SELECT count(*) AS rows,
           count(*) FILTER (WHERE message_id IS NULL) + count(*) FILTER (WHERE event IS NULL)
               + count(*) FILTER (WHERE "timestamp" IS NULL)
               + count(*) FILTER (WHERE user_id IS NULL AND anonymous_id IS NULL) AS required_keys_not_null,
           count(*) FILTER (WHERE "timestamp" < TIMESTAMPTZ '{lo}' OR "timestamp" >= TIMESTAMPTZ '{hi}')
               / count("timestamp") AS timestamps_in_window,
           count(message_id) - count(DISTINCT message_id) AS message_id_unique,
           count(request_id) AS with_request_id,
           count(*) FILTER (WHERE request_id IS NOT NULL AND request_id NOT IN (
               SELECT request_id FROM raw.inference_events
               WHERE dt BETWEEN DATE '{dt}' - 1 AND DATE '{dt}')) AS unknown_request_id
    FROM prod
),
log AS (
    SELECT stream, count(*) AS files, count(*) FILTER (WHERE file_error IS NOT NULL) AS files_quarantined,
           sum(rows_quarantined) / sum(rows_read) AS quarantine_share
    FROM quality.ingest_log WHERE dt = DATE '{dt}' GROUP BY stream
),
volume AS (
    SELECT stream, max(n) FILTER (WHERE dt = DATE '{dt}') / median(n) FILTER (WHERE dt < DATE '{dt}') AS volume
    FROM (SELECT 'inference' AS stream, dt, count(*) AS n FROM raw.inference_events
          WHERE dt BETWEEN DATE '{dt}' - 7 AND DATE '{dt}' GROUP BY dt
          UNION ALL
          SELECT 'product', dt, count(*) FROM raw.product_events
          WHERE dt BETWEEN DATE '{dt}' - 7 AND DATE '{dt}' GROUP BY dt)
    GROUP BY stream
)
SELECT {{
    'inference': {{
        'required_keys_not_null': i.required_keys_not_null, 'request_id_unique': i.request_id_unique,
        'status_accepted_values': i.status_accepted_values, 'values_in_range': i.values_in_range,
        'timestamps_in_window': i.timestamps_in_window, 'unpriced_share': i.unpriced_share,
        'quarantine_share': li.quarantine_share, 'files_quarantined': li.files_quarantined,
        'volume': vi.volume, 'freshness': li.files}},
    'product': {{
        'required_keys_not_null': p.required_keys_not_null, 'message_id_unique': p.message_id_unique,
        'timestamps_in_window': p.timestamps_in_window,
        'unknown_request_share': p.unknown_request_id / p.with_request_id,
        'quarantine_share': lp.quarantine_share, 'files_quarantined': lp.files_quarantined,
        'volume': vp.volume, 'freshness': lp.files}}
}}
FROM inf_rows AS i, prod_rows AS p,
     (FROM log WHERE stream = 'inference') AS li, (FROM log WHERE stream = 'product') AS lp,
     (FROM volume WHERE stream = 'inference') AS vi, (FROM volume WHERE stream = 'product') AS vp
"""


def setup_code(root: Path, rows: int) -> str:
    history = max(1, rows // 10)
    return child_code(f"""
import time
from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
d = data_dir({str(root)!r})
t = time.perf_counter()
with warehouse.connect(d) as con:
    for stmt in warehouse.statements({SETUP!r}.format(dt={DT!r}, rows={rows}, history={history})):
        con.execute(stmt)
    con.execute("CHECKPOINT")
RESULT = {{'seconds': time.perf_counter() - t}}
""")


def suites_code(root: Path) -> str:
    return child_code(f"""
import time
t0 = time.perf_counter()
import great_expectations  # the fixed cost of a process that validates, timed apart
t_import = time.perf_counter() - t0
from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
from aiso_pipeline.validation import validate_partition
d = data_dir({str(root)!r})
with warehouse.connect(d) as con:
    t = time.perf_counter()
    observed, failed = {{}}, []
    for stream in ('inference', 'product'):
        for o in validate_partition(con, d, stream, {DT!r}):
            observed.setdefault(stream, {{}})[o.check_name] = o.observed_value
            if not o.passed:
                failed.append(f"{{stream}}.{{o.check_name}} ({{o.severity}})")
    seconds = time.perf_counter() - t
RESULT = {{'seconds': seconds, 'import_s': t_import, 'observed': observed, 'failed': failed}}
""")


def reference_code(root: Path) -> str:
    lo, hi = "2025-06-07 00:00:00+00", "2025-06-10 00:00:00+00"
    return child_code(f"""
import time
from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
d = data_dir({str(root)!r})
with warehouse.connect(d) as con:
    t = time.perf_counter()
    (numbers,) = con.execute({REFERENCE!r}.format(dt={DT!r}, lo={lo!r}, hi={hi!r})).fetchone()
    seconds = time.perf_counter() - t
RESULT = {{'seconds': seconds, 'observed': numbers}}
""")


def same_numbers(suites: dict, reference: dict) -> list[str]:
    """Checks where the suites and the query disagree (volume: the query does not apply min_history_days)."""
    out = []
    for stream, checks in suites.items():
        for check, value in checks.items():
            ref = reference[stream][check]
            if value is None or ref is None:
                continue
            if abs(float(value) - float(ref)) > 1e-9 * max(1.0, abs(float(ref))):
                out.append(f"{stream}.{check}: suites {value} vs query {ref}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of each stream's partition")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side, alternating; best is kept")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).parent / ".work")
    args = parser.parse_args()
    root = args.workdir / f"validation-{args.rows}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    setup = measure(setup_code(root, args.rows))
    print(f"setup: {args.rows:,} inference + {args.rows:,} product rows for {DT}, 7 days of history "
          f"({setup['seconds']:.1f} s)", flush=True)
    suites, reference = [], []
    for _ in range(args.repeat):
        reference.append(measure(reference_code(root)))
        suites.append(measure(suites_code(root)))
    best_s = min(suites, key=lambda r: r["seconds"])
    best_q = min(reference, key=lambda r: r["seconds"])
    mismatches = same_numbers(best_s["observed"], best_q["observed"])
    print(f"{'rows':>11} | {'suites s':>8} {'RSS MiB':>8} {'GX import s':>11} | {'query s':>7} {'RSS MiB':>8} | ratio")
    print(f"{args.rows:>11,} | {best_s['seconds']:>8.2f} {max(r['peak_rss_mib'] for r in suites):>8.0f} "
          f"{best_s['import_s']:>11.2f} | {best_q['seconds']:>7.2f} {max(r['peak_rss_mib'] for r in reference):>8.0f} "
          f"| {best_s['seconds'] / best_q['seconds']:.2f}x")
    print("all runs, suites s:", ", ".join(f"{r['seconds']:.2f}" for r in suites),
          "| query s:", ", ".join(f"{r['seconds']:.2f}" for r in reference))
    print("failed checks:", ", ".join(best_s["failed"]) or "none")
    print("same numbers as the query:", "yes" if not mismatches else "NO\n  " + "\n  ".join(mismatches))
    shutil.rmtree(root, ignore_errors=True)
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
