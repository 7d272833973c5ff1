"""Errors a user can hit end in one line on stderr and a non-zero exit."""
import pytest

from aiso_pipeline.cli import main


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("aiso: error: ")
    return lines[0]


def test_missing_data_directory(tmp_path, capsys):
    code, err = run_cli(capsys, "--data-dir", str(tmp_path / "nope"), "run", "--date", "2025-06-01")
    assert code == 1
    assert "data directory" in one_line(err) and "does not exist" in err


def test_missing_landing_folder(tmp_path, capsys):
    (tmp_path / "landing" / "inference").mkdir(parents=True)
    code, err = run_cli(capsys, "--data-dir", str(tmp_path), "run", "--date", "2025-06-01")
    assert code == 1
    assert "landing folder" in one_line(err) and "product" in err


def test_broken_price_table(data, capsys):
    data.prices.write_text("model_pattern,valid_from,input_per_mtok,output_per_mtok\ngpt-(,2024-01-01,1,2\n")
    code, err = run_cli(capsys, "--data-dir", str(data.root), "run", "--date", "2025-06-01")
    assert code == 1
    assert "line 2: model_pattern" in one_line(err)


@pytest.mark.parametrize("args,message", [
    (["run"], "say which day"),
    (["run", "--date", "2025-06-01", "--start", "2025-06-01"], "either --date or --start/--end"),
    (["run", "--start", "2025-06-03", "--end", "2025-06-01"], "before --start"),
    (["run", "--date", "2019-01-01"], "outside the partitions"),
])
def test_bad_arguments(data, capsys, args, message):
    code, err = run_cli(capsys, "--data-dir", str(data.root), *args)
    assert code == 1
    assert message in one_line(err)


def test_run_of_a_day_without_files_succeeds_and_publishes(data, capsys):
    code, _ = run_cli(capsys, "--data-dir", str(data.root), "run", "--date", "2025-06-01")
    assert code == 0
    assert data.warehouse.exists()


def _published(data, sql: str) -> list[tuple]:
    import duckdb
    con = duckdb.connect(str(data.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_day_whose_files_load_nothing_fails_naming_each_file_and_why(data, capsys):
    from aiso_pipeline_tests.conftest import land
    http_only = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "http"}, "spans": [
        {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "GET /", "kind": 2, "startTimeUnixNano": "1748772000000000000",
         "endTimeUnixNano": "1748772000100000000", "attributes": [{"key": "http.request.method", "value": {
             "stringValue": "GET"}}], "status": {}}]}]}]}
    land(data, "inference", "2025-06-01", "traces.json", [http_only])
    land(data, "inference", "2025-06-01", "notes.txt", ["just some notes"])
    code, err = run_cli(capsys, "--data-dir", str(data.root), "run", "--date", "2025-06-01")
    assert code == 1
    line = one_line(err)
    assert "no inference row loaded for 2025-06-01 from 2 landing file(s)" in line
    assert "traces.json: 1 row(s) read: 1 skipped (server span)" in line and "notes.txt: unsupported_format" in line
    # what the message points at is there to read
    assert _published(data, "SELECT source_file, rows_skipped FROM quality.ingest_log WHERE stream = 'inference' "
                            "ORDER BY 1") == [("landing/inference/dt=2025-06-01/notes.txt", 0),
                                              ("landing/inference/dt=2025-06-01/traces.json", 1)]


def test_a_blocking_check_failure_publishes_quality_and_keeps_the_last_marts(data, capsys):
    from aiso_pipeline_tests.conftest import inference, land
    land(data, "inference", "2025-06-01", "a.jsonl",
         [inference(f"r{i}", input_tokens=100, output_tokens=10, user_id="u1") for i in range(5)])
    assert run_cli(capsys, "--data-dir", str(data.root), "run", "--date", "2025-06-01")[0] == 0
    # an export whose usage sits in a key no source maps: every row would load unpriced
    land(data, "inference", "2025-06-02", "gateway.jsonl", [
        inference(f"g{i}", timestamp="2025-06-02T10:00:00Z", usage={"prompt_tokens": 100, "completion_tokens": 9})
        for i in range(5)])
    code, err = run_cli(capsys, "--data-dir", str(data.root), "run", "--date", "2025-06-02")
    assert code == 1 and "usage_keys_unmapped" in one_line(err) and "quality.check_results" in err
    assert _published(data, """SELECT dt::VARCHAR, passed, observed_value FROM quality.check_results
                               WHERE check_name = 'usage_keys_unmapped' ORDER BY dt""") == [
        ("2025-06-01", True, 0.0), ("2025-06-02", False, 1.0)]
    # the marts are those of the last successful run: nothing of the blocked day
    assert _published(data, "SELECT DISTINCT dt::VARCHAR FROM marts.cost_daily") == [("2025-06-01",)]


def test_files_quarantined_whole_are_listed_after_a_run(data, capsys):
    from aiso_pipeline_tests.conftest import inference, land
    land(data, "inference", "2025-06-01", "a.jsonl", [inference(f"r{i}") for i in range(3)])
    (data.partition_dir("inference", "2025-06-01") / "broken.gz").write_bytes(b"\x1f\x8b not really gzip")
    code = main(["--data-dir", str(data.root), "run", "--date", "2025-06-01"])
    out = capsys.readouterr().out
    assert code == 0
    assert "quarantined whole: landing/inference/dt=2025-06-01/broken.gz (unreadable_file" in out
