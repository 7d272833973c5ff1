"""How the pipeline runs itself: the nightly schedule, the landing sensor, alerts, and publishing after UI runs.

- `nightly_schedule` (02:00 UTC by default) runs yesterday, then refreshes the outcomes of the days whose outcome
  window may still be open.
- `landing_sensor` runs exactly the partitions a new or changed landing file affects; one run per set of files.
- `anomaly_alerts` alerts each new row of marts.anomalies once; `run_failure_alerts` alerts each failed run.
- `publish_warehouse` publishes warehouse.duckdb after a successful run launched from the UI, a schedule or a sensor
  (the `aiso` CLI publishes its own runs).

Sensors read the published warehouse.duckdb read-only, never the pipeline's working database, so they never take
the single DuckDB writer lock from a run. Runs themselves never collide: see aiso_pipeline/instance/dagster.yaml.
"""
import hashlib
import json
import os
import time
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Optional

import dagster as dg
import duckdb

from aiso_pipeline import alerts
from aiso_pipeline.config import STREAMS, DataDir
from aiso_pipeline.defs.anomalies import ANOMALIES
from aiso_pipeline.defs.jobs import nightly_job
from aiso_pipeline.defs.monitoring import CALIBRATION, SCORECARD, SLICES, THRESHOLD_CURVE
from aiso_pipeline.defs.outcomes import COST, COVERAGE, JOINED
from aiso_pipeline.defs.resources import DAILY, WarehouseResource
from aiso_pipeline.errors import AisoError
from aiso_pipeline.ingest.landing import partition_files
from aiso_pipeline.outcomes import load_config
from aiso_pipeline.warehouse import publish

# When the nightly schedule fires. A cron cannot be read at run time, so these two are read when the code location
# loads: set them in the environment (or the repo's .env) and restart `dagster dev` / reload the code location.
SCHEDULE_CRON = os.environ.get("AISO_SCHEDULE_CRON", "0 2 * * *")
SCHEDULE_TIMEZONE = os.environ.get("AISO_SCHEDULE_TIMEZONE", "UTC")
try:
    zoneinfo.ZoneInfo(SCHEDULE_TIMEZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
    raise AisoError(f"AISO_SCHEDULE_TIMEZONE={SCHEDULE_TIMEZONE!r} is not an IANA time zone (e.g. UTC, "
                    f"Europe/Paris)") from e
try:  # Dagster's own cron check, before the schedule is defined, so a bad value is one line
    dg.ScheduleDefinition(name="cron_check", cron_schedule=SCHEDULE_CRON, job_name="cron_check")
except dg.DagsterInvalidDefinitionError:
    raise AisoError(f"AISO_SCHEDULE_CRON={SCHEDULE_CRON!r} is not a cron schedule such as '0 2 * * *': fix it or "
                    f"unset it") from None

# Days after D whose product (and inference) data can still change D's outcomes: ceil(attribution window / 24 h),
# of the data directory's window (reference/outcomes.yaml), read when a tick runs.
OPEN_WINDOW_LOOKBACK_DAYS = 7  # the schedule also reruns days this recent still marked window_closed = false
# what a rerun of an earlier day refreshes (the `refresh_outcomes` job: the `outcomes` group, the anomalies and
# the scorecard)
OUTCOME_ASSETS = (JOINED, COVERAGE, COST, CALIBRATION, THRESHOLD_CURVE, SLICES, ANOMALIES, SCORECARD)

SENSOR_INTERVAL_SECONDS = 60
LANDING_SETTLE_SECONDS = 30  # a file changed this recently may still be being written: wait for the next tick
LANDING_SLACK_SECONDS = 300  # files changed within this much of the high-water mark are remembered one by one

ALERT_HORIZON_DAYS = 7  # anomalies older than this (before the newest day with anomalies) are not alerted
ALERTS_PER_TICK = 25
ALERT_TIME_BUDGET_SECONDS = 40  # stop sending before the sensor's own timeout; the rest go next tick
ALERT_RETRY = alerts.Retry()  # 4 attempts, 0.5 s backoff doubling: at most ~24 s for one alert
UI_URL_ENV = "AISO_UI_URL"  # optional, e.g. http://127.0.0.1:3000: alerts link to the run or asset

ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
          dg.DagsterRunStatus.CANCELING]


