"""Vectorised simulation of one shard of a day: the inference calls, then the product events that follow them.

Both return a dict of equal-length numpy arrays ("columns"). Categorical columns hold codes into the label
tuples of `world`; -1 (codes, user, cached_input_tokens), NaN (floats) and 0 (ids) mean absent.
"""
from __future__ import annotations

import numpy as np

from .world import (CHAT, CONVERSION, DAY_MS, DRIFT_MODEL, EPOCH, FEATURES, HOUR_P, LANGUAGE_P,
                    LANGUAGES, MODEL_NAMES, MODELS, RECS, SEARCH, SPIKE_FACTOR, SPIKE_FEATURE, SPIKE_MODEL, TAG_ANON,
                    TAG_MESSAGE, TAG_REQUEST, TAG_SESSION, TAG_UNKNOWN, TAG_VISITOR, UNPRICED, World, id_keys, mix)

STATUSES = ("ok", "error", "timeout")
ERROR_TYPES = ("rate_limit_exceeded", "internal_server_error", "context_length_exceeded", "timeout")
APP_VERSIONS = ("2.3.1", "2.4.0", "2.4.1")
TZ = ("Z", "+02:00", "-05:00", "+05:30", "+09:00")  # written suffix; code 0 is also used for epoch-ms rows
TZ_MIN = np.array([0, 120, -300, 330, 540])
EVENTS = ("Answer Accepted", "Task Completed", "Order Completed", "Page Viewed", "Answer Shown")
ACCEPTED, TASK, ORDER, PAGE, SHOWN = range(5)
SHOWN_LOST = 0.015  # instrumented features log `Answer Shown` with the request_id; the client loses a few
PATHS = ("/", "/pricing", "/docs", "/search", "/account")
ATTRIBUTION = ("request_id", "user_only", "unknown_request_id", "outside_window")

_SESSION_P = np.array([f.session_share for f in FEATURES])
_CALLS = np.array([f.calls for f in FEATURES])
_GAP_MS = np.array([f.gap_s * 1000 for f in FEATURES])
_PROMPT = np.log([f.prompt_chars for f in FEATURES])
_OUTPUT = np.log([f.output_tokens for f in FEATURES])
_DOCS = np.array([f.docs for f in FEATURES])
_KEEP = np.array([f.sample_rate or 1.0 for f in FEATURES])
_SAMPLE = np.array([np.nan if f.sample_rate is None else f.sample_rate for f in FEATURES])
_TASK = np.array([f.task_p for f in FEATURES])
_ORDER = np.array([f.order_p for f in FEATURES])
_MODEL_CUM = np.cumsum([[f.models.get(m, 0.0) for m in MODEL_NAMES] for f in FEATURES], axis=1)
_BASE_MS = np.array([m.base_ms for m in MODELS])
_MS_PER_TOKEN = np.array([m.ms_per_token for m in MODELS])
_PRICE = np.array([m.reported_price or (np.nan, np.nan) for m in MODELS])
_ROWS_PER_SESSION = float((_SESSION_P * _CALLS * _KEEP).sum())  # logged rows per session, on average


