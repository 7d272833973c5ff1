"""Joined outcomes and cost rollups (CONTRACT sections 4, 5, 7).

Attribution cases are worked out by hand; every rollup number is checked against an independent pandas
computation (and a plain-Python attribution) on the same small random data.
"""
import random
from datetime import datetime, timedelta, timezone

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from aiso_pipeline import outcomes, warehouse
from aiso_pipeline.outcomes import OutcomeConfig, charts
from aiso_pipeline_tests.conftest import inference, ingest, land, product, query

D, D1, D2 = "2025-06-01", "2025-06-02", "2025-06-03"


def build(data, dt=D, config=OutcomeConfig()):
    with warehouse.connect(data) as con:
        summary = outcomes.build_joined_outcomes(con, dt, config)
        outcomes.build_outcome_coverage(con, dt)
        outcomes.build_cost_daily(con, dt)
    return summary


def load(data, inferences: dict[str, list], products: dict[str, list]):
    """Land and ingest rows per partition: {dt: [rows]}."""
    for stream, parts in (("inference", inferences), ("product", products)):
        for dt, rows in parts.items():
            land(data, stream, dt, f"{stream}.jsonl", rows)
            ingest(data, stream, dt)


def joined(data, dt=D) -> dict:
    cols = ["has_outcome", "events_attributed", "success", "converted", "revenue", "first_outcome_at", "weight",
            "window_closed"]
    rows = query(data, f"SELECT request_id, {', '.join(cols)} FROM marts.joined_outcomes WHERE dt = ?", [dt])
    return {r[0]: dict(zip(cols, r[1:])) for r in rows}


def checks(data, dt=D) -> dict:
    rows = query(data, "SELECT check_name, passed, severity, observed_value, details FROM quality.check_results "
                       "WHERE dt = ? ORDER BY check_name", [dt])
    return {r[0]: r[1:] for r in rows}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- attribution, by hand --------------------------------------------------------------------------------------

def test_direct_attribution_by_request_id(data):
    load(data, {D: [inference("r1", user_id="u1"), inference("r2", user_id="u2")]},
         {D: [product("m1", request_id="r1", user_id="someone-else", properties={"revenue": 25.0}),
              product("m2", request_id="r1", event="Answer Accepted", timestamp="2025-06-01T10:30:00Z")]})
    build(data)
    got = joined(data)
    # both events name r1: the user on the event does not matter, the request_id does
    assert got["r1"] | {"first_outcome_at": None} == {
        "has_outcome": True, "events_attributed": 2, "success": True, "converted": True, "revenue": 25.0,
        "first_outcome_at": None, "weight": 1.0, "window_closed": False}
    assert got["r1"]["first_outcome_at"] == ts("2025-06-01T10:30:00Z")
    assert got["r2"]["has_outcome"] is False and got["r2"]["revenue"] == 0


def test_last_touch_by_user(data):
    load(data, {D: [inference("r1", user_id="u1")]},
         {D: [product("m1", event="Task Completed", timestamp="2025-06-01T12:00:00Z", user_id="u1"),
              product("m2", event="Order Completed", timestamp="2025-06-01T12:00:00Z", user_id="u2",
                      properties={"revenue": 9.0})]})
    build(data)
    got = joined(data)["r1"]
    assert (got["has_outcome"], got["success"], got["converted"], got["revenue"]) == (True, True, False, 0)
    # u2 never called a model: unattributed, no earlier inference of the user
    assert "1 with no earlier inference of the user" in checks(data)["outcomes_unattributed_events"][3]


def test_outside_the_window_is_not_attributed(data):
    load(data, {D: [inference("r1", user_id="u1"), inference("r2", user_id="u2")]},
         {D: [product("before", request_id="r1", timestamp="2025-06-01T09:59:59Z"),  # before the call
              product("u2_early", user_id="u2", timestamp="2025-06-01T09:00:00Z")],   # before u2's call
          D1: [product("edge", request_id="r1", timestamp="2025-06-02T10:00:00Z"),   # exactly +24 h: in
               product("late", request_id="r1", timestamp="2025-06-02T10:00:01Z",
                       properties={"revenue": 5.0}),                                # +24 h 1 s: out
               product("u2_late", user_id="u2", timestamp="2025-06-02T10:00:01Z")]})
    build(data)
    got = joined(data)
    assert (got["r1"]["events_attributed"], got["r1"]["converted"]) == (1, True)
    assert got["r1"]["revenue"] == 0  # the "edge" conversion has no revenue; the "late" one is outside
    assert got["r2"]["has_outcome"] is False
    passed, severity, observed, details = checks(data)["outcomes_unattributed_events"]
    assert (passed, severity, observed) == (False, "WARN", 2)
    assert "1 outside the window, 1 with no earlier inference" in details
    # a longer window reaches them
    build(data, config=OutcomeConfig(window_hours=48))
    assert joined(data)["r1"]["events_attributed"] == 2
    assert joined(data)["r2"]["events_attributed"] == 1


