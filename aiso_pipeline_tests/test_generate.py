"""The sample-data generator: deterministic bytes, every format and key style, faults counted exactly, and the
planted truth (experiments, drift, cost spike) visible in the files it wrote."""
from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from aiso_pipeline.generate import generate
from aiso_pipeline.generate.render import JUNK_TIMESTAMP

START = dt.date(2024, 6, 1)
SMALL = dict(inferences_per_day=600, users=300)
INFERENCE_ALIASES = {  # OpenTelemetry names written by the generator -> canonical
    "gen_ai.response.id": "request_id", "start_time": "timestamp", "gen_ai.request.model": "model",
    "gen_ai.response.model": "model_version", "gen_ai.provider.name": "provider",
    "gen_ai.operation.name": "operation", "channel": "feature", "user.id": "user_id", "session.id": "session_id",
    "gen_ai.usage.input_tokens": "input_tokens", "gen_ai.usage.output_tokens": "output_tokens",
    "gen_ai.usage.cache_read.input_tokens": "cached_input_tokens", "error.type": "error_type",
}
PRODUCT_ALIASES = {"messageId": "message_id", "userId": "user_id", "anonymousId": "anonymous_id",
                   "sessionId": "session_id"}


def files_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as f:
        return f.read().splitlines()


def jsonl_rows(result, stream: str) -> list[tuple[Path, str]]:
    """(file, line) for every line of a stream's regular JSON-lines files."""
    return [(p, line) for p in result.file_rows if f"/{stream}/" in str(p) for line in read_lines(p)]


def canonical(row: dict, aliases: dict[str, str]) -> dict:
    out = {aliases.get(k, k): v for k, v in row.items()}
    if "latency_s" in out:
        out["latency_ms"] = out.pop("latency_s") * 1000
    if isinstance(out.get("properties"), dict) and "request_id" in out["properties"]:
        out["request_id"] = out["properties"]["request_id"]
    return out


def to_utc(value) -> pd.Timestamp:
    return pd.Timestamp(value, unit="ms", tz="UTC") if isinstance(value, int) else pd.Timestamp(value).tz_convert("UTC")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    return root, generate(root, START, START + dt.timedelta(3), seed=7, **SMALL)


