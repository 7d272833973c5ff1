"""Hostile and broken input, faults and secrets (issue 16): each case as a user reaches it, through the CLI or the
Dagster definitions; nothing lost (rows read = loaded + duplicate + quarantined + skipped, per file), one clear
line for every error, nothing outside the data directory read, no secret in any log, table or report."""
import json
import os

import duckdb

from aiso_pipeline.cli import main
from aiso_pipeline.config import data_dir
from aiso_pipeline_tests.conftest import PRICES, inference, land, write_lines

DT = "2025-06-01"


def published(data, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(data.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def cli(data, *args) -> int:
    return main(["--data-dir", str(data.root), *args])


def accounting_holds(data) -> None:
    bad = published(data, """SELECT source_file FROM quality.ingest_log
                             WHERE rows_read <> rows_loaded + rows_duplicate + rows_quarantined + rows_skipped""")
    assert bad == []


def test_glob_characters_in_file_names_are_literal(data, capsys):
    land(data, "inference", DT, "x1.jsonl", [inference("plain")])
    land(data, "inference", DT, "x[1].jsonl", [inference("bracketed")])
    land(data, "inference", DT, "*.jsonl", [inference("star")])
    land(data, "inference", DT, "what?.jsonl", [inference("question")])
    assert cli(data, "run", "--date", DT) == 0
    got = dict(published(data, "SELECT source_file, rows_loaded FROM quality.ingest_log WHERE stream = 'inference'"))
    assert got == {f"landing/inference/dt={DT}/{n}": 1 for n in ("*.jsonl", "what?.jsonl", "x1.jsonl", "x[1].jsonl")}
    assert {r[0] for r in published(data, "SELECT request_id FROM raw.inference_events")} == {
        "plain", "bracketed", "star", "question"}
    accounting_holds(data)


def test_a_data_directory_with_glob_characters_reads_only_itself(tmp_path, capsys):
    datasets = {}
    for name, rid in (("dd1", "one"), ("dd[1]", "bracket")):
        d = data_dir(tmp_path / name)
        for stream in ("inference", "product"):
            d.landing(stream).mkdir(parents=True)
        d.reference.mkdir(parents=True)
        d.prices.write_text(PRICES)
        land(d, "inference", DT, "a.jsonl", [inference(rid)])
        datasets[name] = d
    assert cli(datasets["dd[1]"], "run", "--date", DT) == 0
    assert published(datasets["dd[1]"], "SELECT request_id FROM raw.inference_events") == [("bracket",)]


def test_files_in_hidden_or_temporary_folders_are_not_read(data, capsys):
    land(data, "inference", DT, "part-0.jsonl", [inference("final")])
    land(data, "inference", DT, "_temporary/0/part-0.jsonl", [inference("final"), inference("temp-only")])
    land(data, "inference", DT, ".staging/part-0.jsonl", [inference("staged")])
    assert cli(data, "run", "--date", DT) == 0
    assert published(data, "SELECT request_id, source_file FROM raw.inference_events") == [
        ("final", f"landing/inference/dt={DT}/part-0.jsonl")]


def test_a_non_utf8_file_name_is_quarantined_and_the_day_still_loads(data, capsys):
    land(data, "inference", DT, "good.jsonl", [inference("good")])
    folder = os.fsencode(data.partition_dir("inference", DT))
    with open(folder + b"/caf\xe9.jsonl", "wb") as fh:
        fh.write(json.dumps(inference("latin1")).encode() + b"\n")
    assert cli(data, "run", "--date", DT) == 0
    assert published(data, "SELECT request_id FROM raw.inference_events") == [("good",)]
    (name, error), = published(data, "SELECT source_file, file_error FROM quality.ingest_log WHERE file_error IS NOT NULL")
    assert name == f"landing/inference/dt={DT}/caf\\xe9.jsonl" and error.startswith("unsupported_file_name")
    accounting_holds(data)


def test_a_link_to_a_file_outside_the_data_directory_is_never_read(data, tmp_path, capsys):
    secret = tmp_path / "secrets.txt"
    secret.write_text('{"request_id": "AKIA-SECRET-KEY", "timestamp": "2025-06-01T10:00:00Z", "model": "x"}\n')
    land(data, "inference", DT, "good.jsonl", [inference("good")])
    os.symlink(secret, data.partition_dir("inference", DT) / "innocent.jsonl")
    inside = data.root / "elsewhere.jsonl"  # a link that stays inside the data directory is fine
    write_lines(inside, [inference("inside")])
    os.symlink(inside, data.partition_dir("inference", DT) / "inside.jsonl")
    assert cli(data, "run", "--date", DT) == 0
    assert {r[0] for r in published(data, "SELECT request_id FROM raw.inference_events")} == {"good", "inside"}
    quarantined = published(data, "SELECT reason, coalesce(payload, '') FROM quality.quarantine")
    assert [r[0].split(":")[0] for r in quarantined] == ["outside_data_directory"]
    assert "AKIA" not in repr(published(data, "FROM quality.quarantine")) + repr(published(data, "FROM quality.ingest_log"))
