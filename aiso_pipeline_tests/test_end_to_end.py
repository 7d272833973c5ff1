"""End to end: three tiny generated days through the Dagster job, checked against what the generator planted."""
import datetime as dt

import duckdb
import pytest

from aiso_pipeline.config import data_dir
from aiso_pipeline.generate import generate
from aiso_pipeline.runner import run_days

START, END = dt.date(2025, 3, 1), dt.date(2025, 3, 3)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data = data_dir(tmp_path_factory.mktemp("e2e") / "data")
    result = generate(data.root, START, END, seed=11, inferences_per_day=1500, users=400)
    (data.reference / "monitoring.yaml").write_text("drift_reports: always\n")  # every model's Evidently page
    run_days(data, [(START + dt.timedelta(d)).isoformat() for d in range(3)])
    con = duckdb.connect(str(data.warehouse), read_only=True)
    yield data, result, con
    con.close()


def one(con, sql):
    return con.execute(sql).fetchone()[0]


def test_every_valid_row_loaded_once(world):
    _, result, con = world
    assert one(con, "SELECT count(*) FROM raw.inference_events") == result.inference_rows
    assert one(con, "SELECT count(*) FROM raw.product_events") == result.product_rows
    assert one(con, "SELECT count(*) - count(DISTINCT request_id) FROM raw.inference_events") == 0
    assert one(con, "SELECT count(*) - count(DISTINCT message_id) FROM raw.product_events") == 0


def test_every_planted_fault_is_quarantined_or_counted(world):
    _, result, con = world
    for stream in ("inference", "product"):
        rows = one(con, f"SELECT count(*) FROM quality.quarantine WHERE stream = '{stream}' AND line_number IS NOT NULL")
        assert rows == sum(result.malformed.get(stream, {}).values()), stream
        assert one(con, f"SELECT sum(rows_duplicate) FROM quality.ingest_log WHERE stream = '{stream}'") == \
            result.duplicates.get(stream, 0), stream
    whole = one(con, "SELECT count(*) FROM quality.quarantine WHERE line_number IS NULL")
    assert whole == len(result.bad_files)


def test_accounting_identity_and_log_matches_tables(world):
    _, _, con = world
    assert one(con, "SELECT count(*) FROM quality.ingest_log WHERE rows_read <> rows_loaded + rows_duplicate + rows_quarantined") == 0
    for stream in ("inference", "product"):
        assert one(con, f"SELECT sum(rows_loaded) FROM quality.ingest_log WHERE stream = '{stream}'") == \
            one(con, f"SELECT count(*) FROM raw.{stream}_events")


def test_unpriced_model_is_null_not_zero(world):
    _, _, con = world
    assert one(con, "SELECT count(*) FROM raw.inference_events WHERE cost_usd = 0 AND cost_source = 'price_table'") == 0
    assert one(con, "SELECT count(*) FROM raw.inference_events WHERE cost_usd IS NULL") == \
        one(con, "SELECT sum(rows_unpriced) FROM quality.ingest_log")


def snapshot(con) -> dict:
    """Every table's rows, without the columns that record when a row was written (*_at)."""
    tables = con.execute("SELECT DISTINCT table_schema || '.' || table_name FROM information_schema.columns "
                         "WHERE table_schema IN ('raw', 'quality', 'marts')").fetchall()
    out = {}
    for (table,) in tables:
        schema, name = table.split(".")
        cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                                          "AND table_name = ? AND column_name NOT LIKE '%\\_at' ESCAPE '\\' "
                                          "ORDER BY ordinal_position", [schema, name]).fetchall()]
        quoted = ", ".join(f'"{c}"' for c in cols)
        out[table] = sorted(map(repr, con.execute(f"SELECT {quoted} FROM {table}").fetchall()))
    return out


def test_rerunning_the_same_days_gives_identical_tables(world):
    data, _, con = world
    before = snapshot(con)
    assert before["marts.cost_daily"] and before["marts.experiment_readouts"]
    run_days(data, [(START + dt.timedelta(d)).isoformat() for d in range(3)])
    again = duckdb.connect(str(data.warehouse), read_only=True)
    after = snapshot(again)
    again.close()
    assert set(after) == set(before)
    for table in before:
        assert after[table] == before[table], table


def test_range_run_joins_next_day_outcomes(world):
    # a range runs every day's ingest before any day's outcomes: day 1 was joined with day 2's product events
    # already loaded, so its window is closed (a day-by-day order would have left it open)
    _, _, con = world
    assert one(con, f"SELECT bool_and(window_closed) FROM marts.joined_outcomes WHERE dt = '{START}'")
    assert not one(con, f"SELECT bool_or(window_closed) FROM marts.joined_outcomes WHERE dt = '{END}'")


def test_drift_marts_and_html_reports(world):
    data, _, con = world
    models = {m for (m,) in con.execute(f"SELECT DISTINCT model FROM raw.inference_events WHERE dt = '{END}'").fetchall()}
    rows = con.execute(f"SELECT model, columns_checked, reference_rows, report_path FROM marts.drift_summary "
                       f"WHERE dt = '{END}'").fetchall()
    assert {r[0] for r in rows} == models
    assert one(con, f"SELECT count(*) FROM marts.drift_metrics WHERE dt = '{END}' AND column_name = 'features.language'") > 0
    with_reference = [r for r in rows if r[2]]
    assert with_reference and all(r[1] > 0 for r in with_reference)
    for r in with_reference:
        assert r[3] and r[3].startswith(str(data.reports / "drift")) and "<!doctype html" in open(r[3]).read(200).lower()