@pytest.fixture(scope="module")
def jsonl(tmp_path_factory):
    """Every fault kind can be written in JSON lines, so this run shows all of them."""
    root = tmp_path_factory.mktemp("jsonl")
    return root, generate(root, START, START + dt.timedelta(3), seed=3, formats="jsonl", **SMALL)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Valid rows only, big enough for the experiment effect: about 700 chat users per arm."""
    root = tmp_path_factory.mktemp("clean")
    result = generate(root, START, START + dt.timedelta(5), seed=11, inferences_per_day=3000, users=2000,
                      formats="jsonl", malformed=False)
    inference = pd.DataFrame([canonical(json.loads(line), INFERENCE_ALIASES)
                              for p, line in jsonl_rows(result, "inference")])
    product = pd.DataFrame([dict(canonical(json.loads(line), PRODUCT_ALIASES), dt=p.parent.name[3:])
                            for p, line in jsonl_rows(result, "product")])
    return result, inference, product


def test_same_seed_same_bytes_other_seed_differs(mixed, tmp_path):
    root, _ = mixed
    generate(tmp_path / "again", START, START + dt.timedelta(3), seed=7, **SMALL)
    generate(tmp_path / "other", START, START + dt.timedelta(3), seed=8, **SMALL)
    assert files_bytes(tmp_path / "again") == files_bytes(root)
    first, other = files_bytes(root), files_bytes(tmp_path / "other")
    landing = [name for name in first if name.startswith("landing") and first[name]]
    assert all(first[name] != other.get(name) for name in landing)


def test_mixed_writes_every_format_for_every_day_and_the_bad_files(mixed):
    root, result = mixed
    for stream in ("inference", "product"):
        names = [p.name for p in result.file_rows if f"/{stream}/" in str(p)]
        assert {n.split(".", 1)[1] for n in names} == {"jsonl", "jsonl.gz", "parquet", "csv"}
    for day in result.days:
        for stream in ("inference", "product"):
            assert list((root / "landing" / stream / f"dt={day}").iterdir())
    assert sorted(b["kind"] for b in result.bad_files) == ["binary_garbage", "empty", "truncated_gzip"]
    assert len({b["dt"] for b in result.bad_files}) == 3
    truncated = next(b["path"] for b in result.bad_files if b["kind"] == "truncated_gzip")
    with pytest.raises(EOFError), gzip.open(truncated) as f:
        f.read()


def test_single_format_runs_write_only_that_format(tmp_path):
    for fmt in ("jsonl", "parquet"):
        result = generate(tmp_path / fmt, START, START + dt.timedelta(1), **SMALL, formats=fmt)
        landing = [p for p in result.files if "landing" in str(p)]
        assert landing and all(p.name.endswith(f".{fmt}") for p in landing)
        assert not result.bad_files
    assert result.malformed["inference"]["broken_json"] == result.malformed["inference"]["bad_type"] == 0
    assert sum(result.malformed["inference"].values()) > 0


def test_key_variants_occur(mixed):
    _, result = mixed
    inference = pd.concat([_frame(p) for p in result.file_rows if "/inference/" in str(p)])
    product = pd.concat([_frame(p) for p in result.file_rows if "/product/" in str(p)])
    assert {"request_id", "gen_ai.response.id", "gen_ai.request.model", "gen_ai.usage.input_tokens",
            "gen_ai.usage.cache_read.input_tokens", "latency_s", "start_time", "channel", "user.id",
            "session.id", "error.type", "region", "app_version"} <= set(inference.columns)
    assert {"message_id", "messageId", "user_id", "userId", "anonymousId", "request_id"} <= set(product.columns)
    stamps = inference["timestamp"].dropna().astype(str)
    assert stamps.str.endswith("Z").any() and stamps.str.contains(r"[+-]\d\d:\d\d$").any()
    assert stamps.str.fullmatch(r"\d{13}").any()  # epoch milliseconds
    props = product["properties"].dropna().map(lambda v: json.loads(v) if isinstance(v, str) else v)
    assert props.map(lambda p: bool(p.get("request_id"))).any()


def _frame(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str)
    rows = []
    for line in read_lines(path):
        try:
            rows.append({k: (str(v) if k in ("timestamp", "start_time") else v) for k, v in json.loads(line).items()})
        except json.JSONDecodeError:
            pass
    return pd.DataFrame(rows)


def _fault(stream: str, line: str) -> str | None:
    """The fault kind of a written line, by inspection (None: a valid row)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return "broken_json"
    if stream == "product":
        row = canonical(row, PRODUCT_ALIASES)
        checks = [("missing_message_id", lambda: "message_id" not in row),
                  ("missing_event", lambda: "event" not in row),
                  ("missing_user", lambda: not (row.get("user_id") or row.get("anonymous_id"))),
                  ("bad_timestamp", lambda: row["timestamp"] == JUNK_TIMESTAMP)]
    else:
        row = canonical(row, INFERENCE_ALIASES)
        checks = [("missing_request_id", lambda: "request_id" not in row),
                  ("missing_model", lambda: "model" not in row),
                  ("missing_timestamp", lambda: "timestamp" not in row),
                  ("bad_type", lambda: row["input_tokens"] == "abc"),
                  ("negative_tokens", lambda: row["output_tokens"] < 0),
                  ("confidence_out_of_range", lambda: row.get("confidence", 0) > 1),
                  ("sample_rate_zero", lambda: row.get("sample_rate") == 0),
                  ("cached_gt_input", lambda: row.get("cached_input_tokens", 0) > row["input_tokens"]),
                  ("bad_status", lambda: row["status"] not in ("ok", "error", "timeout")),
                  ("bad_timestamp", lambda: row["timestamp"] == JUNK_TIMESTAMP)]
    return next((kind for kind, hit in checks if hit()), None)  # in order: a row has one fault


@pytest.mark.parametrize("stream, key", [("inference", "request_id"), ("product", "message_id")])
def test_fault_counts_match_the_files(jsonl, stream, key):
    _, result = jsonl
    lines = jsonl_rows(result, stream)
    assert sum(n for p, n in result.file_rows.items() if f"/{stream}/" in str(p)) == len(lines)
    found = {kind: 0 for kind in result.malformed[stream]}
    ids = []
    for _, line in lines:
        kind = _fault(stream, line)
        if kind:
            found[kind] += 1
        else:
            row = canonical(json.loads(line), PRODUCT_ALIASES if stream == "product" else INFERENCE_ALIASES)
            ids.append(row[key])
    assert found == result.malformed[stream] and all(found.values())
    assert len(set(ids)) == (result.inference_rows if stream == "inference" else result.product_rows)
    assert len(ids) - len(set(ids)) == result.duplicates[stream] > 0
    assert result.truth["injection_ids"][stream] in ids


