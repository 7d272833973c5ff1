"""Faults: arbitrary rows never crash ingestion or vanish, a killed ingest leaves consistent tables, and hostile
values (injection-like strings, edge numbers) go through the whole nightly run without loss, breakage or markup."""
import datetime
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiso_pipeline import warehouse  # noqa: F401
from aiso_pipeline.config import DataDir, data_dir
from aiso_pipeline.runner import run_days
from aiso_pipeline_tests.conftest import PRICES, inference, ingest, land, query, write_lines

DT = "2025-06-01"
KEYS = ["request_id", "gen_ai.response.id", "timestamp", "start_time", "model", "input_tokens", "output_tokens",
        "cached_input_tokens", "latency_ms", "latency_s", "status", "is_fallback", "confidence", "cost_usd",
        "sample_rate", "features", "experiment_id", "variant", "user_id", "region"]
# Raw control characters never occur unescaped in JSON; a bare CR would end a line (see README, bad input).
TEXT = st.characters(exclude_categories=("Cs", "Cc"))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                    st.text(TEXT, max_size=12), st.sampled_from(["2025-06-01T10:00:00Z", "1748772000000", "ok", "error",
                                                           "gpt-4o", "0.5", "-1", "1e400", "x'; DROP TABLE t; --"]))
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(TEXT, max_size=5), scalars, max_size=3))
rows = st.dictionaries(st.sampled_from(KEYS), values, max_size=len(KEYS))
lines = st.one_of(rows.map(json.dumps), st.text(TEXT, max_size=40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(lines, min_size=1, max_size=25))
def test_any_line_is_loaded_quarantined_or_counted_never_lost(tmp_path_factory, batch):
    data = data_dir(tmp_path_factory.mktemp("prop") / "data")
    data.reference.mkdir(parents=True)
    data.prices.write_text(PRICES)
    data.landing("product").mkdir(parents=True)
    land(data, "inference", DT, "a.jsonl", batch)
    s = ingest(data, "inference", DT)
    non_blank = sum(1 for line in batch if line.strip())
    if not non_blank:  # nothing but blank lines: the file is quarantined whole as empty
        assert s.files_quarantined == 1 and s.quarantine_reasons == {"empty_file": 1}
        return
    if not any(line.strip().startswith("{") for line in batch):  # no JSON object at all: not an export
        assert s.files_quarantined == 1 and list(s.quarantine_reasons) in (
            [r] for r in s.file_problems.values()), s
        assert next(iter(s.file_problems.values())).startswith(("unsupported_format", "unreadable_file"))
        return
    assert s.rows_read == non_blank == s.rows_loaded + s.rows_duplicate + s.rows_quarantined
    # whatever was loaded satisfies the contract's types and ranges
    bad = query(data, """SELECT count(*) FROM raw.inference_events WHERE request_id IS NULL OR model IS NULL
        OR "timestamp" IS NULL OR input_tokens < 0 OR output_tokens < 0 OR cached_input_tokens > input_tokens
        OR latency_ms < 0 OR status NOT IN ('ok', 'error', 'timeout') OR NOT (confidence BETWEEN 0 AND 1)
        OR cost_usd < 0 OR NOT (sample_rate > 0 AND sample_rate <= 1)""")
    assert bad == [(0,)]


KILLER = """
import sys
from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
from aiso_pipeline.ingest import ingest_partition
d = data_dir(sys.argv[1])
with warehouse.connect(d) as con:
    print("started", flush=True)
    ingest_partition(con, d, "inference", sys.argv[2])
"""


def test_kill_9_during_ingest_then_rerun_is_consistent(data):
    land(data, "inference", DT, "a.jsonl", [inference(f"r{i}", input_tokens=i) for i in range(150_000)] + ["broken"])
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(data.root), DT], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    time.sleep(0.5)  # mid-way through staging/parsing
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    s = ingest(data, "inference", DT)  # the database recovers from its WAL; the rerun replaces the partition
    assert (s.rows_read, s.rows_loaded, s.rows_quarantined) == (150_001, 150_000, 1)
    assert query(data, "SELECT count(*), count(DISTINCT request_id) FROM raw.inference_events") == [(150_000, 150_000)]
    assert query(data, "SELECT sum(rows_read) - sum(rows_loaded + rows_duplicate + rows_quarantined) "
                       "FROM quality.ingest_log") == [(0,)]