def test_unknown_request_id_is_counted_and_never_falls_back_to_last_touch(data):
    load(data, {D: [inference("r1", user_id="u1")]},
         {D: [product("m1", request_id="ghost", user_id="u1", timestamp="2025-06-01T11:00:00Z")]})
    build(data)
    assert joined(data)["r1"]["has_outcome"] is False
    got = checks(data)
    assert got["outcomes_unknown_request_id"][:3] == (False, "WARN", 1)
    assert got["outcomes_unattributed_events"][:3] == (False, "WARN", 1)


def test_late_feedback_on_an_older_call_is_outside_the_window_not_unknown(data):
    """An event naming a call logged 3 days earlier (beyond the 1 day the join reads) is late feedback, not an
    instrumentation bug: `outside_window`; an id logged nowhere in the 8 days before is `unknown_request_id`."""
    day3 = "2025-06-04"
    load(data, {D: [inference("old", user_id="u1")], day3: [inference("r3", user_id="u3")]},
         {day3: [product("late", request_id="old", user_id="u1", timestamp="2025-06-04T12:00:00Z"),
                 product("ghost", request_id="never-logged", user_id="u3", timestamp="2025-06-04T12:00:00Z")]})
    build(data, dt=day3)
    got = checks(data, dt=day3)
    assert got["outcomes_unknown_request_id"][:3] == (False, "WARN", 1)
    assert "1 unknown request_id, 1 outside the window" in got["outcomes_unattributed_events"][3]


def test_a_call_loaded_late_into_the_look_back_counts_its_event_again(data):
    """The checks' look-back partitions are among their inputs: once the call an `unknown_request_id` event named
    is loaded into an older day, the day's checks are computed again and the event is late feedback."""
    day3 = "2025-06-04"
    load(data, {D: [inference("old", user_id="u1")], day3: [inference("r3", user_id="u3")]},
         {day3: [product("ghost", request_id="logged-late", user_id="u3", timestamp="2025-06-04T12:00:00Z")]})
    build(data, dt=day3)
    assert checks(data, dt=day3)["outcomes_unknown_request_id"][:3] == (False, "WARN", 1)
    land(data, "inference", D, "late.jsonl", [inference("logged-late", user_id="u9")])
    ingest(data, "inference", D)
    build(data, dt=day3)
    got = checks(data, dt=day3)
    assert got["outcomes_unknown_request_id"][:3] == (True, "WARN", 0)
    assert "0 unknown request_id, 1 outside the window" in got["outcomes_unattributed_events"][3]


def test_late_event_reopens_a_closed_looking_partition(data):
    load(data, {D: [inference("r1", user_id="u1", timestamp="2025-06-01T22:00:00Z")]},
         {D: [product("m0", user_id="other")], D1: [product("m1", user_id="other", timestamp="2025-06-02T12:00:00Z")],
          D2: [product("m2", user_id="other", timestamp="2025-06-03T00:00:00Z")]})
    build(data)
    got = joined(data)["r1"]
    # product data reaches end of day + 24 h: the window looks closed, and r1 has no outcome
    assert (got["has_outcome"], got["window_closed"]) == (False, True)
    # a file lands late in the next day's product partition; re-ingest it and recompute the day
    land(data, "product", D1, "late.jsonl", [product("m3", request_id="r1", timestamp="2025-06-02T08:00:00Z")])
    ingest(data, "product", D1)
    build(data)
    got = joined(data)["r1"]
    assert (got["has_outcome"], got["success"], got["events_attributed"]) == (True, True, 1)
    assert query(data, "SELECT joined_rows FROM marts.outcome_coverage WHERE dt = ?", [D]) == [(1,)]


def test_window_stays_open_until_product_data_passes_it(data):
    load(data, {D: [inference("r1")], D1: [inference("r2", timestamp="2025-06-02T10:00:00Z")]},
         {D: [product("m1")], D1: [product("m2", timestamp="2025-06-02T23:59:59Z")]})
    build(data)
    build(data, D1)
    assert joined(data)["r1"]["window_closed"] is False  # an event at D+1 23:59:59.5 could still come
    with warehouse.connect(data) as con:
        assert outcomes.open_days(con, D2) == [D, D1]
    load(data, {}, {D2: [product("m3", timestamp="2025-06-03T00:00:00Z")]})
    build(data)
    assert joined(data)["r1"]["window_closed"] is True
    with warehouse.connect(data) as con:
        assert outcomes.open_days(con, D2) == [D1]