def _read_published(data: DataDir, query: str, params: Optional[list] = None) -> list[tuple]:
    """Rows from the published warehouse.duckdb, opened read-only and closed at once.

    Raises FileNotFoundError when nothing was published yet and duckdb.Error when the file is locked (an analyst
    opened it read-write) or lacks the table.
    """
    if not data.warehouse.exists():
        raise FileNotFoundError(data.warehouse)
    con = duckdb.connect(str(data.warehouse), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def _partition_keys() -> set[str]:
    return set(DAILY.get_partition_keys())


# ---- nightly schedule ------------------------------------------------------------------------------------------

def nightly_days(today: date, open_days: list[str] = (), window_days: int = 1) -> list[str]:
    """Yesterday, the `window_days` before it, and any recent day whose window was still open when last computed;
    newest first, so a day's later product events are loaded before the day is recomputed."""
    yesterday = today - timedelta(days=1)
    days = {(yesterday - timedelta(days=i)).isoformat() for i in range(window_days + 1)}
    days |= {d for d in open_days if d < yesterday.isoformat()}
    return sorted(days & _partition_keys(), reverse=True)


def _open_days(data: DataDir, today: date) -> list[str]:
    try:
        rows = _read_published(data, """SELECT DISTINCT CAST(dt AS VARCHAR) FROM marts.joined_outcomes
                                         WHERE dt >= ?::DATE - ?::INTEGER AND dt < ?::DATE AND NOT window_closed""",
                               [today, OPEN_WINDOW_LOOKBACK_DAYS + 1, today])
    except (FileNotFoundError, duckdb.Error):
        return []
    return [d for (d,) in rows]


@dg.schedule(
    name="nightly_schedule",
    job=nightly_job,
    cron_schedule=SCHEDULE_CRON,
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night (02:00 UTC unless AISO_SCHEDULE_CRON / AISO_SCHEDULE_TIMEZONE say otherwise): the "
                "nightly job for yesterday (the last complete UTC day), then for the days before it whose outcome "
                "window may still be open, newest first.",
)
def nightly_schedule(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
    fired = context.scheduled_execution_time or datetime.now(timezone.utc)
    today = fired.astimezone(timezone.utc).date()  # partitions are UTC days, whatever the schedule's time zone
    days = nightly_days(today, _open_days(warehouse.data(), today), load_config(warehouse.data()).window_days)
    yesterday = (today - timedelta(days=1)).isoformat()
    # Yesterday gets every asset; an earlier day only what later product events change, its outcomes and rollups
    # (the `refresh_outcomes` assets; a day whose inputs did not change is not even joined again). Runs queue in
    # this order, one at a time.
    return [dg.RunRequest(run_key=f"nightly:{fired.isoformat()}:{day}", partition_key=day,
                          asset_selection=None if day == yesterday else list(OUTCOME_ASSETS),
                          tags={"aiso/trigger": "schedule",
                                "aiso/reason": "yesterday" if day == yesterday else "outcome window open"})
            for day in days]


# ---- landing sensor ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Landed:
    stream: str
    dt: str
    source_file: str  # relative to the data directory, as in quality.ingest_log
    size: int
    mtime_ns: int
    ctime_ns: int  # changes on every write, copy, rename or move into the folder, even when mtime is preserved

    @property
    def fingerprint(self) -> str:
        return f"{self.source_file}|{self.size}|{self.mtime_ns}"

    @property
    def digest(self) -> str:
        return hashlib.sha1(self.fingerprint.encode()).hexdigest()[:16]


def scan_landing(data: DataDir) -> list[Landed]:
    """Every data file under landing/<stream>/dt=*/ (the files ingestion reads: hidden and _ files are not)."""
    found = []
    for stream in STREAMS:
        if not data.landing(stream).is_dir():
            continue
        for folder in sorted(data.landing(stream).glob("dt=*")):
            if not folder.is_dir():
                continue
            for f in partition_files(data, stream, folder.name.removeprefix("dt=")):
                try:
                    st = f.path.stat()
                except FileNotFoundError:  # removed since it was listed
                    continue
                found.append(Landed(stream, folder.name.removeprefix("dt="), f.source_file, st.st_size,
                                    st.st_mtime_ns, st.st_ctime_ns))
    return found


@dataclass(frozen=True)
class LandingCursor:
    """What the sensor has seen: a high-water mark on ctime, plus the digests of files near it.

    A file is new when its ctime is past the mark, or within LANDING_SLACK_SECONDS of it and its digest (path,
    size, mtime) is not remembered. The slack covers files landing while a scan is under way; its size is bounded
    by the files that change within the slack, not by history.
    """

    hwm_ns: int = 0
    seen: frozenset = frozenset()

    @classmethod
    def load(cls, text: Optional[str]) -> "LandingCursor":
        if not text:
            return cls()
        raw = json.loads(text)
        return cls(int(raw["hwm_ns"]), frozenset(raw["seen"]))

    def dump(self) -> str:
        return json.dumps({"hwm_ns": self.hwm_ns, "seen": sorted(self.seen)}, separators=(",", ":"))

    def advance(self, files: list[Landed], now_ns: int) -> tuple[list[Landed], "LandingCursor"]:
        """(files new since the last tick and settled, the next cursor). Unsettled files wait for a later tick."""
        slack = LANDING_SLACK_SECONDS * 10**9
        settle_before = now_ns - LANDING_SETTLE_SECONDS * 10**9
        # every write moves ctime, so a file whose ctime is older than the settle time is complete
        settled = [f for f in files if f.ctime_ns <= settle_before or f.digest in self.seen]
        new = [f for f in settled if f.ctime_ns >= self.hwm_ns - slack and f.digest not in self.seen]
        hwm = max([self.hwm_ns] + [f.ctime_ns for f in settled])
        seen = frozenset(f.digest for f in settled if f.ctime_ns >= hwm - slack)
        return new, LandingCursor(hwm, seen)


def _already_loaded(data: DataDir, files: list[Landed]) -> set[str]:
    """Digests of `files` that quality.ingest_log (published) shows loaded as they are now: same size and mtime."""
    if not files:
        return set()
    try:
        rows = _read_published(
            data, """SELECT source_file, file_bytes, epoch_us(file_mtime) FROM quality.ingest_log
                     WHERE list_contains(?, source_file)""", [sorted({f.source_file for f in files})])
    except (FileNotFoundError, duckdb.Error):
        return set()
    loaded = {}
    for source_file, size, mtime_us in rows:
        loaded.setdefault(source_file, []).append((size, mtime_us))
    return {f.digest for f in files
            if any(size == f.size and mtime_us is not None and abs(mtime_us - f.mtime_ns // 1000) <= 1000
                   for size, mtime_us in loaded.get(f.source_file, []))}


def affected_partitions(dt: str, window_days: int = 1) -> list[str]:
    """The partitions a file in dt=<dt> can change: <dt> itself and the `window_days` before it, whose joined
    outcomes read this day's events (see defs/outcomes.py)."""
    day = date.fromisoformat(dt)
    return [(day - timedelta(days=i)).isoformat() for i in range(window_days + 1)]


def landing_days_read(partition: str, window_days: int = 1) -> list[str]:
    """The landing days partition <partition> reads: itself and the `window_days` after it."""
    day = date.fromisoformat(partition)
    return [(day + timedelta(days=i)).isoformat() for i in range(window_days + 1)]


def landing_run_requests(files: list[Landed], new: list[Landed], log, window_days: int = 1) -> list[dg.RunRequest]:
    """One run per partition a new file affects, newest first. The run key hashes every file the partition reads,
    so the same files never start a second run, and any new or changed one does."""
    valid = _partition_keys()
    partitions: dict[str, int] = {}
    for f in new:
        if f.dt not in valid:
            log.warning(f"ignoring {f.source_file}: dt={f.dt} is not a partition (a day YYYY-MM-DD from "
                        f"{DAILY.start.date()} to today)")
            continue
        for p in affected_partitions(f.dt, window_days):
            if p in valid:
                partitions[p] = partitions.get(p, 0) + 1
    requests = []
    for p in sorted(partitions, reverse=True):
        reads = set(landing_days_read(p, window_days))
        digest = hashlib.sha1("\n".join(sorted(f.fingerprint for f in files if f.dt in reads)).encode())
        requests.append(dg.RunRequest(
            run_key=f"landing:{p}:{digest.hexdigest()[:16]}", partition_key=p,
            tags={"aiso/trigger": "landing", "aiso/new_files": str(partitions[p])}))
    return requests


@dg.sensor(
    name="landing_sensor",
    job=nightly_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New or changed files under landing/<stream>/dt=*/ — late files into past days included — start "
                "the nightly job for exactly the partitions they affect (their day and the days whose outcome "
                "window reaches it). Files already loaded as they are (quality.ingest_log) start nothing.",
)
def landing_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    data = warehouse.data()
    files = scan_landing(data)
    cursor = LandingCursor.load(context.cursor)
    new, next_cursor = cursor.advance(files, time.time_ns())
    loaded = _already_loaded(data, new)
    new = [f for f in new if f.digest not in loaded]
    requests = landing_run_requests(files, new, context.log, load_config(data).window_days)
    if requests:
        context.log.info(f"{len(new)} new or changed file(s): runs for {', '.join(r.partition_key for r in requests)}")
        return dg.SensorResult(run_requests=requests, cursor=next_cursor.dump())
    return dg.SensorResult(skip_reason=f"no new landing files ({len(files)} known, {len(loaded)} already loaded)",
                           cursor=next_cursor.dump())


# ---- alerts ------------------------------------------------------------------------------------------------------

ANOMALY_COLUMNS = ["anomaly_id", "dt", "kind", "model", "feature", "metric", "value", "baseline", "threshold",
                   "severity", "z_score", "score", "episode_start"]


@dg.sensor(
    name="anomaly_alerts",
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Each new row of marts.anomalies (published warehouse) becomes one alert — drift one per model "
                "and day, for columns opening an episode: a log line, and a Slack-compatible POST to "
                "$AISO_ALERT_WEBHOOK when set, with retries. Never the same alert twice (again only when its "
                "severity rises).",
)
def anomaly_alerts(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    data = warehouse.data()
    try:
        rows = _read_published(
            data, f"""SELECT {', '.join(ANOMALY_COLUMNS)} FROM marts.anomalies
                      WHERE dt >= (SELECT max(dt) FROM marts.anomalies) - {int(ALERT_HORIZON_DAYS)}
                      ORDER BY dt, severity = 'critical' DESC, anomaly_id""")
    except FileNotFoundError:
        return dg.SkipReason(f"nothing published yet at {data.warehouse}")
    except duckdb.CatalogException:
        return dg.SkipReason("the published warehouse has no marts.anomalies yet")
    except duckdb.Error as e:  # e.g. locked: someone opened warehouse.duckdb read-write
        return dg.SkipReason(f"cannot read {data.warehouse} now ({str(e).splitlines()[0]}): next tick")
    if not rows:
        return dg.SkipReason("no anomalies")
    anomalies = [dict(zip(ANOMALY_COLUMNS, r)) for r in rows]
    newest = max(a["dt"] for a in anomalies)
    ledger = alerts.Ledger(context.cursor, ALERT_HORIZON_DAYS)
    due = [u for u in alerts.alert_units(anomalies) if ledger.wants(u[0], u[1], u[2], newest)]
    ui_url = os.environ.get(UI_URL_ENV)
    deadline = time.monotonic() + ALERT_TIME_BUDGET_SECONDS
    sent = 0
    for key, day, severity, group in due[:ALERTS_PER_TICK]:
        if time.monotonic() > deadline:
            break
        alert = alerts.drift_alert(group, ui_url) if group[0]["kind"] == "drift" else alerts.anomaly_alert(group[0], ui_url)
        try:
            alerts.send(alert, context.log, retry=ALERT_RETRY)
        except alerts.DeliveryError as e:
            context.log.error(f"alert {key} not delivered, will retry next tick: {e}")
            break  # the webhook is down: keep the rest for the next tick
        ledger.record(key, day, severity)
        sent += 1
    context.update_cursor(ledger.cursor(newest))
    return dg.SkipReason(f"alerted {sent} anomal{'y' if sent == 1 else 'ies'}; {len(due) - sent} pending")


@dg.run_failure_sensor(
    name="run_failure_alerts",
    monitor_all_code_locations=True,  # CLI runs (`aiso run`) too, while the daemon is up
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Each failed run becomes one alert: a log line, and a POST to $AISO_ALERT_WEBHOOK when set.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext):
    run = context.dagster_run
    steps = [f"{e.step_key}: {alerts.error_summary(e.step_failure_data.error)}"
             for e in context.get_step_failure_events() if e.step_failure_data and e.step_failure_data.error]
    message = "\n".join(steps[:3]) or (context.failure_event.message or "the run failed")
    alert = alerts.run_failure_alert(run.job_name, run.run_id, run.tags.get("dagster/partition"), message,
                                     os.environ.get(UI_URL_ENV))
    try:
        alerts.send(alert, context.log, retry=ALERT_RETRY)
    except alerts.DeliveryError as e:
        context.log.error(f"failure alert for run {run.run_id} not delivered: {e}")


# ---- publishing after runs launched by Dagster -------------------------------------------------------------------

@dg.run_status_sensor(
    name="publish_warehouse",
    run_status=dg.DagsterRunStatus.SUCCESS,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a successful run launched from the UI, a schedule or a sensor, publish warehouse.duckdb "
                "for analysts (atomically, as `aiso run` does). Waits while other runs are queued or in progress, "
                "so analysts never see half a run; the last of them publishes.",
)
def publish_warehouse(context: dg.RunStatusSensorContext, warehouse: WarehouseResource):
    others = [r for r in context.instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE), limit=5)
              if r.run_id != context.dagster_run.run_id]
    if others:
        return dg.SkipReason(f"run {others[0].run_id} ({others[0].status.value}) is not finished: its success "
                             f"publishes")
    data = warehouse.data()
    if not data.work_db.exists():
        return dg.SkipReason(f"nothing to publish: {data.work_db} does not exist")
    record = context.instance.get_run_record_by_id(context.dagster_run.run_id)
    if record and record.end_time and data.warehouse.exists() and data.warehouse.stat().st_mtime > record.end_time:
        return dg.SkipReason("already published since this run finished")  # e.g. several successes in one tick
    path = publish(data)
    context.log.info(f"published {path} after run {context.dagster_run.run_id}")
    from aiso_pipeline import dashboard
    page = dashboard.refresh(data)
    if page is not None:
        context.log.info(f"dashboard page rebuilt: {page}")