# ---- hostile input through the whole nightly run ------------------------------------------------------------------
# Injection-like strings in every id/name column and edge numbers in every numeric one, landed for two days and run
# through run_days (what `aiso run` does): each row is loaded, quarantined or counted; what loads comes back
# byte-identical in raw and marts; nothing is dropped, no file lands outside reports/, and no report or UI table
# is broken or carries markup from the data. One run (module fixture, ~15 s) serves every test below.

D1, D2 = "2025-06-01", "2025-06-02"
EVIL = [
    "x'); DROP TABLE raw.inference_events; --",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "a|b",
    "a/b",  # sanitizes like a|b: the two must still get two report pages
    "line1\nline2\r\nline3",
    "../../etc/passwd",
    "..",
    "L" * 10_000,
    "\u202eevil\u202c \U0001F9EA\u200d\U0001F525 e\u0301 \ufeff\u2028\u0085 \ufdfd \\|\\",  # RTL, emoji, odd
    "$(rm -rf /)`id`;|&",
]
USERS = 8  # per experiment: even k in control, odd k in the hostile variant
TABLES = {"raw.inference_events", "raw.product_events", "quality.quarantine", "quality.ingest_log",
          "quality.check_results", "marts.joined_outcomes", "marts.outcome_coverage", "marts.cost_daily",
          "marts.drift_metrics", "marts.drift_summary", "marts.experiment_readouts", "marts.anomalies"}
# What the pipeline may write: the inputs we land, its databases, the Dagster instance, and reports/.
PIPELINE_FILES = re.compile(r"(warehouse\.duckdb|\.work/.*|\.dagster/.*|reports/(experiments/[A-Za-z0-9._-]+\.md"
                            r"|drift/dt=\d{4}-\d\d-\d\d/[A-Za-z0-9._-]+\.html|validation/(inference|product)/"
                            r"dt=\d{4}-\d\d-\d\d\.json|model_cards/[A-Za-z0-9._-]+\.(md|html)|dashboard/index\.html))")


def _dumps(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False)  # raw UTF-8 in the file (U+2028, U+0085, RTL marks unescaped)


def _rid(s: str, day: str, k: int) -> str:
    return s if (day, k) == (D1, 0) else f"{s}#{day}#{k}"  # one request_id exactly the hostile string


def _uid(s: str, k: int) -> str:
    return s if k == 0 else f"{s}#u{k}"


def _cost(i: int, k: int) -> float:
    return (i + 1) * (k + 1) / 1000


def _evil_inference(i: int, s: str, day: str, k: int) -> dict:
    row = {"request_id": _rid(s, day, k), "timestamp": f"{day}T{9 + k:02d}:00:00Z", "model": s, "feature": s,
           "user_id": _uid(s, k), "experiment_id": s, "variant": "control" if k % 2 == 0 else s,
           "input_tokens": 100 + k, "output_tokens": 10 * k, "latency_ms": 100.0 + 10 * k + (day == D2),
           "cost_usd": _cost(i, k), "features": {"lang": s, "n": k, s: k % 3}}
    if k == 1:
        row["hostile_attr"] = s  # an unknown key: kept in attributes
    return row


def _evil_product(s: str, day: str, k: int) -> dict:
    return {"message_id": f"m:{_rid(s, day, k)}", "event": "Order Completed", "timestamp": f"{day}T{9 + k:02d}:30:00Z",
            "user_id": _uid(s, k), "properties": {"request_id": _rid(s, day, k), "revenue": 10.0 + k}}


def _number_row(rid: str, body: str) -> str:
    """An inference line with number text exactly as given (1e400, 9223372036854775808, -0, NaN, Infinity)."""
    return f'{{"request_id": "{rid}", "timestamp": "{D2}T12:00:00Z", "model": "gpt-4o", "feature": "numbers", ' \
           f'"user_id": "nu", {body}}}'


def _good_numbers(day: str) -> list[str]:
    return [_dumps({"request_id": f"num-{day}-{k}", "timestamp": f"{day}T12:00:00Z", "model": "gpt-4o",
                    "feature": "numbers", "user_id": f"nu{k}", "input_tokens": 1000 * k, "output_tokens": 100,
                    "latency_ms": 200.0 + k, "features": {"x": k, "c": "ab"[k % 2]}}) for k in range(6)]


