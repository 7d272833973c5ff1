"""The pipeline runs itself: schedule, landing sensor, alerts, publishing, and runs that never collide."""
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from aiso_pipeline import alerts, warehouse
from aiso_pipeline.definitions import defs
from aiso_pipeline.defs import orchestration as orch
from aiso_pipeline.defs.resources import WarehouseResource
from aiso_pipeline_tests.conftest import inference, land, product

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def resources(data):
    return {"warehouse": WarehouseResource(data_dir=str(data.root))}


@pytest.fixture
def settled(monkeypatch):
    """Files count as settled at once (the sensor normally waits LANDING_SETTLE_SECONDS after the last write)."""
    monkeypatch.setattr(orch, "LANDING_SETTLE_SECONDS", 0)


def tick(sensor, resources, cursor=None, instance=None):
    """Evaluate a sensor once; returns (run requests, new cursor, skip message)."""
    context = dg.build_sensor_context(cursor=cursor, resources=resources, instance=instance, definitions=defs)
    result = sensor.evaluate_tick(context)
    skip = result.skip_message
    return list(result.run_requests or []), result.cursor, skip


def land_day(data, dt: str, name: str = "a.jsonl", n: int = 3, prefix: str = ""):
    land(data, "inference", dt, name,
         [inference(f"{prefix}{dt}-{i}", timestamp=f"{dt}T10:00:00Z", user_id=f"u{i}") for i in range(n)])


# ---- landing sensor ----------------------------------------------------------------------------------------------

def test_landing_sensor_runs_exactly_the_affected_partitions_once(data, resources, settled):
    land_day(data, "2025-06-01")
    land_day(data, "2025-06-02")
    land(data, "product", "2025-06-02", "p.jsonl", [product("m1", timestamp="2025-06-02T11:00:00Z")])
    land(data, "inference", "2025-06-02", "_SUCCESS", ["not data"])  # marker files are not data

    requests, cursor, _ = tick(orch.landing_sensor, resources)
    # a day's files affect that day and, through the 24 h attribution window, the day before
    assert [r.partition_key for r in requests] == ["2025-06-02", "2025-06-01", "2025-05-31"]
    assert all(r.tags["aiso/trigger"] == "landing" for r in requests)
    assert len({r.run_key for r in requests}) == 3

    # the same files again: nothing, and the cursor stays small
    again, cursor2, skip = tick(orch.landing_sensor, resources, cursor)
    assert again == [] and "no new landing files" in skip
    assert len(json.loads(cursor2)["seen"]) == 3


def test_late_file_into_a_past_day_reruns_that_day(data, resources, settled):
    for dt in ("2025-06-01", "2025-06-02", "2025-06-03"):
        land_day(data, dt)
    first, cursor, _ = tick(orch.landing_sensor, resources)
    keys = {r.partition_key: r.run_key for r in first}

    land_day(data, "2025-06-01", name="late.jsonl", prefix="late-")
    late, cursor, _ = tick(orch.landing_sensor, resources, cursor)
    assert [r.partition_key for r in late] == ["2025-06-01", "2025-05-31"]
    assert late[0].run_key != keys["2025-06-01"]  # new files: a new run, not deduplicated away

    # a file rewritten in place (new size) is a change too
    land_day(data, "2025-06-03", n=5)
    changed, cursor, _ = tick(orch.landing_sensor, resources, cursor)
    assert [r.partition_key for r in changed] == ["2025-06-03", "2025-06-02"]


def test_file_copied_with_its_old_mtime_is_still_new(data, resources, settled):
    land_day(data, "2025-06-02")
    _, cursor, _ = tick(orch.landing_sensor, resources)
    old = land(data, "inference", "2025-06-01", "restored.jsonl", [inference("x1", timestamp="2025-06-01T09:00:00Z")])
    os.utime(old, (1_700_000_000, 1_700_000_000))  # like `cp -p` or rsync -t: mtime from 2023
    requests, _, _ = tick(orch.landing_sensor, resources, cursor)
    assert [r.partition_key for r in requests] == ["2025-06-01", "2025-05-31"]


