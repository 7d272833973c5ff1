"""Drift benchmark: aiso_pipeline.drift.compute_drift (aggregates pushed into DuckDB) against Evidently 0.7.23's
DataDriftPreset (pandas in memory) on the same rows, in the same run.

    python benchmarks/drift.py [--rows 10000000] [--evidently-rows 1000000 2000000 4000000 10000000]
                               [--evidently-max-rss-mib 4096] [--evidently-max-seconds 300] [--workdir ...]

Data: one model, `--rows` reference rows over the 7 days before the current day and `--rows` current rows (with
a latency shift and a new language), 8 checked columns: latency_ms, input_tokens, output_tokens, confidence,
status, is_fallback, features.prompt_chars, features.language. Every step runs in a fresh process; wall time and
that process's peak RSS (VmHWM of its own address space: ru_maxrss would also count the parent's pages it was forked
with) are reported. Tables are generated in a separate process too, so the parent stays small.

Evidently runs at the sizes in --evidently-rows, smallest first, and stops before a size whose time or peak RSS,
extrapolated from the sizes already run (a line through the last two), would exceed the caps (a watchdog also kills it past twice the RSS
cap). compute_drift runs at each size Evidently ran at (--repeat times, median reported: one run takes seconds and
is easily disturbed on a shared machine; Evidently runs once) and once at --rows. The speed-up is reported at the
largest size both ran at, against Evidently's Report.run alone (its pandas load from DuckDB excluded) and with the
load.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DT = "2025-06-08"

# Deterministic pseudo-random columns from hash(i, salt) (DuckDB-specific), Box-Muller for the normal.
ROWS_SQL = """
CREATE OR REPLACE TABLE {table} AS
WITH u AS (
    SELECT i, i >= $n AS is_cur,
           (hash(i, 1) % 1000000007) / 1000000007.0 AS u1, (hash(i, 2) % 1000000007) / 1000000007.0 AS u2,
           (hash(i, 3) % 1000000007) / 1000000007.0 AS u3, (hash(i, 4) % 1000000007) / 1000000007.0 AS u4,
           (hash(i, 5) % 1000000007) / 1000000007.0 AS u5, (hash(i, 6) % 1000000007) / 1000000007.0 AS u6,
           (hash(i, 7) % 1000000007) / 1000000007.0 AS u7, (hash(i, 8) % 1000000007) / 1000000007.0 AS u8
    FROM range(2 * $n) AS t(i)
)
SELECT CASE WHEN is_cur THEN DATE '2025-06-08' ELSE DATE '2025-06-01' + CAST(i * 7 // $n AS INTEGER) END AS dt,
       'gpt-4o' AS model,
       exp(5.5 + CASE WHEN is_cur THEN 0.15 ELSE 0 END
           + 0.6 * sqrt(-2 * ln(greatest(u1, 1e-12))) * cos(2 * pi() * u2)) AS latency_ms,
       CAST(50 + floor(u3 * 3950) AS BIGINT) AS input_tokens,
       CAST(10 + floor(u4 * u4 * 1500) AS BIGINT) AS output_tokens,
       sqrt(u5) AS confidence,
       CASE WHEN u6 < CASE WHEN is_cur THEN 0.05 ELSE 0.03 END THEN 'error'
            WHEN u6 > 0.99 THEN 'timeout' ELSE 'ok' END AS status,
       u7 < 0.05 AS is_fallback,
       json_object('prompt_chars', CAST(floor(u8 * 8000) AS INTEGER),
                   'language', CASE WHEN is_cur AND u8 * 997 % 1 < 0.1 THEN 'es'
                                    ELSE ['en', 'de', 'fr'][1 + CAST(floor(u8 * 991 % 3) AS INTEGER)] END)::JSON
           AS features
FROM u
ORDER BY i
"""

PEAK = "max(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024"
CPU = "(lambda r: r.ru_utime + r.ru_stime)(__import__('resource').getrusage(__import__('resource').RUSAGE_SELF))"

OURS = """
import json, time, datetime, duckdb
from aiso_pipeline.drift import compute_drift
con = duckdb.connect({db!r}, read_only=True)
t, c = time.perf_counter(), {cpu}
metrics, summary = compute_drift(con, datetime.date.fromisoformat({dt!r}), source={source!r})
seconds, cpu = time.perf_counter() - t, {cpu} - c
print(json.dumps({{"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": {peak},
    "columns": {{m["column_name"]: [m["method"], m["statistic"]] for m in metrics}},
    "rows": [metrics[0]["reference_rows"], metrics[0]["current_rows"]]}}))
"""

EVIDENTLY = """
import json, time, duckdb, warnings
warnings.filterwarnings("ignore")
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
con = duckdb.connect({db!r}, read_only=True)
flat = '''SELECT latency_ms, CAST(input_tokens AS DOUBLE) AS input_tokens,
       CAST(output_tokens AS DOUBLE) AS output_tokens, confidence, status, is_fallback,
       TRY_CAST(json_extract_string(features, '$.prompt_chars') AS DOUBLE) AS "features.prompt_chars",
       json_extract_string(features, '$.language') AS "features.language"
       FROM {table} WHERE '''
t = time.perf_counter()
cur = con.execute(flat + "dt = DATE '{dt}'").df()
ref = con.execute(flat + "dt < DATE '{dt}'").df()
con.close()
load = time.perf_counter() - t
numerical = ["latency_ms", "input_tokens", "output_tokens", "confidence", "features.prompt_chars"]
definition = DataDefinition(numerical_columns=numerical,
                            categorical_columns=["status", "is_fallback", "features.language"])
t, c = time.perf_counter(), {cpu}
snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                           Dataset.from_pandas(ref, data_definition=definition))
run, cpu = time.perf_counter() - t, {cpu} - c
columns = {{}}
for m in snapshot.dict()["metrics"]:
    if m["config"]["type"].endswith("ValueDrift"):
        columns[m["config"]["column"]] = [m["config"]["method"], float(m["value"])]