# (line, expected reason) of the edge numbers whose fate the contract decides; None = loaded.
NUMBER_LINES = [
    (_number_row("n-tok30", '"input_tokens": 1e30'), "out_of_range: input_tokens"),
    (_number_row("n-tok63", '"input_tokens": 9223372036854775808'), "out_of_range: input_tokens"),
    (_number_row("n-negzero", '"input_tokens": -0, "cost_usd": -0.0, "latency_ms": -0.0, "confidence": -0.0'), None),
    (_number_row("n-lat-nan", '"latency_ms": NaN'), "out_of_range: latency_ms"),
    (_number_row("n-lat-ninf", '"latency_ms": -Infinity'), "out_of_range: latency_ms"),
    (_number_row("n-lat-s", '"latency_s": 1e306'), "out_of_range: latency_ms"),  # x 1000 overflows
    (_number_row("n-cost-inf", '"cost_usd": Infinity'), "out_of_range: cost_usd"),
    (_number_row("n-cost-400", '"cost_usd": 1e400'), "out_of_range: cost_usd"),
    (_number_row("n-conf-nan", '"confidence": NaN'), "out_of_range: confidence"),
    (_number_row("n-tok-nan", '"input_tokens": NaN'), "out_of_range: input_tokens"),
    (_number_row("n-rate-nan", '"sample_rate": NaN'), "out_of_range: sample_rate"),
    ("NaN", "unparseable"), ("Infinity", "unparseable"), ("1e400", "unparseable"),  # a bare literal: no object
]
PRODUCT_NUMBER_LINES = [
    (f'{{"message_id": "p-{name}", "event": "Order Completed", "timestamp": "{D2}T12:30:00Z", "user_id": "nu1", '
     f'"properties": {{"request_id": "num-{D2}-1", "revenue": {value}}}}}', reason)
    for name, value, reason in [
        ("negzero", "-0.0", None), ("five", "5", None),
        ("e400", "1e400", "out_of_range: properties.revenue"),  # JSON number overflow -> inf
        ("e400s", '"1e400"', "out_of_range: properties.revenue"),
        ("nan", "NaN", "out_of_range: properties.revenue"),
        ("ninf", "-Infinity", "out_of_range: properties.revenue"),
    ]
]
# Finite but absurd values whose fate the contract leaves open (ingest has no upper bound yet: see the xfail tests
# below); they sit in their own files, checked by the accounting identity only.
GAP_LINES = [
    _number_row("g-tok15", '"input_tokens": 1e15'),
    _number_row("g-tokmax", '"input_tokens": 999999999999999'),
    _number_row("g-cost", '"cost_usd": 1e308'),
    _number_row("g-cost-half", '"cost_usd": 1e308, "sample_rate": 0.5'),
    _number_row("g-lat", '"latency_ms": 1e308'),
    _number_row("g-rate", '"sample_rate": 5e-324'),  # weight 1/5e-324 = inf
    _number_row("g-feat-nan", '"features": {"x": NaN, "c": "a"}'),
    _number_row("g-feat-inf", '"features": {"x": Infinity, "c": "b"}'),
    _number_row("g-feat-big", '"features": {"x": 1e308, "c": "a"}'),
]
PRODUCT_GAP_LINES = [
    f'{{"message_id": "pg-{i}", "event": "Order Completed", "timestamp": "{D2}T12:30:00Z", "user_id": "nu", '
    f'"properties": {{"request_id": "g-cost", "revenue": 1e308}}}}' for i in range(2)
]


@dataclass
class Hostile:
    data: DataDir
    root: Path  # the temp dir holding the data directory
    expected: dict  # source_file -> (rows_read, rows_loaded, rows_duplicate, rows_quarantined)
    quarantined: dict  # (source_file, line) -> reason (or its prefix)
    gap_files: set
    inputs: set  # paths we wrote, relative to the data directory
    con: duckdb.DuckDBPyConnection | None = None  # read-only, on the published warehouse.duckdb