def test_same_files_give_the_same_run_keys_so_no_duplicate_run(data, resources, settled):
    land_day(data, "2025-06-01")
    first, _, _ = tick(orch.landing_sensor, resources)
    # even with the cursor lost, the run keys are those of the runs already requested: Dagster skips them
    replay, _, _ = tick(orch.landing_sensor, resources, cursor=None)
    assert [r.run_key for r in replay] == [r.run_key for r in first]


def test_files_already_loaded_start_no_run(data, resources, settled):
    """After `aiso run` loaded and published the files, the sensor's first tick has nothing to do."""
    land_day(data, "2025-06-01")
    land(data, "product", "2025-06-01", "p.jsonl", [product("m1")])
    from aiso_pipeline.ingest import ingest_partition
    with warehouse.connect(data) as con:
        for stream in ("inference", "product"):
            ingest_partition(con, data, stream, "2025-06-01")
    warehouse.publish(data)

    requests, _, skip = tick(orch.landing_sensor, resources)
    assert requests == [] and "2 already loaded" in skip


def test_unsettled_files_wait_for_a_later_tick(data, resources, monkeypatch):
    land_day(data, "2025-06-01")
    requests, cursor, _ = tick(orch.landing_sensor, resources)
    assert requests == []  # written a moment ago: may still be being written
    monkeypatch.setattr(orch, "LANDING_SETTLE_SECONDS", 0)
    requests, _, _ = tick(orch.landing_sensor, resources, cursor)
    assert [r.partition_key for r in requests] == ["2025-06-01", "2025-05-31"]


def test_bad_partition_folders_are_ignored(data, resources, settled):
    land_day(data, "2025-06-01")
    land(data, "inference", "yesterday", "a.jsonl", [inference("y1")])
    land(data, "inference", "2099-01-01", "a.jsonl", [inference("y2")])
    requests, _, _ = tick(orch.landing_sensor, resources)
    assert [r.partition_key for r in requests] == ["2025-06-01", "2025-05-31"]


def test_missing_landing_folders_are_not_an_error(tmp_path):
    res = {"warehouse": WarehouseResource(data_dir=str(tmp_path / "empty"))}
    requests, _, skip = tick(orch.landing_sensor, res)
    assert requests == [] and "no new landing files" in skip


def test_landing_cursor_is_bounded_by_the_slack_not_by_history():
    second = 10**9
    files = [orch.Landed("inference", "2025-06-01", f"landing/inference/dt=2025-06-01/f{i}.jsonl", 10, i, i * second)
             for i in range(1000)]  # one file a second for 1000 s
    new, cursor = orch.LandingCursor().advance(files, now_ns=2000 * second)
    assert len(new) == 1000
    assert cursor.hwm_ns == 999 * second
    assert len(cursor.seen) == orch.LANDING_SLACK_SECONDS + 1  # only the files near the mark are remembered
    new, _ = cursor.advance(files, now_ns=2000 * second)
    assert new == []
    # round-trips through its JSON text
    assert orch.LandingCursor.load(cursor.dump()) == cursor


# ---- schedule ----------------------------------------------------------------------------------------------------

def test_schedule_is_nightly_at_two_utc():
    assert orch.nightly_schedule.cron_schedule == "0 2 * * *"
    assert orch.nightly_schedule.execution_timezone == "UTC"
    assert orch.nightly_schedule.job_name == "nightly"