def test_user_with_several_inferences_latest_at_or_before_wins(data):
    load(data, {D: [inference("r1", user_id="u1", timestamp="2025-06-01T09:00:00Z"),
                    inference("r2", user_id="u1", timestamp="2025-06-01T11:00:00Z"),
                    inference("t_a", user_id="u9", timestamp="2025-06-01T08:00:00Z"),
                    inference("t_b", user_id="u9", timestamp="2025-06-01T08:00:00Z")],
                D1: [inference("r3", user_id="u1", timestamp="2025-06-02T08:00:00Z")]},
         {D: [product("e1", user_id="u1", timestamp="2025-06-01T10:00:00Z"),
              product("e2", user_id="u1", timestamp="2025-06-01T11:00:00Z"),   # same instant as r2: r2
              product("e3", user_id="u1", timestamp="2025-06-01T15:00:00Z"),
              product("e9", user_id="u9", timestamp="2025-06-01T08:30:00Z")],  # tie: greatest request_id
          D1: [product("e4", user_id="u1", timestamp="2025-06-02T09:00:00Z")]})  # within r2's window, but r3 is later
    build(data)
    build(data, D1)
    got = joined(data)
    assert {k: v["events_attributed"] for k, v in got.items()} == {"r1": 1, "r2": 2, "t_a": 0, "t_b": 1}
    assert joined(data, D1)["r3"]["events_attributed"] == 1


def test_last_touch_goes_by_the_latest_inference_not_its_partition(data):
    # D's join sees D+1's inferences: an event after the user's first inference of D+1 goes to D only when one of
    # D's own is later still (filed under D, timestamped on D+1); an inference of D+1 at the event's instant takes it.
    load(data, {D: [inference("r1", user_id="u1", timestamp="2025-06-01T20:00:00Z"),
                    inference("r2", user_id="u2", timestamp="2025-06-01T20:00:00Z"),
                    inference("r2b", user_id="u2", timestamp="2025-06-02T03:00:00Z"),
                    inference("r3", user_id="u3", timestamp="2025-06-01T20:00:00Z")],
                D1: [inference("s1", user_id="u1", timestamp="2025-06-02T02:00:00Z"),
                     inference("s2", user_id="u2", timestamp="2025-06-02T02:00:00Z"),
                     inference("s3", user_id="u3", timestamp="2025-06-02T02:00:00Z")]},
         {D1: [product("e1", user_id="u1", timestamp="2025-06-02T01:00:00Z"),    # before s1: r1
               product("e2", user_id="u1", timestamp="2025-06-02T04:00:00Z"),    # after s1: s1
               product("e3", user_id="u2", timestamp="2025-06-02T04:00:00Z"),    # r2b is later than s2: r2b
               product("e4", user_id="u3", timestamp="2025-06-02T02:00:00Z")]})  # s3 at the same instant: s3
    build(data)
    build(data, D1)
    assert {k: v["events_attributed"] for k, v in joined(data).items()} == {"r1": 1, "r2": 0, "r2b": 1, "r3": 0}
    got = joined(data, D1)
    assert (got["s1"]["events_attributed"], got["s3"]["events_attributed"]) == (1, 1)


def test_sample_weights_count_each_row_as_one_over_the_rate(data):
    load(data, {D: [inference("s1", feature="search", sample_rate=0.25, user_id="u1", input_tokens=100,
                              output_tokens=10, latency_ms=300),
                    inference("c1", feature="chat", user_id="u2", latency_ms=100)]},
         {D: [product("m1", request_id="s1", event="Order Completed", properties={"revenue": 10.0})]})
    build(data)
    assert joined(data)["s1"]["weight"] == 4.0
    cov = query(data, "SELECT feature, inferences, joined, join_rate, inference_rows FROM marts.outcome_coverage "
                      "ORDER BY feature")
    assert cov == [("chat", 1.0, 0.0, 0.0, 1), ("search", 4.0, 4.0, 1.0, 1)]
    cost = query(data, "SELECT requests, input_tokens, output_tokens, successes, conversions, revenue, request_rows "
                       "FROM marts.cost_daily WHERE feature = 'search'")
    assert cost == [(4.0, 400.0, 40.0, 4.0, 4.0, 40.0, 1)]


def test_configurable_event_lists(data):
    load(data, {D: [inference("r1", user_id="u1")]}, {D: [product("m1", request_id="r1", event="Order Completed")]})
    build(data, config=OutcomeConfig(success_events=("Answer Accepted",), conversion_events=("Signed Up",)))
    got = joined(data)["r1"]
    assert (got["has_outcome"], got["success"], got["converted"]) == (True, False, False)


def test_rerun_is_idempotent_and_keeps_other_checks(data):
    load(data, {D: [inference("r1", user_id="u1")]}, {D: [product("m1", request_id="nope")]})
    with warehouse.connect(data) as con:
        con.execute("INSERT INTO quality.check_results (dt, asset, check_name, passed, severity) "
                    "VALUES (?, 'raw.product_events', 'someone_elses_check', true, 'ERROR')", [D])
    build(data)
    tables = ["marts.joined_outcomes", "marts.outcome_coverage", "marts.cost_daily", "quality.check_results"]
    before = [query(data, f"SELECT * EXCLUDE (computed_at) FROM {t} ORDER BY ALL") if t.startswith("marts")
              else query(data, f"SELECT * EXCLUDE (checked_at) FROM {t} ORDER BY ALL") for t in tables]
    build(data)
    after = [query(data, f"SELECT * EXCLUDE (computed_at) FROM {t} ORDER BY ALL") if t.startswith("marts")
             else query(data, f"SELECT * EXCLUDE (checked_at) FROM {t} ORDER BY ALL") for t in tables]
    assert before == after
    assert sorted(checks(data)) == ["outcome_join_rate", "outcomes_unattributed_events",
                                    "outcomes_unknown_request_id", "someone_elses_check"]


