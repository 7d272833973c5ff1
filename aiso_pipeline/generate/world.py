"""The simulated product: models, features, experiments and users, plus the episodes planted for analytics to find.

Everything random here is drawn once per run from the seed; `World` also carries the little state that must
persist across days (who has already had their conversion decided, which variants each user was seen in).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    version: str  # served snapshot
    operation: str
    base_ms: float  # latency before the first output token
    ms_per_token: float
    reported_price: tuple[float, float] | None = None  # USD per Mtok (input, output): this provider reports cost_usd


LLAMA = "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"  # Together AI's name, as the price table spells it
MODELS = (
    Model("gpt-4o", "openai", "gpt-4o-2024-08-06", "chat", 450, 9),
    Model("gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18", "chat", 300, 5),
    Model("claude-3-5-sonnet-20241022", "anthropic", "claude-3-5-sonnet-20241022", "chat", 600, 12),
    Model("claude-sonnet-4-20250514", "anthropic", "claude-sonnet-4-20250514", "chat", 650, 11),
    Model("gemini-1.5-flash", "gcp.gemini", "gemini-1.5-flash-002", "generate_content", 250, 4),
    Model("mistral-large-latest", "mistral_ai", "mistral-large-2411", "chat", 500, 10, reported_price=(2.0, 6.0)),
    Model(LLAMA, "together_ai", LLAMA, "chat", 350, 7),
    Model("acme-internal-7b", "acme", "acme-internal-7b-v3", "chat", 150, 3),  # self-hosted: in no price table
)
MODEL_NAMES = tuple(m.name for m in MODELS)
UNPRICED = ("acme-internal-7b",)


@dataclass(frozen=True)
class Feature:
    name: str
    session_share: float  # share of all sessions
    calls: float  # mean model calls per session
    gap_s: float  # mean seconds between calls of a session
    prompt_chars: float  # median
    output_tokens: float  # median
    docs: float  # mean retrieved documents
    models: dict[str, float]  # model mix; a session stays on one model
    sample_rate: float | None  # logging rate written on its rows; None leaves the key out
    task_p: float  # chance a session ends in `Task Completed`
    order_p: float  # chance a call leads to `Order Completed` (chat converts per user instead, see CONVERSION)


FEATURES = (
    Feature("chat", 0.36, 4, 45, 350, 280, 1.5,
            {"gpt-4o": .30, "claude-3-5-sonnet-20241022": .18, "claude-sonnet-4-20250514": .14,
             "gpt-4o-mini": .18, "mistral-large-latest": .12, "acme-internal-7b": .08}, None, 0.35, 0.0),
    Feature("search", 0.26, 6, 15, 60, 90, 6,
            {"gpt-4o-mini": .45, "gemini-1.5-flash": .40, LLAMA: .15}, 0.25, 0.15, 0.008),
    Feature("recommendations", 0.38, 2, 60, 150, 60, 3,
            {"gemini-1.5-flash": .35, "gpt-4o-mini": .25, LLAMA: .20, "gpt-4o": .10,
             "acme-internal-7b": .10}, 1.0, 0.05, 0.025),
)
CHAT, SEARCH, RECS = range(3)


@dataclass(frozen=True)
class Experiment:
    id: str
    feature: int  # every call of this feature carries the experiment (feature i runs experiment i)
    variants: tuple[str, str]  # control first
    control_share: float  # actual assignment share of the control; the registry always says 50/50
    description: str
    primary_metric: str  # the registry's; `mde` is the relative lift it was sized to detect (80% power)
    mde: float


EXPERIMENTS = (
    # a bold change, sized for a +50% conversion lift: about 5 days of the demo's users power it
    Experiment("confidence_threshold", CHAT, ("control", "fallback_low_conf"), 0.5,
               "Serve a cheap fallback answer when model confidence is below 0.5", "conversion_rate", 0.5),
    # search converts 1-4% of users: an A/A on success rate (two thirds of users) is powered for 10% in ~4 days
    Experiment("aa_test", SEARCH, ("a", "b"), 0.5, "A/A test: both variants behave identically", "success_rate",
               0.10),
    Experiment("srm_test", RECS, ("control", "treatment"), 0.6,
               "New recommendation ranker; the assignment service is buggy (about 60/40, not 50/50)",
               "conversion_rate", 0.25),
)
CONVERSION = (0.12, 0.20)  # per-user chance to convert in confidence_threshold: control, treatment (+67%: the
# demo's ~1,700 users per arm let the sequential test, the default, see it within its 14 days)

LANGUAGES = ("en", "de", "fr", "ja", "pt", "es")  # "es" appears only with the drift
LANGUAGE_P = (0.62, 0.14, 0.12, 0.07, 0.05, 0.0)
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")
TIERS = ("free", "pro")

DRIFT_MODEL = MODEL_NAMES.index("gpt-4o-mini")
SPIKE_MODEL, SPIKE_FEATURE, SPIKE_FACTOR = MODEL_NAMES.index("gpt-4o"), RECS, (4.0, 2.5)  # (input, output) tokens

_HOUR = np.arange(24)
HOUR_P = 1 + 0.8 * np.sin(2 * np.pi * (_HOUR - 9) / 24)  # diurnal: busiest around 15:00 UTC, quiet at night
HOUR_P = HOUR_P / HOUR_P.sum()

# High-bit tags keep every id family apart: keys are below 2**58, so `mix(key ^ tag)` never collides across tags.
TAG_REQUEST, TAG_SESSION, TAG_MESSAGE, TAG_ANON = 0, 1 << 58, 2 << 58, 3 << 58
TAG_VISITOR, TAG_UNKNOWN, TAG_FAULT = 4 << 58, 5 << 58, 6 << 58


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a bijection on uint64, so distinct keys give distinct, random-looking ids."""
    x = np.asarray(x, dtype=np.uint64).copy()
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def id_keys(seed: int, day: dt.date, shard: int, n: int, tag: int) -> np.ndarray:
    """Unique ids for n things made in one (day, shard): the key packs day, shard and index; the seed
    reshuffles them (still a bijection), so runs with different seeds do not share ids."""
    base = ((day - EPOCH).days * 256 + shard) << 32
    keys = mix((np.uint64(base) + np.arange(n, dtype=np.uint64)) ^ np.uint64(tag))
    return mix(keys ^ mix(np.uint64(seed)))