def inference_shard(w: World, day_i: int, shard: int, rows: int) -> dict[str, np.ndarray]:
    """About `rows` logged model calls spread over the day, in sessions of one user, feature and model."""
    rng = np.random.default_rng([w.seed, day_i, shard, 1])
    day = w.days[day_i]
    s = max(1, round(rows / _ROWS_PER_SESSION))
    s_feat = rng.choice(len(FEATURES), s, p=_SESSION_P)
    s_calls = rng.geometric(1 / _CALLS[s_feat])
    s_user = rng.choice(w.users, s, p=w.user_p)
    s_model = (rng.random(s)[:, None] > _MODEL_CUM[s_feat]).sum(axis=1)
    s_start = rng.choice(24, s, p=HOUR_P) * 3_600_000 + rng.integers(0, 3_600_000, s)
    s_id = id_keys(w.seed, day, shard, s, TAG_SESSION)

    sess = np.repeat(np.arange(s), s_calls)
    first = np.cumsum(s_calls) - s_calls
    pos = np.arange(len(sess)) - first[sess]
    gap = rng.exponential(_GAP_MS[s_feat[sess]])
    gap[pos == 0] = 0
    offset = np.cumsum(gap)
    offset -= offset[first][sess]
    # Shift sessions that would run past midnight back, so every call falls on its dt day.
    s_start = np.minimum(s_start, np.maximum(DAY_MS - 1 - offset[first + s_calls - 1], 0))
    ts = (day - EPOCH).days * DAY_MS + (s_start[sess] + offset).astype(np.int64)

    # Logging sample: search logs 1 call in 4 (rows carry sample_rate 0.25).
    keep = rng.random(len(sess)) < _KEEP[s_feat[sess]]
    sess, pos, ts = sess[keep], pos[keep], ts[keep]
    n = len(sess)
    f, m, u = s_feat[sess], s_model[sess], s_user[sess]
    chat = f == CHAT

    drift = (day_i >= w.drift_day) & (m == DRIFT_MODEL)
    spike = (day_i == w.spike_day) & (m == SPIKE_MODEL) & (f == SPIKE_FEATURE)
    prompt = np.clip(rng.lognormal(_PROMPT[f], 0.7) * np.where(drift, 2.2, 1.0), 5, 40_000).astype(np.int32)
    lang = np.where(rng.random(n) < 0.9, w.user_lang[u], rng.choice(len(LANGUAGES), n, p=LANGUAGE_P))
    lang[drift & (rng.random(n) < 0.35)] = LANGUAGES.index("es")
    docs = rng.poisson(_DOCS[f] + 2.5 * drift).astype(np.int16)
    # Input = system prompt + user prompt + retrieved context + (chat) the conversation so far.
    tokens_in = (120 + prompt / 3.8 + docs * 180 + chat * pos * 220) * rng.lognormal(0, 0.15, n)
    tokens_in = np.clip(tokens_in, 50, 4000 * np.where(drift, 2, 1)).astype(np.int64)
    cached = np.where((pos > 0) & (rng.random(n) < np.where(chat, 0.7, 0.1)),
                      tokens_in * rng.uniform(0.4, 0.85, n), 0).astype(np.int64)
    tokens_out = np.clip(rng.lognormal(_OUTPUT[f], 0.6), 10, 1500)

    r = rng.random(n)
    # errors about 1% of calls (the scorecard passes at 2%), timeouts 0.3%; the self-hosted model errs 4%
    err_p = np.where(m == MODEL_NAMES.index(UNPRICED[0]), 0.04, 0.008)
    status = np.where(r < err_p, 1, np.where(r < err_p + 0.003, 2, 0)).astype(np.int8)
    ok = status == 0
    error_type = np.where(status == 1, rng.choice(3, n, p=(0.5, 0.3, 0.2)), np.where(status == 2, 3, -1))
    confidence = np.where(ok, np.round(rng.beta(4, 2, n), 3), np.nan)

    variant = w.variant[f, u] ^ (w.leak[f, u] & (rng.random(n) < 0.3))  # leaky users: mostly their own variant
    # The treatment of confidence_threshold answers low-confidence chats with a short canned fallback.
    fallback = chat & (variant == 1) & (confidence < 0.5)
    tokens_out = np.where(fallback, rng.integers(8, 40, n), tokens_out)
    tokens_out = np.where(ok, tokens_out, 0).astype(np.int64)
    tokens_in = np.where(spike, tokens_in * SPIKE_FACTOR[0], tokens_in).astype(np.int64)
    tokens_out = np.where(spike, tokens_out * SPIKE_FACTOR[1], tokens_out).astype(np.int64)

    latency = _BASE_MS[m] * rng.lognormal(0, 0.3, n) + tokens_out * _MS_PER_TOKEN[m] * rng.lognormal(0, 0.1, n)
    latency = np.where(fallback, 40 + rng.exponential(30, n), latency)
    latency = np.where(status == 1, latency * 0.3, np.where(status == 2, 30_000 + rng.integers(0, 50, n), latency))
    cost = np.round((tokens_in * _PRICE[m, 0] + tokens_out * _PRICE[m, 1]) / 1e6, 6)

    style = rng.choice(3, n, p=(0.85, 0.07, 0.08))  # ISO with Z, ISO with an offset, epoch ms
    tz = np.where(style == 1, rng.integers(1, len(TZ), n), 0)

    order = np.argsort(ts, kind="stable")  # exports are time-ordered
    cols = dict(
        rid=id_keys(w.seed, day, shard, n, TAG_REQUEST),
        ts=ts, epoch_ms=style == 2, tz=tz, tz_min=TZ_MIN[tz],
        model=m, feature=f, user=u, session=s_id[sess], input_tokens=tokens_in,
        output_tokens=tokens_out, cached_input_tokens=np.where(cached > 0, cached, -1),
        latency_ms=np.round(latency, 1), status=status, error_type=error_type,
        is_fallback=fallback | (status == 2),  # a timeout serves a canned answer too
        confidence=confidence, cost_usd=cost, experiment=f, variant=variant, sample_rate=_SAMPLE[f],
        prompt_chars=prompt, language=lang, retrieved_docs=docs, user_tier=w.user_pro[u].astype(np.int8),
        region=np.where(rng.random(n) < 0.6, w.user_region[u], -1),
        app_version=np.where(rng.random(n) < 0.3, rng.choice(len(APP_VERSIONS), n), -1),
        last=np.diff(sess, append=-1) != 0,  # last logged call of its session (for outcomes)
    )
    return {k: v[order] for k, v in cols.items()}


