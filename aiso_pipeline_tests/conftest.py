import gzip
import json
from pathlib import Path

import pytest

from aiso_pipeline import warehouse
from aiso_pipeline.config import DataDir, data_dir
from aiso_pipeline.ingest import ingest_partition

PRICES = """model_pattern,valid_from,input_per_mtok,output_per_mtok,cached_input_per_mtok
gpt-4o(-\\d{4}-\\d{2}-\\d{2})?,2024-05-13,5.00,15.00,
gpt-4o(-\\d{4}-\\d{2}-\\d{2})?,2024-10-01,2.50,10.00,1.25
claude-3-5-sonnet(-\\d{8}|-latest)?,2024-06-20,3.00,15.00,0.30
"""


@pytest.fixture
def data(tmp_path) -> DataDir:
    """An empty data directory with both landing folders and a small price table."""
    d = data_dir(tmp_path / "data")
    for stream in ("inference", "product"):
        d.landing(stream).mkdir(parents=True)
    d.reference.mkdir(parents=True)
    d.prices.write_text(PRICES)
    return d


def write_lines(path: Path, lines: list) -> Path:
    """Write rows (dicts become JSON, strings are written verbatim) as one file; .gz is gzip-compressed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def land(data: DataDir, stream: str, dt: str, name: str, lines: list) -> Path:
    return write_lines(data.partition_dir(stream, dt) / name, lines)


def ingest(data: DataDir, stream: str, dt: str):
    with warehouse.connect(data) as con:
        return ingest_partition(con, data, stream, dt)


def query(data: DataDir, sql: str, params=None) -> list[tuple]:
    with warehouse.connect(data) as con:
        return con.execute(sql, params or []).fetchall()


def inference(request_id: str = "r1", **extra) -> dict:
    row = {"request_id": request_id, "timestamp": "2025-06-01T10:00:00Z", "model": "gpt-4o"}
    row.update(extra)
    return row


def product(message_id: str = "m1", **extra) -> dict:
    row = {"message_id": message_id, "event": "Order Completed", "timestamp": "2025-06-01T11:00:00Z", "user_id": "u1"}
    row.update(extra)
    return row