def test_schedule_time_and_zone_come_from_the_environment_at_load():
    code = ("from aiso_pipeline.defs.orchestration import nightly_schedule as s; "
            "print(s.cron_schedule, s.execution_timezone)")
    env = {**os.environ, "PYTHONPATH": str(REPO), "AISO_SCHEDULE_CRON": "30 4 * * 1-5",
           "AISO_SCHEDULE_TIMEZONE": "Europe/Paris"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["30", "4", "*", "*", "1-5", "Europe/Paris"], out.stderr[-2000:]
    env["AISO_SCHEDULE_TIMEZONE"] = "Mars/Olympus"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "AISO_SCHEDULE_TIMEZONE='Mars/Olympus' is not an IANA time zone" in out.stderr


def evaluate_schedule(resources, when: datetime) -> list[dg.RunRequest]:
    context = dg.build_schedule_context(scheduled_execution_time=when, resources=resources,
                                        repository_def=defs.get_repository_def())
    return list(orch.nightly_schedule.evaluate_tick(context).run_requests)


def test_schedule_runs_yesterday_then_the_open_outcome_window(resources):
    requests = evaluate_schedule(resources, datetime(2025, 6, 10, 2, 0, tzinfo=timezone.utc))
    assert [r.partition_key for r in requests] == ["2025-06-09", "2025-06-08"]
    assert [r.tags["aiso/reason"] for r in requests] == ["yesterday", "outcome window open"]
    # yesterday: every asset; the day before: only its outcomes and rollups, not a second ingest, drift, ...
    assert requests[0].asset_selection is None
    assert {k.to_user_string() for k in requests[1].asset_selection} == {
        "marts/joined_outcomes", "marts/outcome_coverage", "marts/cost_daily", "marts/calibration",
        "marts/threshold_curve", "marts/slice_metrics", "marts/anomalies", "marts/scorecard"}
    refresh = defs.resolve_job_def("refresh_outcomes").asset_layer.selected_asset_keys
    assert {k.to_user_string() for k in requests[1].asset_selection} == {k.to_user_string() for k in refresh}
    assert len({r.run_key for r in requests}) == 2


def test_schedule_also_reruns_recent_days_still_marked_open(data, resources):
    con = duckdb.connect(str(data.warehouse))
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.joined_outcomes (dt DATE, request_id VARCHAR, window_closed BOOLEAN)")
    con.execute("""INSERT INTO marts.joined_outcomes VALUES ('2025-06-05', 'a', false), ('2025-06-06', 'b', true),
                   ('2025-05-20', 'c', false)""")  # 05-20: open but too old to chase
    con.close()
    requests = evaluate_schedule(resources, datetime(2025, 6, 10, 2, 0, tzinfo=timezone.utc))
    assert [r.partition_key for r in requests] == ["2025-06-09", "2025-06-08", "2025-06-05"]


def test_nightly_days_stay_inside_the_partitions():
    assert orch.nightly_days(date(2024, 1, 2)) == ["2024-01-01"]  # the partitions start on 2024-01-01


# ---- webhook delivery ----------------------------------------------------------------------------------------------

class Hook:
    """A local webhook receiver on 127.0.0.1 (random port) that answers with the given status codes in turn."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"nope")

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(monkeypatch):
    h = Hook()
    monkeypatch.setenv(alerts.WEBHOOK_ENV, h.url)
    monkeypatch.setattr(orch, "ALERT_RETRY", alerts.Retry(attempts=3, backoff_seconds=0.01, timeout_seconds=2))
    yield h
    h.close()


FAST = alerts.Retry(attempts=3, backoff_seconds=0.01, timeout_seconds=2)


def test_webhook_payload_is_slack_compatible_and_retried_after_a_500():
    h = Hook(statuses=[500, 200])
    try:
        alert = alerts.Alert("critical", "cost_usd spike on gpt-4o / chat for 2025-06-14: 152.3",
                             "baseline 30.1", "anomaly_id a1")
        attempts = alerts.post_json(h.url, alerts.slack_payload(alert), FAST)
    finally:
        h.close()
    assert attempts == 2 and len(h.received) == 2
    payload = h.received[-1]
    assert payload["text"] == "[critical] cost_usd spike on gpt-4o / chat for 2025-06-14: 152.3"
    assert payload["blocks"][0]["type"] == "section" and "baseline 30.1" in payload["blocks"][0]["text"]["text"]
    assert payload["blocks"][1]["type"] == "context"


def test_webhook_gives_up_after_bounded_retries_and_never_retries_a_4xx():
    down, refused = Hook(statuses=[503]), Hook(statuses=[404])
    waits = []
    try:
        with pytest.raises(alerts.DeliveryError, match="failed 3 times"):
            alerts.post_json(down.url, {"text": "x"}, alerts.Retry(attempts=3, backoff_seconds=1), sleep=waits.append)
        with pytest.raises(alerts.DeliveryError, match="HTTP 404"):
            alerts.post_json(refused.url, {"text": "x"}, FAST)
    finally:
        down.close()
        refused.close()
    assert waits == [1, 2]  # exponential backoff
    assert len(down.received) == 3 and len(refused.received) == 1


def test_alert_text_carries_units_baseline_and_a_link():
    row = dict(anomaly_id="ab12", dt=date(2025, 6, 10), kind="spike", model="claude", feature="chat",
               metric="latency_p95_ms", value=1200.0, baseline=900.0, threshold=1100.0, severity="critical",
               z_score=7.5)
    alert = alerts.anomaly_alert(row, ui_url="http://127.0.0.1:3000/")
    assert alert.text == "[critical] latency_p95_ms spike on claude / chat for 2025-06-10: 1,200 ms"
    assert alert.details == "baseline (trailing median) 900 ms, threshold 1,100 ms, robust z +7.5"
    assert "http://127.0.0.1:3000/assets/marts/anomalies" in alert.context
    rate = alerts.anomaly_alert({**row, "metric": "error_rate", "value": 0.05, "baseline": 0.02, "threshold": 0.035})
    assert rate.title.endswith(": 5.0%") and "baseline (trailing median) 2.0%" in rate.details


# ---- anomaly alerts sensor ------------------------------------------------------------------------------------------

def publish_anomalies(data, rows):
    """A published warehouse.duckdb holding marts.anomalies rows (dt, kind, model, feature, metric, severity)."""
    from aiso_pipeline import anomalies
    data.warehouse.unlink(missing_ok=True)
    con = duckdb.connect(str(data.warehouse))
    anomalies.ensure_table(con)
    for dt, kind, model, feature, metric, severity in rows:
        con.execute("""INSERT INTO marts.anomalies (dt, kind, model, feature, metric, value, baseline, threshold,
                       severity, z_score, anomaly_id, detected_at)
                       VALUES (?, ?, ?, ?, ?, 5.0, 1.0, 2.0, ?, 9.0, md5(concat_ws('|', ?, ?, ?, ?, ?))[:16], now())""",
                    [dt, kind, model, feature, metric, severity, dt, kind, model, feature or "", metric])
    con.close()


def test_each_anomaly_is_alerted_once(data, resources, hook):
    publish_anomalies(data, [("2025-06-10", "spike", "gpt-4o", "chat", "cost_usd", "critical"),
                             ("2025-06-10", "drop", "gpt-4o", "search", "requests", "warning")])
    _, cursor, skip = tick(orch.anomaly_alerts, resources)
    assert "alerted 2 anomalies" in skip
    assert sorted(p["text"] for p in hook.received) == [
        "[critical] cost_usd spike on gpt-4o / chat for 2025-06-10: $5",
        "[warning] requests drop on gpt-4o / search for 2025-06-10: 5"]

    # a rerun republishes the same anomalies (same ids): no second alert
    publish_anomalies(data, [("2025-06-10", "spike", "gpt-4o", "chat", "cost_usd", "critical"),
                             ("2025-06-10", "drop", "gpt-4o", "search", "requests", "warning")])
    _, cursor, skip = tick(orch.anomaly_alerts, resources, cursor)
    assert len(hook.received) == 2 and "alerted 0" in skip

    # a new one, and an escalation, are alerted; the old critical one is not; a model's drifted columns and its
    # dataset drift make one alert
    publish_anomalies(data, [("2025-06-10", "spike", "gpt-4o", "chat", "cost_usd", "critical"),
                             ("2025-06-10", "drop", "gpt-4o", "search", "requests", "critical"),
                             ("2025-06-11", "drift", "gpt-4o", None, "dataset_drift", "warning"),
                             ("2025-06-11", "drift", "gpt-4o", None, "drift:input_tokens", "warning"),
                             ("2025-06-11", "drift", "gpt-4o", None, "drift:features.language", "warning")])
    _, cursor, _ = tick(orch.anomaly_alerts, resources, cursor)
    assert len(hook.received) == 4
    assert sorted(p["text"].split(" for ")[0] for p in hook.received[2:]) == [
        "[critical] requests drop on gpt-4o / search", "[warning] drift on gpt-4o"]


def test_alerts_wait_while_the_webhook_is_down(data, resources, hook):
    publish_anomalies(data, [("2025-06-10", "spike", "gpt-4o", "chat", "cost_usd", "critical")])
    hook.statuses = [500]
    _, cursor, skip = tick(orch.anomaly_alerts, resources)
    assert "alerted 0" in skip and "1 pending" in skip and len(hook.received) == 3  # 3 attempts
    hook.statuses = [200]
    _, cursor, skip = tick(orch.anomaly_alerts, resources, cursor)
    assert "alerted 1 anomaly" in skip
    _, _, skip = tick(orch.anomaly_alerts, resources, cursor)
    assert "alerted 0" in skip


def test_alerts_without_webhook_are_log_lines(data, resources, monkeypatch, capfd):
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    publish_anomalies(data, [("2025-06-10", "spike", "gpt-4o", "chat", "cost_usd", "critical")])
    _, _, skip = tick(orch.anomaly_alerts, resources)
    assert "alerted 1 anomaly" in skip
    assert "ALERT [critical] cost_usd spike on gpt-4o / chat for 2025-06-10" in capfd.readouterr().err


def test_old_anomalies_are_not_alerted_and_leave_the_cursor(data, resources, hook):
    publish_anomalies(data, [("2025-05-01", "spike", "m", "f", "cost_usd", "warning"),
                             ("2025-06-10", "spike", "m", "f", "cost_usd", "warning")])
    _, cursor, _ = tick(orch.anomaly_alerts, resources)
    assert [p["text"].split(" for ")[1] for p in hook.received] == ["2025-06-10: $5"]
    assert list(json.loads(cursor)["sent"].values()) == [["2025-06-10", 1]]


def test_alert_sensor_skips_when_nothing_is_published_or_the_file_is_locked(data, resources):
    _, _, skip = tick(orch.anomaly_alerts, resources)
    assert "nothing published yet" in skip
    publish_anomalies(data, [])
    # someone holds warehouse.duckdb open read-write in another process: skip the tick, don't fail
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
         "time.sleep(60)", str(data.warehouse)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        _, _, skip = tick(orch.anomaly_alerts, resources)
        assert "cannot read" in skip and "next tick" in skip
    finally:
        holder.kill()
        holder.wait()


# ---- run status sensors --------------------------------------------------------------------------------------------

@dg.op
def boom():
    from aiso_pipeline.errors import AisoError
    raise AisoError("price table line 2: model_pattern is not a regular expression")


@dg.op
def fine():
    return 1


def run_job(op_fn, instance):
    job = dg.GraphDefinition(name="tiny", node_defs=[op_fn]).to_job()
    return job.execute_in_process(instance=instance, raise_on_error=False)


def test_a_failed_run_is_alerted(hook):
    instance = dg.DagsterInstance.ephemeral()
    result = run_job(boom, instance)
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts", dagster_event=result.get_run_failure_event(), dagster_instance=instance,
        dagster_run=result.dagster_run).for_run_failure()
    orch.run_failure_alerts(context)
    assert len(hook.received) == 1
    payload = hook.received[0]
    assert payload["text"] == "[critical] run of tiny failed"
    assert "boom: price table line 2: model_pattern is not a regular expression" in payload["blocks"][0]["text"]["text"]
    assert result.run_id in payload["blocks"][1]["elements"][0]["text"]


def test_no_publish_while_another_run_is_in_progress(data, resources):
    """Publishing then would copy half of that run; its own success publishes."""
    with warehouse.connect(data):
        pass
    instance = dg.DagsterInstance.ephemeral()
    done = run_job(fine, instance)
    release, started = threading.Event(), threading.Event()

    @dg.op
    def slow():
        started.set()
        release.wait(30)

    other = threading.Thread(target=run_job, args=(slow, instance))
    other.start()
    try:
        assert started.wait(30)
        context = dg.build_run_status_sensor_context(
            sensor_name="publish_warehouse", dagster_event=done.get_run_success_event(), dagster_instance=instance,
            dagster_run=done.dagster_run, resources=resources)
        assert "(STARTED) is not finished" in orch.publish_warehouse(context).skip_message
        assert not data.warehouse.exists()
    finally:
        release.set()
        other.join()


def test_a_successful_dagster_run_publishes_the_warehouse(data, resources):
    with warehouse.connect(data) as con:
        con.execute("CREATE TABLE marts.published_marker AS SELECT 42 AS x")
    instance = dg.DagsterInstance.ephemeral()
    result = run_job(fine, instance)
    context = dg.build_run_status_sensor_context(
        sensor_name="publish_warehouse", dagster_event=result.get_run_success_event(), dagster_instance=instance,
        dagster_run=result.dagster_run, resources=resources)
    orch.publish_warehouse(context)
    con = duckdb.connect(str(data.warehouse), read_only=True)
    assert con.execute("SELECT x FROM marts.published_marker").fetchone() == (42,)
    con.close()
    # the same success seen again (or a second success in the same tick): the published file already has it
    published = data.warehouse.stat().st_mtime_ns
    assert "already published" in orch.publish_warehouse(context).skip_message
    assert data.warehouse.stat().st_mtime_ns == published


# ---- concurrency: runs never collide, analysts never block ---------------------------------------------------------

def tiny_landing(data, days):
    for i, dt in enumerate(days):
        land(data, "inference", dt, "a.jsonl",
             [inference(f"{dt}-{j}", timestamp=f"{dt}T10:0{j}:00Z", user_id=f"u{j}", input_tokens=100,
                        output_tokens=20, latency_ms=100 + j, feature="chat") for j in range(5)])
        land(data, "product", dt, "p.jsonl",
             [product(f"{dt}-m{j}", timestamp=f"{dt}T11:00:00Z", user_id=f"u{j}", request_id=f"{dt}-{j}")
              for j in range(2)])


RUN_DAYS = "import sys; from aiso_pipeline.config import data_dir; from aiso_pipeline.runner import run_days; " \
           "run_days(data_dir(sys.argv[1]), sys.argv[2].split(','))"


def subprocess_env(data) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "AISO_ALERT_WEBHOOK")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["AISO_DATA_DIR"] = str(data.root)
    return env



def test_a_writer_waits_for_another_instead_of_failing(data):
    with warehouse.connect(data):
        pass  # the working database exists

    def while_held(write) -> float:
        """Seconds `write` took while another process (a step of another run, a publish) held the database."""
        holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                                   "print('open', flush=True); time.sleep(1.5); c.close()", str(data.work_db)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "open"
            started = time.monotonic()
            write()  # DuckDB alone fails at once with "Could not set lock on file"
            return time.monotonic() - started
        finally:
            holder.kill()
            holder.wait()

    def open_and_write():
        with warehouse.connect(data) as con:
            con.execute("CREATE OR REPLACE TABLE marts.waited AS SELECT 1 AS x")

    assert while_held(open_and_write) > 0.5
    assert while_held(lambda: warehouse.publish(data)) > 0.5


def test_two_overlapping_runs_never_hit_the_duckdb_lock(data, monkeypatch):
    from aiso_pipeline import runner
    monkeypatch.setenv("DAGSTER_HOME", str(data.dagster_home))  # dagster_instance sets it; restore it afterwards
    days = ["2025-06-01", "2025-06-02"]
    tiny_landing(data, days)
    runner.dagster_instance(data)  # created once, as by any earlier run
    env = subprocess_env(data)
    procs = [subprocess.Popen([sys.executable, "-c", RUN_DAYS, str(data.root), day], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for day in days]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert "Could not set lock" not in out
        assert p.returncode == 0, out[-3000:]
    con = duckdb.connect(str(data.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM raw.inference_events").fetchone() == (10,)
    con.close()


ANALYST = textwrap.dedent("""
    import duckdb, sys
    con = duckdb.connect(sys.argv[1], read_only=True)
    count = lambda c: c.execute("SELECT count(*) FROM raw.inference_events").fetchone()[0]
    print("before", count(con), flush=True)
    sys.stdin.readline()                       # the pipeline runs meanwhile
    print("held", count(con), flush=True)      # same connection: still the old snapshot
    con.close()
    con = duckdb.connect(sys.argv[1], read_only=True)
    print("reopened", count(con), flush=True)
""")


def test_an_open_analyst_connection_never_blocks_a_run(data, monkeypatch):
    from aiso_pipeline.runner import run_days
    monkeypatch.setenv("DAGSTER_HOME", str(data.dagster_home))  # run_days sets it; restore it afterwards
    tiny_landing(data, ["2025-06-01", "2025-06-02"])
    run_days(data, ["2025-06-01"])
    analyst = subprocess.Popen([sys.executable, "-c", ANALYST, str(data.warehouse)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert analyst.stdout.readline().split() == ["before", "5"]
        run_days(data, ["2025-06-02"])  # publishes a new warehouse.duckdb while the analyst holds the old one
        analyst.stdin.write("go\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().split() == ["held", "5"]
        assert analyst.stdout.readline().split() == ["reopened", "10"]
    finally:
        analyst.kill()
        analyst.wait()


@pytest.mark.parametrize("url", ["hooks.slack.com/services/T000/B000/SECRETXYZ",
                                 "https://hooks.slack.com/services/T000/B000/SECRET XYZ",
                                 " https://hooks.slack.com/services/T000/B000/SECRETXYZ\x7f"])
def test_a_malformed_webhook_url_never_leaks_and_never_breaks_the_sensor(data, resources, monkeypatch, caplog, capfd,
                                                                           url):
    """A webhook URL without a scheme, or with a space or a control character, is one clear logged error; the
    secret in it appears in no log line and no tick error, and the sensor keeps the alert for a later tick."""
    import logging
    monkeypatch.setenv(alerts.WEBHOOK_ENV, url)
    publish_anomalies(data, [("2025-06-10", "spike", "gpt-4o", "chat", "cost_usd", "critical")])
    caplog.set_level(logging.DEBUG)
    _, cursor, skip = tick(orch.anomaly_alerts, resources)  # raises if the tick fails
    assert "alerted 0" in skip and "1 pending" in skip
    logged = caplog.text + "".join(capfd.readouterr())
    assert "is not an http(s) URL" in logged or "not usable" in logged
    assert "SECRET" not in logged and "SECRET" not in (skip or "") and "SECRET" not in (cursor or "")


def test_the_data_directorys_window_drives_the_sensor_and_the_schedule(data, resources, settled):
    """One setting (reference/outcomes.yaml): with a 48 h window a late product file reruns the two days before
    it, and the schedule revisits two days before yesterday."""
    (data.reference / "outcomes.yaml").write_text("window_hours: 48\n")
    land(data, "product", "2025-06-12", "late.jsonl", [product("m1", timestamp="2025-06-12T01:00:00Z")])
    requests, _, _ = tick(orch.landing_sensor, resources)
    assert [r.partition_key for r in requests] == ["2025-06-12", "2025-06-11", "2025-06-10"]
    days = [r.partition_key for r in evaluate_schedule(resources, datetime(2025, 6, 15, 2, 0, tzinfo=timezone.utc))]
    assert days == ["2025-06-14", "2025-06-13", "2025-06-12"]