def product_events(w: World, inf: dict[str, np.ndarray], day_i: int, shard: int) -> tuple[dict, np.ndarray]:
    """Segment track events following one inference shard, and how each outcome event can be attributed."""
    rng = np.random.default_rng([w.seed, day_i, shard, 2])
    n = len(inf["ts"])
    f, u, ok = inf["feature"], inf["user"], inf["status"] == 0
    conf = np.nan_to_num(inf["confidence"])
    # Confidence is the model's estimate that the answer succeeds: a shown answer is accepted about that often
    # (a little more: about one acceptance in eight reaches its call only through the user, or not at all), a canned
    # fallback rarely.
    p_accept = np.where(inf["is_fallback"], 0.15, np.clip(1.05 * conf, 0, 1))
    accepted = ok & (rng.random(n) < p_accept)
    task = inf["last"] & ok & (rng.random(n) < _TASK[f])
    ordered = ok & (rng.random(n) < _ORDER[f])

    # Chat converts per user: the first chat session decides once whether the user ever converts (by variant),
    # so per-user conversion rates follow CONVERSION; converted users sometimes order again.
    ends = np.flatnonzero(inf["last"] & (f == CHAT))
    users, first = np.unique(u[ends], return_index=True)  # rows are time-ordered: first session end per user
    new = ~w.decided[users]
    users, first_rows = users[new], ends[first[new]]
    wins = rng.random(len(users)) < np.asarray(CONVERSION)[inf["variant"][first_rows]]
    repeat = ends[w.converted[u[ends]] & (rng.random(len(ends)) < 0.05)]
    w.decided[users], w.converted[users[wins]] = True, True
    ordered[first_rows[wins]] = True
    ordered[repeat] = True

    src = np.concatenate([np.flatnonzero(accepted), np.flatnonzero(task), np.flatnonzero(ordered)])
    event = np.repeat([ACCEPTED, TASK, ORDER], [accepted.sum(), task.sum(), ordered.sum()])
    k = len(src)
    delay = rng.lognormal(np.log([45e3, 600e3, 2400e3])[event], np.array([1.0, 1.2, 1.3])[event])
    delay = np.minimum(delay, 23 * 3_600_000)
    attribution = rng.choice(3, k, p=(0.84, 0.15, 0.01))
    if day_i != w.unknown_day:  # unknown request ids only from the faulty client release (drawn all the same)
        attribution[attribution == 2] = 0
    late = (attribution == 0) & (rng.random(k) < np.where(event == ORDER, 0.04, 0.01))
    attribution[late] = 3
    delay[late] = rng.uniform(25, 40, late.sum()) * 3_600_000  # past the 24 h attribution window
    unknown = id_keys(w.seed, w.days[day_i], shard, k, TAG_UNKNOWN)
    rid = np.select([attribution == 1, attribution == 2], [np.uint64(0), unknown], inf["rid"][src])

    # Page views: a few per session with the user, plus anonymous visitors who never call a model.
    starts = np.unique(inf["session"], return_index=True)[1]  # rows are time-ordered: each session's first call
    views = np.repeat(starts, rng.poisson(0.6, len(starts)))
    anon = rng.choice(starts, rng.poisson(0.05 * len(starts)))
    page = np.concatenate([views, anon])
    page_delay = rng.uniform(0, 15 * 60_000, len(page))

    m = k + len(page)
    user = np.r_[u[src], u[views], np.full(len(anon), -1)]
    visitor = mix(rng.integers(0, 2 * w.users, len(anon)).astype(np.uint64) ^ np.uint64(TAG_VISITOR))
    anon_id = np.r_[np.where(rng.random(k + len(views)) < 0.4, mix(user[:k + len(views)].astype(np.uint64)
                                                                     ^ np.uint64(TAG_ANON)), 0), visitor]
    is_order = np.r_[event == ORDER, np.zeros(len(page), bool)]
    cols = dict(
        mid=id_keys(w.seed, w.days[day_i], shard, m, TAG_MESSAGE),
        ts=np.r_[inf["ts"][src] + delay.astype(np.int64), inf["ts"][page] + page_delay.astype(np.int64)],
        epoch_ms=rng.random(m) < 0.06, tz=np.zeros(m, np.int8), tz_min=np.zeros(m, np.int16),  # Segment: UTC
        event=np.r_[event, np.full(len(page), PAGE)],
        user=user, anon=anon_id,
        session=np.where(rng.random(m) < 0.7, inf["session"][np.r_[src, page]], 0),
        rid=np.r_[rid, np.zeros(len(page), np.uint64)],
        revenue=np.where(is_order, np.round(np.clip(rng.lognormal(np.log(60), 0.5, m), 20, 200), 2), np.nan),
        path=np.r_[np.full(k, -1), rng.choice(len(PATHS), len(page))],
    )
    cols["session"][k + len(views):] = 0  # anonymous visitors have no session of a known user

    # `Answer Shown` for every answer of the well-instrumented features (chat, search) carries its request_id, so
    # their calls join to the user's session; recommendations never log it (the demo's under-instrumented feature).
    # A separate random stream: the events above are drawn exactly as before.
    rng3 = np.random.default_rng([w.seed, day_i, shard, 3])
    shown = np.flatnonzero((f != RECS) & (rng3.random(n) >= SHOWN_LOST))
    s_n = len(shown)
    extra = dict(
        mid=id_keys(w.seed, w.days[day_i], shard, m + s_n, TAG_MESSAGE)[m:],
        ts=inf["ts"][shown] + rng3.lognormal(np.log(1500), 0.5, s_n).astype(np.int64),
        epoch_ms=np.zeros(s_n, bool), tz=np.zeros(s_n, np.int8), tz_min=np.zeros(s_n, np.int16),
        event=np.full(s_n, SHOWN), user=u[shown], anon=np.zeros(s_n, np.uint64), session=inf["session"][shown],
        rid=inf["rid"][shown], revenue=np.full(s_n, np.nan), path=np.full(s_n, -1),
    )
    cols = {key: np.r_[cols[key], extra[key]] for key in cols}
    return cols, np.r_[attribution, np.full(len(page), -1), np.zeros(s_n, attribution.dtype)]
