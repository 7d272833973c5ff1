"""The `aiso` command (CONTRACT section 8). Every failure ends in one line on stderr and a non-zero exit."""
from __future__ import annotations

import argparse
import http.server
import os
import signal
import sys
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from aiso_pipeline.config import DataDir, data_dir
from aiso_pipeline.errors import AisoError


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD")


def _yesterday() -> date:
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def _landing_days(data: DataDir) -> list[str]:
    days = {p.name.removeprefix("dt=") for s in ("inference", "product") if data.landing(s).is_dir()
            for p in data.landing(s).glob("dt=*") if p.is_dir()}
    return sorted(days)


MAX_LISTED = 10  # files quarantined whole, most recent days first, listed after a run


def _summary(data: DataDir) -> str:
    import duckdb

    con = duckdb.connect(str(data.warehouse), read_only=True)
    rows = con.execute("""SELECT stream, count(DISTINCT dt), sum(rows_read), sum(rows_loaded), sum(rows_duplicate),
                                 sum(rows_quarantined), coalesce(sum(rows_skipped), 0), count(file_error)
                          FROM quality.ingest_log GROUP BY stream ORDER BY stream""").fetchall()
    rejected = con.execute("""SELECT source_file, file_error FROM quality.ingest_log WHERE file_error IS NOT NULL
                              ORDER BY dt DESC, source_file LIMIT ?""", [MAX_LISTED + 1]).fetchall()
    con.close()
    lines = [f"  {s:<9} {d} days: {r:,} rows read, {l:,} loaded, {dup:,} duplicate, {q:,} quarantined, "
             f"{sk:,} skipped (not events), {f} file(s) quarantined whole" for s, d, r, l, dup, q, sk, f in rows]
    lines += [f"  quarantined whole: {path} ({why})" for path, why in rejected[:MAX_LISTED]]
    if len(rejected) > MAX_LISTED:
        lines.append("  ... more in quality.ingest_log (file_error IS NOT NULL)")
    return "\n".join(lines)


def cmd_generate(args) -> None:
    from aiso_pipeline.generate import generate

    data = data_dir(args.data_dir)
    end = args.end or _yesterday()
    start = args.start or end - timedelta(days=args.days - 1)
    result = generate(data.root, start, end, seed=args.seed, inferences_per_day=args.inferences_per_day,
                      formats=args.format, malformed=not args.clean)
    print(f"generated {result.inference_rows:,} inference and {result.product_rows:,} product rows for "
          f"{start} .. {end} under {data.root / 'landing'}")


def cmd_run(args) -> None:
    from aiso_pipeline.runner import days_between, run_days

    data = data_dir(args.data_dir)
    if args.date and (args.start or args.end):
        raise AisoError("give either --date or --start/--end, not both")
    if args.date:
        days = [args.date.isoformat()]
    elif args.start and args.end:
        days = days_between(args.start, args.end)
    else:
        raise AisoError("say which day(s): --date YYYY-MM-DD, or --start YYYY-MM-DD --end YYYY-MM-DD")
    _preflight(data)
    run_days(data, days, log_level=args.log_level, progress=_progress)
    print(f"ran {len(days)} day(s) {days[0]} .. {days[-1]}; warehouse: {data.warehouse}")
    print(_summary(data))


def _price_the_self_hosted_model(data: DataDir, valid_from) -> None:
    """The demo's story: the self-hosted model is in no price table, so its calls load unpriced (never $0) and the
    `unpriced_share` check fails, until the team adds its amortised GPU cost, valid from the demo's fourth day."""
    from aiso_pipeline.generate.world import UNPRICED
    from aiso_pipeline.ingest.prices import ensure_prices

    ensure_prices(data)
    with open(data.prices, "a") as f:
        for model in UNPRICED:
            f.write(f"{model},{valid_from.isoformat()},0.05,0.05,\n")


def cmd_demo(args) -> None:
    from aiso_pipeline.generate import generate
    from aiso_pipeline.runner import run_days

    data = data_dir(args.data_dir)
    data.root.mkdir(parents=True, exist_ok=True)
    days = _landing_days(data)
    if not days:
        end = _yesterday()
        start = end - timedelta(days=args.days - 1)
        print(f"generating sample data for {start} .. {end} (seed {args.seed}) ...", flush=True)
        generate(data.root, start, end, seed=args.seed)
        _price_the_self_hosted_model(data, start + timedelta(days=3))
        days = _landing_days(data)
    print(f"running {len(days)} day(s) {days[0]} .. {days[-1]} through the Dagster assets ...", flush=True)
    run_days(data, days, log_level=args.log_level, progress=_progress, replay=True)
    _write_dotenv(data)
    print(f"""done. Outputs:
  warehouse (open read-only): {data.warehouse}
      python -c "import duckdb; print(duckdb.connect('{data.warehouse}', read_only=True).sql('FROM marts.cost_daily LIMIT 5'))"
  reports: {data.reports} (model cards: {data.reports / "model_cards"})
{_summary(data)}
Open the Dagster UI (runs, assets, checks):  aiso ui   (or: dagster dev, in the repo root)
Open the analysts' dashboard:                aiso dashboard""")


def _progress(line: str) -> None:
    print(line, flush=True)