def _plant(data: DataDir) -> Hostile:
    expected, quarantined, inputs = {}, {}, set()

    def put(stream, day, name, lines, dup=0, reasons=None):
        write_lines(data.partition_dir(stream, day) / name, lines)
        key = f"landing/{stream}/dt={day}/{name}"
        inputs.add(key)
        bad = {i + 1: r for i, r in enumerate(reasons or []) if r}
        quarantined.update({(key, line): r for line, r in bad.items()})
        expected[key] = (len(lines), len(lines) - dup - len(bad), dup, len(bad))
        return key

    for day in (D1, D2):
        rows = [_evil_inference(i, s, day, k) for i, s in enumerate(EVIL) for k in range(USERS)]
        events = [_evil_product(s, day, k) for s in EVIL for k in range(USERS)]
        dup = 0
        if day == D2:  # a request_id and a message_id loaded on D1, and an in-file repeat of each
            rows += [_evil_inference(0, EVIL[0], D1, 0), rows[3 * USERS + 3]]
            events += [_evil_product(EVIL[0], D1, 0), events[5]]
            dup = 2
        put("inference", day, "evil.jsonl", [_dumps(r) for r in rows], dup)
        put("product", day, "evil.jsonl", [_dumps(e) for e in events], dup)
        numbers = _good_numbers(day) + ([line for line, _ in NUMBER_LINES] if day == D2 else [])
        put("inference", day, "numbers.jsonl", numbers,
            reasons=[None] * 6 + ([r for _, r in NUMBER_LINES] if day == D2 else []))
    put("product", D2, "numbers.jsonl", [line for line, _ in PRODUCT_NUMBER_LINES],
        reasons=[r for _, r in PRODUCT_NUMBER_LINES])
    gaps = {put("inference", D2, "gaps.jsonl", GAP_LINES), put("product", D2, "gaps.jsonl", PRODUCT_GAP_LINES)}
    # this run plants far more bad rows than a real day has: let the quarantine share not block it
    (data.reference / "validation.yaml").write_text(
        "inference:\n  quarantine_share: {max_share: 1.0}\nproduct:\n  quarantine_share: {max_share: 1.0}\n")
    # an Evidently page for every model, each night (the default renders them only where a shift is significant)
    (data.reference / "monitoring.yaml").write_text("drift_reports: always\n")
    inputs |= {"reference/model_prices.csv", "reference/validation.yaml", "reference/monitoring.yaml"}
    return Hostile(data, data.root.parent, expected, quarantined, gaps, inputs)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    data = data_dir(root / "data")
    for stream in ("inference", "product"):
        data.landing(stream).mkdir(parents=True)
    data.reference.mkdir(parents=True)
    data.prices.write_text(PRICES)
    h = _plant(data)
    cwd = os.getcwd()
    os.chdir(root)  # a relative write would land in root, where the walk below finds it
    try:
        run_days(data, [D1, D2])
    finally:
        os.chdir(cwd)
    con = duckdb.connect(str(data.warehouse), read_only=True)
    h.con = con
    yield h
    con.close()


def _one(con, sql, params=None):
    return con.execute(sql, params or []).fetchone()[0]


def test_hostile_every_row_is_loaded_quarantined_or_counted(hostile):
    con = hostile.con
    log = {r[0]: r[1:] for r in con.execute("SELECT source_file, rows_read, rows_loaded, rows_duplicate, "
                                            "rows_quarantined FROM quality.ingest_log").fetchall()}
    assert set(log) == set(hostile.expected)
    for src, (read, loaded, dup, quar) in log.items():
        assert read == loaded + dup + quar, src
        if src in hostile.gap_files:
            assert read == hostile.expected[src][0], src
        else:
            assert (read, loaded, dup, quar) == hostile.expected[src], src
    got = {(src, line): reason for src, line, reason in con.execute(
        "SELECT source_file, line_number, reason FROM quality.quarantine").fetchall() if src not in hostile.gap_files}
    assert set(got) == set(hostile.quarantined)
    for key, reason in hostile.quarantined.items():
        assert got[key] == reason or (reason == "unparseable" and got[key].startswith("unparseable: ")), key
    for stream in ("inference", "product"):
        assert _one(con, f"SELECT count(*) FROM raw.{stream}_events") == \
            sum(v[1] for k, v in log.items() if k.startswith(f"landing/{stream}/"))
    assert _one(con, "SELECT count(*) FROM raw.inference_events WHERE request_id = 'n-negzero' AND input_tokens = 0 "
                     "AND cost_usd = 0 AND latency_ms = 0 AND confidence = 0") == 1
    assert _one(con, "SELECT revenue FROM raw.product_events WHERE message_id = 'p-negzero'") == 0.0


