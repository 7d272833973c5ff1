"""Run the Dagster `nightly` job for days, on a Dagster instance that lives under the data directory."""
from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Iterator

import dagster as dg

from aiso_pipeline import warehouse
from aiso_pipeline.config import DataDir
from aiso_pipeline.errors import AisoError

INSTANCE_TEMPLATE = warehouse.PACKAGE_ROOT / "instance" / "dagster.yaml"


def dagster_instance(data: DataDir) -> dg.DagsterInstance:
    """The persistent Dagster instance in <data>/.dagster, so runs show up in `dagster dev`.

    Opening a fresh instance writes its settings, creates its SQLite storages and stamps their alembic versions; two
    processes doing that at once (a first `aiso run` beside `aiso ui`, or a test watching a run) can stamp two heads
    and leave the storage unopenable, so the first open is serialised by a lock file beside the settings."""
    home = data.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    with open(home / ".open.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "dagster.yaml").exists():
            shutil.copyfile(INSTANCE_TEMPLATE, home / "dagster.yaml")
        return dg.DagsterInstance.get()


def days_between(start: date, end: date) -> list[str]:
    if end < start:
        raise AisoError(f"--end {end} is before --start {start}: swap them")
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    """One line: the user-facing cause of the first failed step."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            chain = []
            while error is not None:
                chain.append(error)
                error = error.cause
            if any(e.cls_name == "DagsterAssetCheckFailedError" for e in chain):
                failed = chain[0].message.strip().splitlines()[-1]
                return (f"a blocking data-quality check failed ({failed}): see quality.check_results and "
                        f"reports/validation/, fix the input, or relax reference/validation.yaml")
            chosen = next((e for e in chain if e.cls_name == "AisoError"), chain[-1])
            lines = [line for line in chosen.message.strip().splitlines() if line.strip()]
            # an AisoError's last line is its one-line message; another error's first line says what happened
            # (DuckDB's last is a "See also" link)
            message = (lines[-1] if chosen.cls_name == "AisoError" else lines[0]) if lines else chosen.cls_name
            message = message.removeprefix("aiso_pipeline.errors.AisoError: ")
            return f"step {event.step_key} failed: {message}"
    return "the run failed (see the run's logs in the Dagster UI)"


def _interrupted(result: dg.ExecuteInProcessResult) -> bool:
    for event in result.all_events:
        error = event.step_failure_data.error if event.is_step_failure and event.step_failure_data else None
        while error is not None:
            if error.cls_name == "DagsterExecutionInterruptedError":
                return True
            error = error.cause
    return False


@contextmanager
def run_lock(data: DataDir) -> Iterator[None]:
    """One `aiso run` at a time per data directory: a second one waits here (DuckDB's own lock would fail it)."""
    data.work_db.parent.mkdir(parents=True, exist_ok=True)
    with open(data.work_db.parent / "run.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"aiso: waiting for another aiso run on {data.root} to finish ...", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield  # released when the file closes, also when the process dies


CLI_TAG = "aiso/launcher"  # on every run `aiso run` executes (in its own process, under the run lock)
LEFT_RUNNING = (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                dg.DagsterRunStatus.CANCELING)


def reclaim_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Runs `aiso run` left unfinished when its process was killed (kill -9, the OOM killer): marked failed, and
    the `duckdb` pool slots their steps held freed, or every later run waits for those slots forever. Called with
    the run lock held: no other `aiso run` of this data directory is alive, so a CLI run still running is dead.
    (Runs the UI or the daemon launched are watched by Dagster's run monitoring, see instance/dagster.yaml.)"""
    dead = instance.get_runs(filters=dg.RunsFilter(statuses=list(LEFT_RUNNING), tags={CLI_TAG: "cli"}))
    for run in dead:
        instance.report_run_failed(run, "the `aiso run` process running it ended without finishing it (killed?); "
                                        "marked failed by the next `aiso run`, which freed its pool slots")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return [run.run_id for run in dead]


# When a replayed night's nightly starts: 02:00 UTC after the day, the default schedule's tick
REPLAY_TICK = timedelta(days=1, hours=2)


def replay_tags(job_name: str, day: str) -> dict[str, str]:
    """The tags that make a run of `day` stamp its detections as the nightly would have: the seconds from now to
    02:00 UTC after the day (the anomalies asset reads them). Only the jobs that judge the day's anomalies need it."""
    from aiso_pipeline.defs.anomalies import CLOCK_OFFSET_TAG

    if job_name not in ("nightly", "marts"):
        return {}
    tick = datetime.combine(date.fromisoformat(day), datetime.min.time(), timezone.utc) + REPLAY_TICK
    return {CLOCK_OFFSET_TAG: f"{(tick - datetime.now(timezone.utc)).total_seconds():.3f}"}


def run_days(data: DataDir, days: list[str], log_level: str = "CRITICAL", progress=None,
             replay: bool = False) -> None:
    """The nightly run for each day, then publish warehouse.duckdb for analysts.

    `replay` (the demo) runs past days as their nightly would have: anomalies are stamped detected at 02:00 UTC
    after their day plus the run's own time, so the demo's drift detection delay reads as it would on the schedule
    (a backfill otherwise measures from when it ran).

    A single day runs the `nightly` job. A range runs `ingest` for every day, then `marts` for every day, so each
    day's outcomes see the next day's product events. Earlier days whose outcome window was still open when last
    joined get `refresh_outcomes` after the ingest and before the marts. One at a time per data directory.
    """
    with run_lock(data):
        _run_days(data, days, log_level, progress, replay)


def _run_days(data: DataDir, days: list[str], log_level: str, progress, replay: bool) -> None:
    from aiso_pipeline.definitions import defs
    from aiso_pipeline.defs.resources import DAILY
    from aiso_pipeline.outcomes import open_days

    instance = dagster_instance(data)
    for run_id in reclaim_dead_runs(instance):
        if progress:
            progress(f"  run {run_id[:8]} of a killed `aiso run`: marked failed, its pool slots freed")
    valid = set(DAILY.get_partition_keys(dynamic_partitions_store=instance))
    for day in days:
        if day not in valid:
            raise AisoError(f"{day} is outside the partitions ({DAILY.start.date()} .. tomorrow): pick a day in range")
    with warehouse.connect(data) as con:
        refresh = [d for d in open_days(con, days[0]) if d not in days]
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}},
                  "resources": {"warehouse": {"config": {"data_dir": str(data.root)}}}}

    def execute(job_name: str, day: str) -> None:
        started = time.perf_counter()
        result = defs.resolve_job_def(job_name).execute_in_process(
            partition_key=day, instance=instance, raise_on_error=False, run_config=run_config,
            tags={CLI_TAG: "cli", **(replay_tags(job_name, day) if replay else {})})
        if not result.success:
            if _interrupted(result):  # SIGTERM or Ctrl-C reached a step: the run stops, as the user asked
                raise KeyboardInterrupt
            # what the message points at (quality.check_results, the quarantine, the ingest log) is published;
            # the marts stay as the last successful run left them
            warehouse.publish_quality(data)
            raise AisoError(f"{job_name} run for {day} failed: {_failure_message(result)}")
        if progress:
            progress(f"  {day} {job_name}: ok ({time.perf_counter() - started:.1f} s, run {result.run_id[:8]})")

    # Every day's files first, then the earlier days whose outcome window was open (only their outcomes and
    # rollups: what late product events change), then the days' marts, so experiments and anomalies see them.
    if len(days) == 1 and not refresh:
        execute("nightly", days[0])
    else:
        for day in days:
            execute("ingest", day)
        for day in refresh:
            execute("refresh_outcomes", day)
        for day in days:
            execute("marts", day)
    publication = warehouse.publish(data)
    if progress:
        progress(f"  publish: ok ({publication.seconds:.1f} s, {len(publication.partitions)} partition(s), "
                 f"{publication.rows:,} rows)")
    from aiso_pipeline import dashboard
    dashboard.refresh(data)