def test_repricing_and_rerunning_recosts_every_rollup(data):
    load(data, {D: [inference("r1", input_tokens=1_000_000, user_id="u1")]}, {D: [product("m1", request_id="r1")]})
    build(data)
    assert query(data, "SELECT cost_usd, cost_per_success FROM marts.cost_daily") == [(2.5, 2.5)]
    data.prices.write_text(data.prices.read_text().replace("2024-10-01,2.50", "2024-10-01,5.00"))
    ingest(data, "inference", D)  # what `aiso run --start --end` does first for each day
    build(data)
    assert query(data, "SELECT cost_usd FROM marts.joined_outcomes") == [(5.0,)]
    assert query(data, "SELECT cost_usd, cost_per_success FROM marts.cost_daily") == [(5.0, 5.0)]


def test_unpriced_requests_are_counted_not_costed(data):
    load(data, {D: [inference("p", input_tokens=1_000_000, sample_rate=0.5),
                    # before gpt-4o's first price row: unpriced, though the model has prices
                    inference("u", input_tokens=1_000_000, sample_rate=0.5, timestamp="2024-01-01T00:00:00Z"),
                    inference("x", model="acme-7b", input_tokens=1_000_000)]}, {D: [product("m1", request_id="p")]})
    build(data)
    got = {r[0]: r[1:] for r in query(data, "SELECT model, requests, cost_usd, unpriced_requests, "
                                            "cost_per_1k_requests, successes, cost_per_success FROM marts.cost_daily")}
    # cost skips "u" (no $0 for it); per-unit costs divide by priced requests and priced successes only
    assert got["gpt-4o"] == (4.0, 2 * 2.5, 2.0, 1000 * 5.0 / 2, 2.0, 5.0 / 2)
    assert got["acme-7b"] == (1.0, None, 1.0, None, 0.0, None)


# --- rollups against pandas on random data ----------------------------------------------------------------------

MODELS = ["gpt-4o", "claude-3-5-sonnet-20241022", "acme-7b"]  # acme-7b has no price
EVENTS = ["Task Completed", "Answer Accepted", "Order Completed", "Page Viewed"]


def random_world(seed: int = 7):
    rng = random.Random(seed)
    start = datetime(2025, 6, 1, tzinfo=timezone.utc)
    users = [f"u{i}" for i in range(8)]
    infs, events = [], []
    for n in range(90):
        t = start + timedelta(seconds=rng.randrange(2 * 86400))
        row = {"request_id": f"r{n:03d}", "timestamp": t, "model": rng.choice(MODELS),
               "feature": rng.choice(["chat", "search"]), "user_id": rng.choice(users + [None]),
               "input_tokens": rng.randrange(0, 5000), "output_tokens": rng.randrange(0, 800),
               "latency_ms": rng.choice([100.0, 200.0, 200.0, 350.0, 500.0, 900.0, 2500.0, None]),
               "status": rng.choice(["ok"] * 6 + ["error", "timeout"]), "is_fallback": rng.random() < 0.15,
               "sample_rate": rng.choice([1.0, 0.5, 0.25])}
        if rng.random() < 0.2:
            row["cost_usd"] = round(rng.random() / 100, 6)
        infs.append(row)
    for n in range(140):
        kind = rng.random()
        event = {"message_id": f"m{n:03d}", "event": rng.choice(EVENTS)}
        if kind < 0.45:  # names an inference, sometimes before it or past the window
            i = rng.choice(infs)
            event |= {"request_id": i["request_id"], "user_id": i["user_id"] or "anon",
                      "timestamp": i["timestamp"] + timedelta(minutes=rng.randrange(-60, 30 * 60))}
        elif kind < 0.5:
            event |= {"request_id": f"ghost{n}", "user_id": rng.choice(users),
                      "timestamp": start + timedelta(seconds=rng.randrange(86400))}
        else:
            event |= {"user_id": rng.choice(users), "timestamp": start + timedelta(seconds=rng.randrange(3 * 86400))}
        if event["event"] == "Order Completed" and rng.random() < 0.8:
            event["properties"] = {"revenue": float(rng.randrange(1, 200))}
        events.append(event)
    return infs, events