def test_a_duplicate_lands_in_the_next_days_folder(jsonl):
    _, result = jsonl
    first_seen = {}
    crossed = 0
    for p, line in jsonl_rows(result, "inference"):
        if _fault("inference", line) is None:
            rid = canonical(json.loads(line), INFERENCE_ALIASES)["request_id"]
            crossed += rid in first_seen and first_seen[rid] < p.parent.name
            first_seen.setdefault(rid, p.parent.name)
    assert crossed >= 1


def test_experiment_registry(mixed):
    root, result = mixed
    registry = yaml.safe_load((root / "reference" / "experiments.yaml").read_text())["experiments"]
    assert [e["id"] for e in registry] == result.truth["experiment_ids"]
    for e in registry:
        assert {"id", "control", "weights", "primary_metric", "guardrails", "mde", "start"} <= set(e)
        assert e["control"] in e["weights"] and sum(e["weights"].values()) == pytest.approx(1)
        assert e["primary_metric"] in ("conversion_rate", "success_rate") and e["start"] == START
        assert 0 < e["mde"] <= 0.5
        assert set(e["guardrails"]) == {"latency_ms", "cost_per_user", "error_rate"}


def test_truth_matches_the_data(clean):
    result, inf, product = clean
    truth, days = result.truth, [d.isoformat() for d in result.days]
    assert days.index(truth["drift"]["day"]) >= len(days) // 2
    inf["day"] = inf["timestamp"].map(to_utc).dt.date.astype(str)
    drifted = inf[inf["model"] == truth["drift"]["model"]]
    after = drifted["day"] >= truth["drift"]["day"]
    chars = drifted["features"].map(lambda f: f["prompt_chars"])
    assert chars[after].mean() > 1.8 * chars[~after].mean()
    languages = drifted["features"].map(lambda f: f["language"])
    assert (languages[~after] != "es").all() and (languages[after] == "es").mean() > 0.2
    assert (inf.loc[inf["model"] != truth["drift"]["model"], "features"].map(lambda f: f["language"]) != "es").all()

    spike = truth["cost_spike"]
    tokens = inf[(inf["model"] == spike["model"]) & (inf["feature"] == spike["feature"])].groupby("day")[
        "input_tokens"].mean()
    assert tokens[spike["day"]] > 3 * tokens.drop(spike["day"]).median()

    assert (inf.loc[inf["feature"] == "search", "sample_rate"] == 0.25).all()
    assert inf.loc[inf["model"].isin(truth["unpriced_models"]), "cost_usd"].isna().all()
    assert inf.loc[inf["model"].isin(truth["reported_cost_models"]), "cost_usd"].notna().all()
    for exp_id, exp in truth["experiments"].items():
        variants = inf[inf["experiment_id"] == exp_id].groupby("user_id")["variant"].unique()
        assert (variants.map(len) > 1).sum() == exp["mixed_variant_users"]
        single = variants[variants.map(len) == 1].map(lambda v: v[0]).value_counts().to_dict()
        assert single == {v: n for v, n in exp["users"].items() if n}
    srm = truth["experiments"]["srm_test"]["users"]
    assert srm["control"] / (srm["control"] + srm["treatment"]) > 0.55

    assert (product["timestamp"].map(to_utc).dt.date.astype(str) == product["dt"]).all()
    assert product["dt"].max() <= days[-1]
    assert set(truth["outcome_events"]) >= {"request_id", "user_only", "unknown_request_id", "outside_window"}
    assert all(truth["outcome_events"].values())


def test_treatment_converts_more_users(clean):
    result, inf, product = clean
    chat = inf[inf["experiment_id"] == "confidence_threshold"]
    orders = product[(product["event"] == "Order Completed") & product["request_id"].notna()]
    converted = set(chat.merge(orders[["request_id"]], on="request_id")["user_id"])
    users = chat.groupby("user_id")["variant"].first()
    rate = users.index.isin(list(converted)).astype(float)
    by_variant = pd.Series(rate, index=users.index).groupby(users).mean()
    assert by_variant["fallback_low_conf"] > 1.2 * by_variant["control"]
    assert 0.05 < by_variant["control"] < 0.2
    # Next-day outcomes: some events follow an inference of the day before.
    inference_day = dict(zip(inf["request_id"], inf["timestamp"].map(to_utc).dt.date.astype(str)))
    followed = product[product["request_id"].isin(inference_day.keys())]
    assert (followed["request_id"].map(inference_day) < followed["dt"]).any()