print(json.dumps({{"seconds": run, "cpu_seconds": cpu, "load_seconds": load, "columns": columns,
                   "rows": [len(ref), len(cur)],
                   "peak_rss_mib": {peak}}}))
"""


def run_child(code: str, kill_rss_mib: float | None = None) -> dict:
    """Run code in a fresh interpreter (cwd = repo root); wall time, the child's own peak RSS, its JSON line."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killed = {}

    def watch():
        while proc.poll() is None:
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) / 1024
                        if kill_rss_mib and rss > kill_rss_mib:
                            killed["rss_mib"] = rss
                            proc.kill()
            except OSError:
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if killed:
        return {"killed": True, "peak_rss_mib": killed["rss_mib"], "wall_s": wall}
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{err[-3000:]}")
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    result["wall_s"] = wall
    return result


GENERATE = """
import json, time, duckdb
con = duckdb.connect({db!r})
table = {table!r}
have = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()[0]
seconds = None
if not have or con.execute(f"SELECT count(*) FROM {{table}}").fetchone()[0] != 2 * {n}:
    t = time.perf_counter()
    con.execute({sql!r}, {{"n": {n}}})
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - t
con.close()
print(json.dumps({{"generated_seconds": seconds}}))
"""


def ensure_table(db: Path, n: int) -> str:
    """Create events_<n> (n reference + n current rows) unless it exists, in a separate process."""
    table = f"events_{n}"
    r = run_child(GENERATE.format(db=str(db), table=table, n=n, sql=ROWS_SQL.format(table=table)))
    if r["generated_seconds"] is not None:
        print(f"  generated {table}: {n:,} reference + {n:,} current rows in {r['generated_seconds']:.1f}s", flush=True)
    return table


def extrapolate(results: dict[int, dict], n: int, value) -> float:
    """value at n rows: the line through the two largest sizes measured (fixed cost + per-row cost), or
    proportional scaling from a single size."""
    sizes = sorted(results)[-2:]
    if len(sizes) == 1:
        return value(results[sizes[0]]) * n / sizes[0]
    (n1, n2), (v1, v2) = sizes, (value(results[sizes[0]]), value(results[sizes[1]]))
    return v2 + (v2 - v1) / (n2 - n1) * (n - n2)


