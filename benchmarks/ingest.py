"""Ingest benchmark: the pipeline's ingest of one day against a bare DuckDB read of the same files.

    python benchmarks/ingest.py [--rows 1000000 10000000] [--workdir benchmarks/.work]

For each size and format (JSONL, Parquet, CSV, OTLP) it writes one day of synthetic inference rows (realistic keys, a
`features` object, some aliases), then in fresh processes times (a) `ingest_partition` — recognize, parse, type,
quarantine, dedup, price, account — and (b) the floor: `CREATE TABLE AS SELECT * FROM read_json/read_parquet/
read_csv` of the same files (CSV: a header, `features` as a JSON cell, as exports write it). OTLP is what the
OpenTelemetry Collector's `file` exporter writes: 16 spans per ExportTraceServiceRequest line, 1 in 4 an HTTP span
to skip; its floor reads the same files with read_json and unnests the spans. Prints rows/s, peak RSS and the ratio. Target: ingest time <= 1.5x the bare read.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import child_code, measure  # noqa: E402

DT = "2025-06-01"
FILES_PER_DAY = 4
PRICES = """model_pattern,valid_from,input_per_mtok,output_per_mtok,cached_input_per_mtok
gpt-4o,2024-05-13,5.00,15.00,
gpt-4o,2024-10-01,2.50,10.00,1.25
gpt-4o-mini,2024-07-18,0.15,0.60,0.075
claude-3-5-sonnet(-\\d{8}|-latest)?,2024-06-20,3.00,15.00,0.30
gemini-1\\.5-flash(-\\d{3})?,2024-05-14,0.075,0.30,
"""

ROWS_SQL = """
SELECT 'req-' || i AS request_id,
       strftime(TIMESTAMP '2025-06-01' + to_milliseconds((i * 7919) % 86400000), '%Y-%m-%dT%H:%M:%S.%gZ') AS "timestamp",
       ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet-20241022', 'gemini-1.5-flash', 'acme-7b'][1 + i % 5] AS model,
       'openai' AS provider,
       ['chat', 'search', 'recommendations'][1 + i % 3] AS feature,
       'u' || (i % 50000) AS user_id, 's' || (i // 7) AS session_id,
       50 + (i * 31) % 4000 AS input_tokens, 10 + (i * 17) % 1500 AS output_tokens,
       (i * 13) % 50 AS cached_input_tokens,
       round(200 + (i * 37) % 5000 + 0.5, 1) AS latency_ms,
       CASE WHEN i % 97 = 0 THEN 'error' ELSE 'ok' END AS status,
       i % 23 = 0 AS is_fallback, round(((i * 11) % 1000) / 1000.0, 3) AS confidence,
       CASE WHEN i % 3 = 1 THEN 0.25 ELSE 1.0 END AS sample_rate,
       CASE WHEN i % 4 = 0 THEN 'exp1' END AS experiment_id, CASE WHEN i % 4 = 0 THEN ['a', 'b'][1 + i % 2] END AS variant,
       {'prompt_chars': (i * 53) % 8000, 'language': ['en', 'de', 'fr'][1 + i % 3], 'user_tier': ['free', 'pro'][1 + i % 2]} AS features
FROM range(?, ?) AS t(i)
"""


SPANS_PER_LINE = 16
# One span as OTLP/JSON text: a model call (GenAI attributes), or every 4th an HTTP server span.
SPAN_SQL = """
SELECT i // {per_line} AS line, i,
       '{{"traceId":"' || lpad(printf('%x', i // 4), 32, '0') || '","spanId":"' || lpad(printf('%x', i), 16, '0')
       || '","name":"chat","kind":' || CASE WHEN i % 4 = 3 THEN 2 ELSE 3 END
       || ',"startTimeUnixNano":"' || (1748736000000000000 + ((i * 7919) % 86400000) * 1000000)::VARCHAR
       || '","endTimeUnixNano":"' || (1748736000000000000 + ((i * 7919) % 86400000) * 1000000
                                     + (200 + (i * 37) % 5000) * 1000000)::VARCHAR
       || '","attributes":[' || CASE WHEN i % 4 = 3 THEN
              '{{"key":"http.request.method","value":{{"stringValue":"POST"}}}},{{"key":"url.path","value":{{"stringValue":"/chat"}}}}'
          ELSE
              '{{"key":"gen_ai.operation.name","value":{{"stringValue":"chat"}}}},'
              || '{{"key":"gen_ai.provider.name","value":{{"stringValue":"openai"}}}},'
              || '{{"key":"gen_ai.request.model","value":{{"stringValue":"' || ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet-20241022'][1 + i % 3] || '"}}}},'
              || '{{"key":"gen_ai.response.id","value":{{"stringValue":"chatcmpl-' || i || '"}}}},'
              || '{{"key":"gen_ai.usage.input_tokens","value":{{"intValue":"' || (50 + (i * 31) % 4000) || '"}}}},'
              || '{{"key":"gen_ai.usage.output_tokens","value":{{"intValue":"' || (10 + (i * 17) % 1500) || '"}}}},'
              || '{{"key":"gen_ai.usage.cache_read.input_tokens","value":{{"intValue":"' || ((i * 13) % 50) || '"}}}},'
              || '{{"key":"user.id","value":{{"stringValue":"u' || (i % 50000) || '"}}}},'
              || '{{"key":"session.id","value":{{"stringValue":"s' || (i // 7) || '"}}}}'
          END || '],"status":{{' || CASE WHEN i % 97 = 0 THEN '"code":2' ELSE '' END || '}}}}' AS span
FROM range(?, ?) AS t(i)
"""


def write_otlp(con, target: Path, lo: int, hi: int) -> None:
    con.execute(f"""COPY (
        SELECT '{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"bench"}}}}]}},'
               || '"scopeSpans":[{{"scope":{{"name":"bench"}},"spans":[' || string_agg(span, ',' ORDER BY i) || ']}}]}}]}}'
        FROM ({SPAN_SQL.format(per_line=SPANS_PER_LINE)}) GROUP BY line ORDER BY line
    ) TO '{target}' (FORMAT csv, HEADER false, QUOTE '', DELIMITER '\x1f')""", [lo, hi])


EXTENSIONS = {"jsonl": "jsonl", "parquet": "parquet", "csv": "csv", "otlp": "json"}
OPTIONS = {"jsonl": "FORMAT json", "parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER true"}
READERS = {"jsonl": "read_json", "otlp": "read_json", "parquet": "read_parquet", "csv": "read_csv"}


def expected_rows(rows: int, fmt: str) -> int:
    return rows - rows // 4 if fmt == "otlp" else rows  # every 4th OTLP span is an HTTP span, skipped


def write_day(root: Path, rows: int, fmt: str) -> None:
    import duckdb

    folder = root / "landing" / "inference" / f"dt={DT}"
    shutil.rmtree(root, ignore_errors=True)
    folder.mkdir(parents=True)
    (root / "landing" / "product").mkdir(parents=True)
    (root / "reference").mkdir()
    (root / "reference" / "model_prices.csv").write_text(PRICES)
    con = duckdb.connect()
    step = -(-rows // FILES_PER_DAY)
    for k in range(FILES_PER_DAY):
        lo, hi = k * step, min(rows, (k + 1) * step)
        target = folder / f"part-{k}.{EXTENSIONS[fmt]}"
        if fmt == "otlp":
            write_otlp(con, target, lo, hi)
            continue
        rows_sql = ROWS_SQL
        if fmt == "csv":  # as exports write it: the `features` object as a JSON cell
            rows_sql = f"SELECT * REPLACE (to_json(features)::VARCHAR AS features) FROM ({ROWS_SQL})"
        con.execute(f"COPY ({rows_sql}) TO '{target}' ({OPTIONS[fmt]})", [lo, hi])


def pipeline_code(root: Path, memory_limit: str | None) -> str:
    return child_code(f"""
import time
from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
from aiso_pipeline.ingest import ingest_partition
d = data_dir({str(root)!r})
t = time.perf_counter()
with warehouse.connect(d, memory_limit={memory_limit!r}) as con:
    s = ingest_partition(con, d, 'inference', {DT!r})
RESULT = {{'seconds': time.perf_counter() - t, 'rows_loaded': s.rows_loaded}}
""")


def bare_code(root: Path, fmt: str) -> str:
    reader = READERS[fmt]
    glob = str(root / "landing" / "inference" / f"dt={DT}" / "*")
    select = f"SELECT * FROM {reader}('{glob}')"
    if fmt == "otlp":  # the spans, as DuckDB's JSON reader sees them: resourceSpans -> scopeSpans -> spans
        select = (f"SELECT unnest(ss.spans, recursive := true) FROM (SELECT unnest(rs.scopeSpans) AS ss "
                  f"FROM (SELECT unnest(resourceSpans) AS rs FROM read_json('{glob}')))")
    count = "SELECT count(*) FROM t" + (" WHERE kind <> 2" if fmt == "otlp" else "")
    return child_code(f"""
import time, duckdb
con = duckdb.connect({str(root / 'bare.duckdb')!r})
t = time.perf_counter()
con.execute("CREATE OR REPLACE TABLE t AS {select}")
RESULT = {{'seconds': time.perf_counter() - t, 'rows_loaded': con.execute({count!r}).fetchone()[0]}}
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--formats", nargs="+", default=["jsonl", "parquet", "csv", "otlp"], choices=list(EXTENSIONS))
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for the pipeline side, e.g. 3GB")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).parent / ".work")
    args = parser.parse_args()
    print(f"{'rows':>11} {'format':>8} {'pipeline s':>10} {'rows/s':>10} {'RSS MiB':>8} | "
          f"{'bare s':>7} {'rows/s':>10} {'RSS MiB':>8} | ratio")
    for rows in args.rows:
        for fmt in args.formats:
            root = args.workdir / f"ingest-{fmt}-{rows}"
            write_day(root, rows, fmt)
            bare = measure(bare_code(root, fmt))
            ours = measure(pipeline_code(root, args.memory_limit))
            assert ours["rows_loaded"] == bare["rows_loaded"] == expected_rows(rows, fmt), (ours, bare)
            print(f"{rows:>11,} {fmt:>8} {ours['seconds']:>10.2f} {rows / ours['seconds']:>10,.0f} "
                  f"{ours['peak_rss_mib']:>8.0f} | {bare['seconds']:>7.2f} {rows / bare['seconds']:>10,.0f} "
                  f"{bare['peak_rss_mib']:>8.0f} | {ours['seconds'] / bare['seconds']:.2f}x", flush=True)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