def reference_outcomes(infs, events, window=timedelta(hours=24), success=EVENTS[:3], conversion=EVENTS[2:3]):
    """Plain-Python attribution straight from CONTRACT section 5, one event at a time."""
    by_id = {i["request_id"]: i for i in infs}
    got = {i["request_id"]: [] for i in infs}
    for e in events:
        if e.get("request_id"):
            i = by_id.get(e["request_id"])
            target = i if i and i["timestamp"] <= e["timestamp"] <= i["timestamp"] + window else None
        else:
            prior = [i for i in infs if i["user_id"] == e["user_id"] and i["timestamp"] <= e["timestamp"]]
            latest = max(prior, key=lambda i: (i["timestamp"], i["request_id"]), default=None)
            target = latest if latest and e["timestamp"] <= latest["timestamp"] + window else None
        if target:
            got[target["request_id"]].append(e)
    rows = []
    for i in infs:
        evs = got[i["request_id"]]
        rows.append({"request_id": i["request_id"], "has_outcome": bool(evs), "events_attributed": len(evs),
                     "success": any(e["event"] in success for e in evs),
                     "converted": any(e["event"] in conversion for e in evs),
                     "revenue": sum(e.get("properties", {}).get("revenue", 0.0) for e in evs
                                    if e["event"] in conversion)})
    return pd.DataFrame(rows)


def iso(row: dict) -> dict:
    return {k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
            for k, v in row.items() if v is not None}


def weighted_percentile(values: pd.Series, weights: pd.Series, p: float):
    """Smallest value whose cumulative weight (ascending) reaches p of the total."""
    ok = values.notna()
    v, w = values[ok].to_numpy(), weights[ok].to_numpy()
    if len(v) == 0:
        return None
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cum, p * cum[-1], side="left")])


@pytest.fixture
def random_data(data):
    infs, events = random_world()
    by_day = lambda rows: {d: [iso(r) for r in rows if r["timestamp"].date().isoformat() == d]  # noqa: E731
                           for d in sorted({r["timestamp"].date().isoformat() for r in rows})}
    load(data, by_day(infs), by_day(events))
    for dt in (D, D1):
        build(data, dt)
    return infs, events


def test_joined_outcomes_match_a_plain_python_attribution(data, random_data):
    infs, events = random_data
    expected = reference_outcomes(infs, events).set_index("request_id").sort_index()
    got = pd.DataFrame(query(data, "SELECT request_id, has_outcome, events_attributed, success, converted, revenue "
                                   "FROM marts.joined_outcomes"),
                       columns=["request_id", *expected.columns]).set_index("request_id").sort_index()
    assert expected["has_outcome"].sum() > 20 and (~expected["has_outcome"]).sum() > 20  # the data is not trivial
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def pandas_rollups(data):
    """cost_daily and outcome_coverage recomputed in pandas from raw inferences + the joined outcome flags."""
    raw = pd.DataFrame(query(data, "SELECT request_id, dt, model, feature, input_tokens, output_tokens, cost_usd, "
                                   "status, is_fallback, latency_ms, sample_rate FROM raw.inference_events"),
                       columns=["request_id", "dt", "model", "feature", "input_tokens", "output_tokens", "cost_usd",
                                "status", "is_fallback", "latency_ms", "sample_rate"])
    flags = pd.DataFrame(query(data, "SELECT request_id, has_outcome, success, converted, revenue "
                                     "FROM marts.joined_outcomes"),
                         columns=["request_id", "has_outcome", "success", "converted", "revenue"])
    df = raw.merge(flags, on="request_id")
    df["w"] = 1 / df["sample_rate"]
    df["cost_usd"] = df["cost_usd"].astype(float)
    df["priced"] = df["cost_usd"].notna()
    out = []
    for (dt, model, feature), g in df.groupby(["dt", "model", "feature"]):
        w, priced = g["w"], g["priced"]
        cost = (g["cost_usd"] * w).sum() if priced.any() else None

        def per(mask, cost=cost, g=g, w=w, priced=priced):
            denom = w[mask & priced].sum()
            return cost / denom if cost is not None and denom > 0 else None

        out.append({
            "dt": dt, "model": model, "feature": feature,
            "requests": w.sum(), "request_rows": len(g),
            "input_tokens": (g["input_tokens"] * w).sum(), "output_tokens": (g["output_tokens"] * w).sum(),
            "cost_usd": cost, "unpriced_requests": w[~priced].sum(),
            "cost_per_1k_requests": None if per(g["w"] > 0) is None else 1000 * per(g["w"] > 0),
            "successes": w[g["success"]].sum(), "cost_per_success": per(g["success"]),
            "conversions": w[g["converted"]].sum(), "cost_per_conversion": per(g["converted"]),
            "revenue": (g["revenue"] * w).sum(),
            "error_rate": w[g["status"].isin(["error", "timeout"])].sum() / w.sum(),
            "fallback_rate": w[g["is_fallback"]].sum() / w.sum(),
            "latency_p50_ms": weighted_percentile(g["latency_ms"], w, 0.50),
            "latency_p95_ms": weighted_percentile(g["latency_ms"], w, 0.95),
            "latency_p99_ms": weighted_percentile(g["latency_ms"], w, 0.99),
            "inferences": w.sum(), "joined": w[g["has_outcome"]].sum(),
            "join_rate": w[g["has_outcome"]].sum() / w.sum(),
            "joined_rows": int(g["has_outcome"].sum()),
        })
    return pd.DataFrame(out).set_index(["dt", "model", "feature"]).sort_index()


