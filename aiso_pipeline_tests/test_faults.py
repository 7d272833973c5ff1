"""Faults: arbitrary rows never crash ingestion or vanish, and a killed ingest leaves consistent tables."""
import json
import os
import signal
import subprocess
import sys
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiso_pipeline import warehouse
from aiso_pipeline.config import data_dir
from aiso_pipeline_tests.conftest import PRICES, inference, ingest, land, query

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