@dataclass
class World:
    seed: int
    days: list[dt.date]
    users: int
    user_p: np.ndarray  # activity: heavy users have many sessions
    user_lang: np.ndarray
    user_pro: np.ndarray
    user_region: np.ndarray
    variant: np.ndarray  # (experiment, user) -> variant index, sticky
    leak: np.ndarray  # (experiment, user): a handful of srm_test's users sometimes served the other variant
    drift_day: int  # day index from which DRIFT_MODEL's inputs shift
    spike_day: int  # day index of the token/cost spike
    unknown_day: int  # day index of the client release that sends outcome events with unknown request ids
    decided: np.ndarray  # user has had the chat conversion decided (on their first chat session)
    converted: np.ndarray
    seen: np.ndarray  # (experiment, user, variant): variants each user was logged in

    @classmethod
    def build(cls, seed: int, days: list[dt.date], users: int) -> World:
        rng = np.random.default_rng([seed, 0])
        n = len(days)
        p = rng.lognormal(0, 0.7, users)
        # Sticky assignment: one uniform draw per (experiment, user), i.e. a seeded hash of the user.
        u = rng.random((len(EXPERIMENTS), users))
        variant = (u >= np.array([e.control_share for e in EXPERIMENTS])[:, None]).astype(np.int8)
        leak = np.zeros((len(EXPERIMENTS), users), bool)
        for e in range(len(EXPERIMENTS)):
            leak[e, rng.choice(users, min(users, max(2, users // 500)), replace=False)] = True
        leak[[e for e in range(len(EXPERIMENTS)) if e != RECS]] = False  # only srm_test's assignment is buggy
        return cls(
            seed=seed, days=days, users=users, user_p=p / p.sum(),
            user_lang=rng.choice(len(LANGUAGES), users, p=LANGUAGE_P),
            user_pro=rng.random(users) < 0.25,
            user_region=rng.choice(len(REGIONS), users, p=(0.5, 0.35, 0.15)),
            variant=variant, leak=leak,
            drift_day=max(n // 2, n - 3), spike_day=n // 3, unknown_day=n // 4,
            decided=np.zeros(users, bool), converted=np.zeros(users, bool),
            seen=np.zeros((len(EXPERIMENTS), users, 2), bool),
        )