def _write_dotenv(data: DataDir) -> None:
    """`dagster dev` reads .env in the repo root: point it at this data directory and its Dagster instance."""
    if not os.path.exists("workspace.yaml"):
        return
    if os.path.exists(".env"):  # replace only a .env this command wrote (nothing but its own two keys)
        with open(".env") as fh:
            keys = {line.split("=", 1)[0] for line in fh if line.strip()}
        if not keys <= {"AISO_DATA_DIR", "DAGSTER_HOME"}:
            return
    with open(".env", "w") as fh:
        fh.write(f"AISO_DATA_DIR={data.root}\nDAGSTER_HOME={data.dagster_home}\n")


def _dotenv_data_dir() -> str | None:
    if not os.path.exists(".env"):
        return None
    with open(".env") as fh:
        for line in fh:
            key, _, value = line.strip().partition("=")
            if key.strip() == "AISO_DATA_DIR":
                return value.strip().strip('"\'')
    return None


def cmd_ui(args) -> None:
    from aiso_pipeline.runner import dagster_instance

    data = data_dir(args.data_dir)
    _preflight(data)
    dagster_instance(data)  # creates <data>/.dagster with the project's instance settings
    os.environ["AISO_DATA_DIR"] = str(data.root)
    if not os.path.isfile(args.workspace):
        raise AisoError(f"no {args.workspace} here ({os.getcwd()}): run `aiso ui` in the repository root, or give "
                        f"--workspace path/to/workspace.yaml")
    # Dagster reads .env in this folder and lets it win over the environment: point ours at this data directory
    _write_dotenv(data)
    stale = _dotenv_data_dir()
    if stale is not None and Path(stale).expanduser().resolve() != data.root:
        raise AisoError(f".env in {os.getcwd()} sets AISO_DATA_DIR={stale}, which the UI would use instead of "
                        f"{data.root}: change or remove that line")
    # this interpreter's own Dagster (the venv's), whatever is on PATH and whether or not the venv is activated
    os.execv(sys.executable, [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(args.port),
                              "-w", str(args.workspace)])


def cmd_dashboard(args) -> None:
    """Build reports/dashboard/index.html from the published warehouse (read-only) and serve reports/ on
    127.0.0.1 (model cards and readout pages are linked from it), or only build it."""
    import functools
    import webbrowser

    from aiso_pipeline import dashboard

    data = data_dir(args.data_dir)
    page = dashboard.build(data.warehouse, data.reports / "dashboard")
    if args.build_only:
        print(page)
        return
    handler = functools.partial(_QuietHandler, directory=str(data.reports))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as e:
        raise AisoError(f"cannot serve on 127.0.0.1:{args.port} ({e.strerror}): pass another --port") from None
    url = f"http://127.0.0.1:{server.server_port}/dashboard/index.html"
    print(f"aiso: dashboard at {url} (file: {page}); Ctrl-C to stop", file=sys.stderr)
    if not args.no_browser:
        webbrowser.open(url)
    with server:
        server.serve_forever()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


def _preflight(data: DataDir) -> None:
    """Catch the common setup mistakes before starting Dagster, each with one clear line."""
    from aiso_pipeline.ingest.landing import require_landing
    from aiso_pipeline.ingest.prices import ensure_prices, read_prices

    for stream in ("inference", "product"):
        require_landing(data, stream)
    ensure_prices(data)
    read_prices(data.prices)
    _follow_a_move(data)


def _follow_a_move(data: DataDir) -> None:
    """A data directory moved or copied since its last publish: publish the catalog again at once (Parquet files
    are not rewritten), so analysts' views read this directory's files, not the old place's."""
    from aiso_pipeline import warehouse

    if warehouse.work_db_exists(data) and warehouse.published_elsewhere(data):
        from aiso_pipeline.runner import run_lock
        with run_lock(data):
            warehouse.publish(data)
        print(f"aiso: {data.warehouse} was published for another location: published again here", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiso", description="aiso_pipeline: AI-system observability, nightly.")
    parser.add_argument("--data-dir", help="data directory (default: $AISO_DATA_DIR, else ./data)")
    parser.add_argument("--log-level", default="CRITICAL", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                        help="Dagster log lines to print during runs (default: none; every run's logs are in the UI)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="generate sample data (when there is none) and run every day")
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="the nightly run for one day or a range of days")
    p.add_argument("--date", type=_date)
    p.add_argument("--start", type=_date)
    p.add_argument("--end", type=_date)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("generate", help="write deterministic sample landing files")
    p.add_argument("--start", type=_date)
    p.add_argument("--end", type=_date, help="default: yesterday (UTC)")
    p.add_argument("--days", type=int, default=14, help="days ending at --end when --start is not given")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--inferences-per-day", type=int, default=6000)
    p.add_argument("--format", choices=["mixed", "jsonl", "parquet"], default="mixed")
    p.add_argument("--clean", action="store_true", help="no malformed rows or files")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("ui", help="start the Dagster UI on 127.0.0.1 for this data directory")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--workspace", default="workspace.yaml")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("dashboard", help="build the analysts' dashboard from the published warehouse and serve it")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--no-browser", action="store_true", help="do not open a browser, only print the address")
    p.add_argument("--build-only", action="store_true", help="write reports/dashboard/index.html and exit")
    p.set_defaults(func=cmd_dashboard)

    args = parser.parse_args(argv)
    # SIGTERM (a `timeout`, systemd, a container stop) ends a run like Ctrl-C: the run is marked, the lock freed
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        args.func(args)
    except AisoError as e:
        print(f"aiso: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("aiso: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
