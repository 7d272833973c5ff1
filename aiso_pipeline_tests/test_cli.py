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