def frame(data, table: str, columns: list[str]) -> pd.DataFrame:
    rows = query(data, f"SELECT dt, model, feature, {', '.join(columns)} FROM {table}")
    return pd.DataFrame(rows, columns=["dt", "model", "feature", *columns]).set_index(
        ["dt", "model", "feature"]).sort_index()


COST_COLUMNS = ["requests", "request_rows", "input_tokens", "output_tokens", "cost_usd", "unpriced_requests",
                "cost_per_1k_requests", "successes", "cost_per_success", "conversions", "cost_per_conversion",
                "revenue", "error_rate", "fallback_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"]
COVERAGE_COLUMNS = ["inferences", "joined", "join_rate", "joined_rows"]


def test_cost_daily_matches_pandas(data, random_data):
    expected = pandas_rollups(data)[COST_COLUMNS].astype(float)
    got = frame(data, "marts.cost_daily", COST_COLUMNS).astype(float)
    assert len(got) == 12  # 2 days × 3 models × 2 features
    assert got["cost_usd"].isna().sum() > 0 and got["cost_per_success"].notna().sum() > 0
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9)


def test_outcome_coverage_matches_pandas(data, random_data):
    expected = pandas_rollups(data)[COVERAGE_COLUMNS].astype(float)
    got = frame(data, "marts.outcome_coverage", COVERAGE_COLUMNS).astype(float)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9)


def test_weighted_percentile_is_the_population_percentile():
    # weights 1 and 3 stand for the population [10, 20, 20, 20]: p50 = 20 (10 alone is only 25%)
    assert weighted_percentile(pd.Series([10.0, 20.0]), pd.Series([1.0, 3.0]), 0.5) == 20.0
    assert weighted_percentile(pd.Series([10.0, 20.0]), pd.Series([1.0, 1.0]), 0.5) == 10.0


def test_weighted_percentiles_in_sql_by_hand(data):
    load(data, {D: [inference("a", latency_ms=10, sample_rate=1.0), inference("b", latency_ms=20, sample_rate=1 / 3),
                    inference("c", latency_ms=30, timestamp="2025-06-01T11:00:00Z")]}, {})
    build(data)
    # population: 10, 20, 20, 20, 30 → p50 = 20 (3rd of 5), p95 and p99 = 30
    assert query(data, "SELECT latency_p50_ms, latency_p95_ms, latency_p99_ms FROM marts.cost_daily") == [
        (20.0, 30.0, 30.0)]
    with warehouse.connect(data) as con:
        assert outcomes.latency_by_hour(con, D) == [(10, "gpt-4o", 20.0), (11, "gpt-4o", 30.0)]


# --- Dagster assets and charts ----------------------------------------------------------------------------------