def mib(x):
    return f"{x:,.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000, help="reference rows = current rows (default 10M)")
    ap.add_argument("--evidently-rows", type=int, nargs="*", default=[1_000_000, 2_000_000, 4_000_000, 10_000_000])
    ap.add_argument("--evidently-max-rss-mib", type=float, default=4096)
    ap.add_argument("--evidently-max-seconds", type=float, default=300)
    ap.add_argument("--repeat", type=int, default=3, help="compute_drift runs per size Evidently ran at (median)")
    ap.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / ".work")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.workdir / "drift_bench.duckdb"

    ev_sizes = sorted(n for n in set(args.evidently_rows) if n <= args.rows)
    print(f"drift benchmark: {args.rows:,} reference vs {args.rows:,} current rows, 8 columns, 1 model")
    evidently: dict[int, dict] = {}
    stop_reason = None
    for n in ev_sizes:
        if evidently:
            pred_s = extrapolate(evidently, n, lambda r: r["seconds"] + r["load_seconds"])
            pred_rss = extrapolate(evidently, n, lambda r: r["peak_rss_mib"])
            if pred_rss > args.evidently_max_rss_mib or pred_s > args.evidently_max_seconds:
                stop_reason = (f"Evidently not run at {n:,} rows: extrapolated {pred_s:.0f}s / {mib(pred_rss)} from "
                               f"the sizes it ran at exceeds the caps ({args.evidently_max_seconds:.0f}s / "
                               f"{mib(args.evidently_max_rss_mib)})")
                break
        table = ensure_table(db, n)
        print(f"  Evidently DataDriftPreset at {n:,} + {n:,} rows ...", flush=True)
        r = run_child(EVIDENTLY.format(db=str(db), table=table, dt=DT, peak=PEAK, cpu=CPU),
                      kill_rss_mib=2 * args.evidently_max_rss_mib)
        if r.get("killed"):
            stop_reason = f"Evidently killed at {n:,} rows: RSS passed {mib(r['peak_rss_mib'])}"
            break
        evidently[n] = r
        print(f"    run {r['seconds']:.1f}s (CPU {r['cpu_seconds']:.1f}s) + pandas load {r['load_seconds']:.1f}s, "
              f"peak RSS {mib(r['peak_rss_mib'])}",
              flush=True)

    ours: dict[int, dict] = {}
    for n in sorted(set(evidently) | {args.rows}):
        table = ensure_table(db, n)
        print(f"  compute_drift at {n:,} + {n:,} rows ...", flush=True)
        runs = [run_child(OURS.format(db=str(db), dt=DT, source=f"main.{table}", peak=PEAK, cpu=CPU))
                for _ in range(args.repeat if n in evidently else 1)]
        r = sorted(runs, key=lambda x: x["seconds"])[len(runs) // 2]
        r["peak_rss_mib"] = max(x["peak_rss_mib"] for x in runs)
        ours[n] = r
        times = ", ".join(f"{x['seconds']:.2f}" for x in runs)
        print(f"    {r['seconds']:.2f}s (median of {len(runs)}: {times}; CPU {r['cpu_seconds']:.2f}s; process wall "
              f"{r['wall_s']:.1f}s), peak RSS {mib(r['peak_rss_mib'])}", flush=True)

    print()
    print(f"{'rows per side':>14} | {'compute_drift':>14} {'CPU':>7} {'peak RSS':>11} | {'Evidently run':>13} "
          f"{'CPU':>7} {'+load':>7} {'peak RSS':>11} | {'speed-up':>8} {'incl. load':>10} {'CPU':>6} | max |diff|")
    for n in sorted(ours):
        o = ours[n]
        line = f"{n:>14,} | {o['seconds']:>13.2f}s {o['cpu_seconds']:>6.1f}s {mib(o['peak_rss_mib']):>11} |"
        if n in evidently:
            e = evidently[n]
            diffs = [abs(o["columns"][c][1] - e["columns"][c][1]) for c in e["columns"] if c in o["columns"]]
            line += (f" {e['seconds']:>12.1f}s {e['cpu_seconds']:>6.1f}s {e['load_seconds']:>6.1f}s "
                     f"{mib(e['peak_rss_mib']):>11} | {e['seconds'] / o['seconds']:>7.1f}x "
                     f"{(e['seconds'] + e['load_seconds']) / o['seconds']:>9.1f}x "
                     f"{e['cpu_seconds'] / o['cpu_seconds']:>5.1f}x | {max(diffs):.2e}")
        else:
            line += f" {'(not run)':>13} {'':>7} {'':>7} {'':>11} | {'':>8} {'':>10} {'':>6} |"
        print(line)
    if stop_reason:
        print(stop_reason)
    if evidently:
        n = max(evidently)
        e, o = evidently[n], ours[n]
        print(f"Largest size Evidently ran at: {n:,} rows per side: compute_drift {e['seconds'] / o['seconds']:.1f}x "
              f"faster than Report.run ({(e['seconds'] + e['load_seconds']) / o['seconds']:.1f}x with its pandas "
              f"load; {e['cpu_seconds'] / o['cpu_seconds']:.1f}x less CPU time: the wall-time ratio depends on how "
              f"many of the 2 cores other processes leave to compute_drift's threads).")
        if n < args.rows:
            big = ours[args.rows]
            est = extrapolate(evidently, args.rows, lambda r: r["seconds"])
            est_rss = extrapolate(evidently, args.rows, lambda r: r["peak_rss_mib"])
            print(f"At {args.rows:,} rows: compute_drift {big['seconds']:.2f}s, peak RSS {mib(big['peak_rss_mib'])}; "
                  f"Evidently extrapolated from the sizes it ran at: ~{est:.0f}s run, ~{mib(est_rss)} "
                  f"(ratio ~{est / big['seconds']:.0f}x, an estimate, not a measurement).")
        print("Per-column statistic (ours vs Evidently) at that size:")
        for c, (method, value) in e["columns"].items():
            om, ov = o["columns"].get(c, [None, None])
            print(f"  {c:<24} {method:<32} evidently {value:.6g}  ours {om} {ov:.6g}  |diff| {abs(ov - value):.1e}")


if __name__ == "__main__":
    main()