def test_hostile_strings_come_back_byte_identical_in_raw_and_marts(hostile):
    con = hostile.con

    def values(sql, params=None) -> list[bytes]:
        return sorted(v.encode() for (v,) in con.execute(sql, params or []).fetchall())

    evil = sorted(s.encode() for s in EVIL)
    for column in ("model", "feature", "experiment_id"):
        assert values(f"SELECT DISTINCT {column} FROM raw.inference_events WHERE feature NOT IN "
                      f"('numbers')") == evil, column
    for i, s in enumerate(EVIL):
        assert values("SELECT request_id FROM raw.inference_events WHERE request_id = ?", [s]) == [s.encode()]
        assert values("SELECT user_id FROM raw.inference_events WHERE user_id = ?", [s]) == [s.encode()] * 2
        assert values("SELECT DISTINCT variant FROM raw.inference_events WHERE experiment_id = ?", [s]) == \
            sorted([b"control", s.encode()])
        attrs = con.execute("SELECT attributes FROM raw.inference_events WHERE request_id = ?",
                            [_rid(s, D1, 1)]).fetchone()[0]
        assert json.loads(attrs) == {"hostile_attr": s}
        assert values("SELECT request_id FROM raw.product_events WHERE request_id = ?", [s]) == [s.encode()]
        assert values("SELECT message_id FROM raw.product_events WHERE message_id = ?", [f"m:{s}"]) == \
            [f"m:{s}".encode()]
        # marts, with figures computed here from what was planted
        assert con.execute("SELECT has_outcome, converted, revenue, cost_usd, user_id FROM marts.joined_outcomes "
                           "WHERE request_id = ?", [s]).fetchall() == [(True, True, 10.0, _cost(i, 0), s)]
        for day in (D1, D2):
            requests, cost, tokens = con.execute(
                "SELECT requests, cost_usd, input_tokens FROM marts.cost_daily WHERE dt = ? AND model = ? "
                "AND feature = ?", [day, s, s]).fetchone()
            assert requests == USERS and tokens == sum(100 + k for k in range(USERS))
            assert cost == pytest.approx(sum(_cost(i, k) for k in range(USERS)))
            assert con.execute("SELECT join_rate FROM marts.outcome_coverage WHERE dt = ? AND model = ? AND "
                               "feature = ?", [day, s, s]).fetchall() == [(1.0,)]
        readout = con.execute("SELECT DISTINCT variant, control_variant, units, control_units FROM "
                              "marts.experiment_readouts WHERE dt = ? AND experiment_id = ?", [D2, s]).fetchall()
        assert readout == [(s, "control", USERS // 2, USERS // 2)]
        assert values("SELECT DISTINCT model FROM marts.drift_summary WHERE model = ?", [s]) == [s.encode()]
        assert values("SELECT DISTINCT column_name FROM marts.drift_metrics WHERE column_name = ?",
                      [f"features.{s}"]) == [f"features.{s}".encode()]
    assert values("SELECT DISTINCT experiment_id FROM marts.experiment_readouts WHERE dt = ?", [D2]) == evil
    assert values("SELECT DISTINCT model FROM marts.cost_daily WHERE feature <> 'numbers'") == evil


def test_hostile_run_drops_no_table(hostile):
    tables = {f"{s}.{t}" for s, t in hostile.con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
    assert TABLES <= tables
    for table in TABLES - {"marts.anomalies"}:  # anomalies need 4 days of history
        assert _one(hostile.con, f"SELECT count(*) FROM {table}") > 0, table


def test_hostile_run_writes_nothing_outside_reports(hostile):
    data, root = hostile.data, hostile.root.resolve()
    reports = data.reports.resolve()
    for path in root.rglob("*"):
        assert not path.is_symlink(), path
        if path.is_dir():
            continue
        rel = path.relative_to(root)
        assert rel.parts[0] == "data", f"written outside the data directory: {rel}"
        inner = rel.relative_to("data").as_posix()
        assert inner in hostile.inputs or PIPELINE_FILES.fullmatch(inner), f"unexpected file: {inner[:200]}"
        if inner.startswith("reports/"):
            assert path.resolve().is_relative_to(reports) and len(path.name.encode()) <= 255
    # every experiment and every model got its own page, although 'a|b' and 'a/b' sanitize alike
    pages = [p for p in (reports / "experiments").iterdir() if p.name != "_index.md"]
    assert len(pages) == len(EVIL)
    drift = {r for (r,) in hostile.con.execute("SELECT report_path FROM marts.drift_summary WHERE dt = ? AND "
                                               "model <> 'gpt-4o'", [D2]).fetchall()}
    assert len(drift) == len(EVIL) and None not in drift
    assert all(Path(p).resolve().is_relative_to(reports / "drift") and Path(p).is_file() for p in drift)
    cards = [p for p in (reports / "model_cards").iterdir() if p.suffix == ".html"]
    assert len(cards) == hostile.con.execute("SELECT count(DISTINCT model) FROM marts.scorecard").fetchall()[0][0]


def _table_rows_keep_their_shape(text: str, where: str) -> None:
    """Every markdown table row has as many cells as its header; no data line break starts a line."""
    def cells(line: str) -> int:
        count, i = 0, 0
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            count += line[i] == "|"
            i += 1
        return count

    header = None
    for line in text.splitlines():
        assert not line.startswith(("line2", "line3")), where
        if line.startswith("|"):
            header = header if header is not None else cells(line)
            assert cells(line) == header, f"{where}: {line[:200]}"
        else:
            header = None


MARKUP = ("<script", "</script", "<img")  # a tag from the data; escaped text (&lt;img) is fine


def test_hostile_reports_escape_markup_and_keep_tables(hostile):
    files = [p for p in hostile.data.reports.rglob("*") if p.suffix in (".md", ".html")]
    assert {p.suffix for p in files} == {".md", ".html"}
    clean = (hostile.data.reports / "drift" / f"dt={D2}" / "gpt-4o.html").read_text()  # no markup in its data
    for path in files:
        text = path.read_text()
        if path.suffix == ".md":
            assert not any(m in text for m in MARKUP), path.name
            _table_rows_keep_their_shape(text, path.name)
        else:  # Evidently's page has its own <script> elements: the data must not open or close one
            assert "<script>alert" not in text and "<img src=x" not in text, path.name
            # the dashboard's own two script elements (its data and its code), the cards' none, Evidently's its own
            own = ([2, 2, 0] if path.parent.name == "dashboard" else [0] * len(MARKUP)
                   if path.parent.name == "model_cards" else [clean.count(m) for m in MARKUP])
            assert [text.count(m) for m in MARKUP] == own, path.name
    page = (hostile.data.reports / "experiments" / "_index.md").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a\\|b" in page


def test_hostile_dagster_metadata_escapes_markup_and_keeps_tables(hostile):
    from aiso_pipeline.runner import dagster_instance

    found = 0
    with dagster_instance(hostile.data) as instance:
        for run in instance.get_runs():
            for entry in instance.all_logs(run.run_id):
                event = entry.dagster_event
                if event is None:
                    continue
                data = event.event_specific_data
                metadata = (data.materialization.metadata if event.is_step_materialization
                            else data.metadata if event.event_type_value == "ASSET_CHECK_EVALUATION" else {})
                for key, value in metadata.items():
                    if isinstance(value, dg.MarkdownMetadataValue):
                        found += 1
                        assert not any(m in value.md_str for m in MARKUP), key
                        _table_rows_keep_their_shape(value.md_str, key)
    assert found > 20


def test_hostile_marts_hold_no_infinite_or_nan_cost(hostile):
    con = hostile.con
    for table, columns in {"marts.cost_daily": ("requests", "cost_usd", "cost_per_1k_requests", "cost_per_success",
                                                "cost_per_conversion"),
                           "marts.joined_outcomes": ("cost_usd", "weight", "revenue"),
                           "marts.outcome_coverage": ("inferences", "join_rate")}.items():
        for c in columns:
            assert _one(con, f"SELECT count(*) FROM {table} WHERE isinf({c}) OR isnan({c})") == 0, f"{table}.{c}"


def test_hostile_raw_features_are_strict_json(hostile):
    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))

    for (features,) in hostile.con.execute("SELECT features FROM raw.inference_events WHERE features IS NOT NULL"
                                           ).fetchall():
        strict(features)


# ---- the helpers behind the fixes above, on their own (no run) ------------------------------------------------------

def test_report_file_names_are_stable_distinct_and_short():
    from aiso_pipeline.text import safe_slug

    assert safe_slug("confidence_threshold") == "confidence_threshold"  # plain ids keep their page name
    slugs = [safe_slug(s) for s in EVIL + ["a_b", "a b", "_index", ".hidden", "", "/etc/passwd"]]
    assert len(set(slugs)) == len(slugs)  # 'a|b', 'a/b', 'a_b', 'a b' each get their own file
    for slug in slugs:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", slug) and len(slug.encode()) <= 100, slug
    assert safe_slug("a/b") == safe_slug("a/b")


def test_markdown_cells_escape_markup_pipes_and_line_breaks():
    from aiso_pipeline.defs.metadata import RawMarkdown, markdown_table
    from aiso_pipeline.text import md_text

    assert md_text("<b>a|b</b>") == "&lt;b&gt;a\\|b&lt;/b&gt;"
    assert md_text("a\\|b") == "a\\\\\\|b"  # the data's backslash cannot escape the escaping of the pipe
    assert md_text("x\r\ny\nz\u2028w") == "x y z w" and md_text("[x](javascript:1)") == "\\[x\\](javascript:1)"
    table = markdown_table(["model", "report"], [(s, RawMarkdown("[html](file:///r.html)")) for s in EVIL])
    assert "<script" not in table and table.count("[html](file:///r.html)") == len(EVIL)
    _table_rows_keep_their_shape(table, "markdown_table")
    assert len(table.splitlines()) == 2 + len(EVIL)


def test_charts_survive_overflowed_sums_and_escape_model_names():
    from aiso_pipeline.outcomes import charts

    day = datetime.date(2025, 6, 1)
    trend = charts.cost_trend([(day, "a|b", 1.0, 1.0), (day + datetime.timedelta(days=1), "a|b", math.inf, 2.0),
                               (day, "<script>", math.nan, 1.0)])
    heat = charts.latency_heatmap([(0, "line1\nline2", 1e308), (1, "line1\nline2", 5.0)])
    for text in (trend, heat):
        assert "<script" not in text
        _table_rows_keep_their_shape(text, "chart")
    assert "| a\\|b | ▅█ | $1.00 | overflow | overflow |" in trend and "| 00 | ██ 1e+308 |" in heat


def test_experiment_pages_escape_ids_and_variants():
    from aiso_pipeline.experiments import report

    rows = [dict(metric="conversion_rate", variant=v, rel_lift=0.1, ci_low=-0.1, ci_high=0.3, significant=False,
                 is_guardrail=False, metric_role="primary", ci_level=0.95) for v in EVIL]
    plot = report.forest_plot(rows)
    assert "<script" not in plot and plot.count("```") == 2 and len(plot.splitlines()) == len(EVIL) + 5
    assert max(map(len, plot.splitlines())) < 200  # a 10k-character variant is cut in the picture


def test_slack_alerts_do_not_turn_model_names_into_mentions_or_links():
    from aiso_pipeline import alerts

    row = dict(anomaly_id="ab12", dt=datetime.date(2025, 6, 10), kind="spike", model="<!channel> <https://x|y>",
               feature="a\nb", metric="cost_usd", value=5.0, baseline=1.0, threshold=2.0, severity="warning",
               z_score=7.0)
    payload = alerts.slack_payload(alerts.anomaly_alert(row, ui_url="http://127.0.0.1:3000"))
    assert "<!channel>" not in json.dumps(payload) and "&lt;!channel&gt;" in payload["text"]
    assert "\n" not in payload["text"]
    context = payload["blocks"][1]["elements"][0]["text"]
    assert "<http://127.0.0.1:3000/assets/marts/anomalies|open in Dagster>" in context  # our own link stays a link