def test_assets_materialize_and_low_join_rate_warns_without_blocking(data):
    from aiso_pipeline.defs.ingest import raw_inference_events, raw_product_events
    from aiso_pipeline.defs.outcomes import cost_daily, joined_outcomes, outcome_coverage
    from aiso_pipeline.defs.resources import WarehouseResource

    land(data, "inference", D, "a.jsonl", [inference("r1", user_id="u1", latency_ms=200, input_tokens=1000),
                                           inference("r2", user_id="u2", latency_ms=400, feature="search")])
    land(data, "product", D, "a.jsonl", [product("m1", request_id="r1")])
    result = dg.materialize(
        [raw_inference_events, raw_product_events, joined_outcomes, outcome_coverage, cost_daily],
        partition_key=D, resources={"warehouse": WarehouseResource(data_dir=str(data.root))})
    assert result.success  # the WARN check does not block cost_daily
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    join_rate = evaluations["join_rate_at_least_95pct"]
    assert (join_rate.passed, join_rate.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert join_rate.metadata["observed_min_join_rate"].value == 0.0
    assert "search" in join_rate.metadata["worst"].value
    assert evaluations["no_unknown_request_ids"].passed
    cost_meta = result.asset_materializations_for_node("marts__cost_daily")[0].metadata
    assert cost_meta["dagster/row_count"].value == 2
    assert cost_meta["cost_per_success_usd"].value > 0
    assert "gpt-4o" in cost_meta["latency_p95_heatmap"].value and "| 10 |" in cost_meta["latency_p95_heatmap"].value
    assert D in cost_meta["cost_by_model_14d"].value
    joined_meta = result.asset_materializations_for_node("marts__joined_outcomes")[0].metadata
    assert joined_meta["join_rate_pct"].value == 50.0
    assert checks(data)["outcome_join_rate"][:3] == (False, "WARN", 0.0)
    # the attribution settings are the data directory's (reference/outcomes.yaml), read by the asset
    (data.reference / "outcomes.yaml").write_text("window_hours: 2\nsuccess_events: [Answer Accepted]\n")
    rerun = dg.materialize([joined_outcomes], partition_key=D,
                           resources={"warehouse": WarehouseResource(data_dir=str(data.root))})
    meta = rerun.asset_materializations_for_node("marts__joined_outcomes")[0].metadata
    assert meta["window_hours"].value == 2.0
    got = joined(data)["r1"]
    assert (got["has_outcome"], got["success"]) == (True, False)  # m1, an Order Completed, no longer a success


def test_charts_render_markdown():
    heat = charts.latency_heatmap([(0, "a", 100.0), (0, "b", 400.0), (13, "a", None)])
    assert heat.splitlines()[2] == "| hour (UTC) | a | b |"
    assert "| 00 | ▒▒ 100 | ██ 400 |" in heat and "| 13 | ·· – | ·· – |" in heat  # shaded by rank
    day = datetime(2025, 6, 1).date()
    trend = charts.cost_trend([(day, "a", 1.0, 10.0), (day + timedelta(days=1), "a", 2.0, 10.0),
                               (day + timedelta(days=1), "b", None, 5.0)])
    assert "| a | ▁█ | $1.00 | $2.00 | $3.00 |" in trend and "| b | ·· | – | – | – |" in trend
    assert "| 2025-06-01 | ▅ $1.00 | · – |" in trend
    assert charts.latency_heatmap([]).startswith("_no")


def test_empty_event_lists_mean_no_success_or_conversion(data):
    load(data, {D: [inference("r1", user_id="u1")]}, {D: [product("m1", request_id="r1")]})
    build(data, config=OutcomeConfig(success_events=(), conversion_events=()))
    got = joined(data)["r1"]
    assert (got["has_outcome"], got["success"], got["converted"]) == (True, False, False)
    with pytest.raises(ValueError):
        OutcomeConfig(window_hours=-1)


def test_a_later_product_partition_closes_the_window(data):
    load(data, {D: [inference("r1")]}, {D: [product("m1")]})
    build(data)
    assert joined(data)["r1"]["window_closed"] is False
    load(data, {}, {"2025-06-04": [product("m9", timestamp="2025-06-04T09:00:00Z")]})  # D+3, nothing in between
    build(data)
    assert joined(data)["r1"]["window_closed"] is True


def test_unchanged_inputs_only_close_the_window_without_joining_again(data):
    load(data, {D: [inference("r1", user_id="u1")]},
         {D: [product("m1")], D1: [product("m2", request_id="r1", timestamp="2025-06-02T08:00:00Z")]})
    first = build(data)
    before = joined(data)["r1"]
    assert first.recomputed and before["window_closed"] is False and before["events_attributed"] == 2
    # the day after next lands, all of it past D's window (the nightly case for the day before yesterday)
    load(data, {D2: [inference("r9", timestamp="2025-06-03T09:00:00Z")]},
         {D2: [product("m3", user_id="u1", timestamp="2025-06-03T09:30:00Z")]})
    again = build(data)
    assert not again.recomputed and not again.checked
    assert joined(data)["r1"] == before | {"window_closed": True}
    assert (again.product_events, again.unattributed_events) == (first.product_events, first.unattributed_events)
    assert not build(data).recomputed  # and once more: nothing to do at all
    # outputs removed behind its back are computed again, whatever the inputs say
    with warehouse.connect(data) as con:
        con.execute("DELETE FROM marts.joined_outcomes WHERE dt = ?", [D])
        con.execute("DELETE FROM quality.check_results WHERE dt = ? AND asset = 'marts.joined_outcomes'", [D])
    rebuilt = build(data)
    assert rebuilt.recomputed and rebuilt.checked and joined(data)["r1"] == before | {"window_closed": True}


def test_a_changed_or_removed_input_row_joins_the_day_again(data):
    load(data, {D: [inference("r1", user_id="u1")]},
         {D: [product("m1", user_id="other")], D1: [product("m2", request_id="r1", timestamp="2025-06-02T08:00:00Z")]})
    build(data)
    assert joined(data)["r1"]["has_outcome"] is True
    # the next day's product file is replaced by one without that event, and the partition re-ingested
    data.partition_dir("product", D1).joinpath("product.jsonl").unlink()
    land(data, "product", D1, "fixed.jsonl", [product("m4", user_id="other", timestamp="2025-06-02T09:00:00Z")])
    ingest(data, "product", D1)
    s = build(data)
    assert s.recomputed and joined(data)["r1"]["has_outcome"] is False
    # the next day's product partition is not among the checks' inputs (D's events against D-1 .. D's calls)
    assert not s.checked and checks(data)["outcomes_unattributed_events"][:3] == (False, "WARN", 1)
    land(data, "product", D, "late.jsonl", [product("m5", user_id="nobody")])  # D's own events: checked again
    ingest(data, "product", D)
    s = build(data)
    assert s.checked and checks(data)["outcomes_unattributed_events"][:3] == (False, "WARN", 2)
    # other settings are other inputs too
    assert build(data, config=OutcomeConfig(window_hours=12)).recomputed


def test_nightly_refreshes_extend_the_join_and_match_a_plain_python_attribution(data):
    """Days loaded and built in nightly order: yesterday's refresh attributes only today's events and merges them
    (extended), and the result is still the whole-data attribution."""
    infs, events = random_world()
    on = lambda rows, d: [iso(r) for r in rows if r["timestamp"].date().isoformat() == d]  # noqa: E731
    extended = []
    for night, day in enumerate((D, D1, D2)):
        load(data, {day: on(infs, day)} if on(infs, day) else {}, {day: on(events, day)})
        for dt in ((D, D1, D2)[max(0, night - 2):night]):  # the open days before, as the schedule refreshes them
            extended.append((dt, build(data, dt).extended))
        build(data, day)
    assert extended == [(D, True), (D, False), (D1, True)]  # D on night 3: inputs unchanged, nothing to join
    expected = reference_outcomes(infs, events).set_index("request_id").sort_index()
    got = pd.DataFrame(query(data, "SELECT request_id, has_outcome, events_attributed, success, converted, revenue "
                                   "FROM marts.joined_outcomes"),
                       columns=["request_id", *expected.columns]).set_index("request_id").sort_index()
    assert expected["has_outcome"].sum() > 20
    # revenue is a float sum, and its order of additions differs (an extension adds the new events' sum to the
    # stored one; the oracle adds in its own order): the last bits may differ, nothing more
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=False, rtol=1e-12)
    # first_outcome_at and window_closed as a whole join computes them
    merged = query(data, "SELECT request_id, first_outcome_at, window_closed FROM marts.joined_outcomes ORDER BY 1")
    with warehouse.connect(data) as con:
        con.execute("DELETE FROM meta.outcome_inputs")
    for dt in (D, D1):
        assert not build(data, dt).extended
    assert query(data, "SELECT request_id, first_outcome_at, window_closed FROM marts.joined_outcomes ORDER BY 1") == merged


def test_an_added_call_before_an_attributed_event_joins_the_day_again(data):
    # u1's event is filed under D but happens on D+1, after r2 (a call of D+1, not loaded yet): last touch gives it to
    # r1 until r2 arrives, then to r2, so merging D+1's events alone would be wrong.
    load(data, {D: [inference("r1", user_id="u1", timestamp="2025-06-01T22:00:00Z")]},
         {D: [product("m1", user_id="u1", timestamp="2025-06-02T03:00:00Z")]})
    build(data)
    assert joined(data)["r1"]["has_outcome"] is True
    load(data, {D1: [inference("r2", user_id="u1", timestamp="2025-06-02T01:00:00Z")]},
         {D1: [product("m2", request_id="r1", timestamp="2025-06-02T04:00:00Z")]})
    s = build(data)
    assert s.recomputed and not s.extended
    r1 = joined(data)["r1"]
    assert (r1["events_attributed"], r1["first_outcome_at"]) == (1, ts("2025-06-02T04:00:00Z"))  # m2 only


def test_an_extension_with_no_new_events_only_records_the_added_calls(data):
    load(data, {D: [inference("r1", user_id="u1", timestamp="2025-06-01T10:00:00Z")]},
         {D: [product("m1", user_id="u1", timestamp="2025-06-01T11:00:00Z")]})
    build(data)
    before = joined(data)["r1"]
    load(data, {D1: [inference("r2", user_id="u1", timestamp="2025-06-02T01:00:00Z")]}, {})
    s = build(data)
    assert s.extended and joined(data)["r1"] == before
    load(data, {}, {D1: [product("m2", user_id="u1", timestamp="2025-06-02T00:30:00Z")]})  # before r2: r1's
    s = build(data)
    assert s.extended and joined(data)["r1"]["events_attributed"] == 2


def test_a_failed_extension_leaves_the_day_as_it_was_and_merges_once_on_rerun(data, monkeypatch):
    # The merge and the record of what was merged commit together: a failure in between must not leave merged rows
    # that the next refresh would merge again.
    load(data, {D: [inference("r1", user_id="u1", timestamp="2025-06-01T10:00:00Z")]},
         {D: [product("m1", request_id="r1", timestamp="2025-06-01T11:00:00Z")]})
    build(data)
    before = joined(data)["r1"]
    load(data, {D1: [inference("r2", user_id="u2", timestamp="2025-06-02T01:00:00Z")]},
         {D1: [product("m2", request_id="r1", timestamp="2025-06-02T02:00:00Z", event="Order Completed",
                       properties={"revenue": 5.0})]})
    real_run = warehouse.run

    def failing_run(con, name, **params):
        result = real_run(con, name, **params)
        if name.endswith("joined_merge.sql"):
            raise RuntimeError("crash after the merge, before the commit")
        return result
    monkeypatch.setattr(warehouse, "run", failing_run)
    with pytest.raises(RuntimeError):
        build(data)
    monkeypatch.setattr(warehouse, "run", real_run)
    assert joined(data)["r1"] == before
    s = build(data)
    assert s.extended
    got = joined(data)["r1"]
    assert (got["events_attributed"], got["converted"], got["revenue"]) == (2, True, 5.0)
