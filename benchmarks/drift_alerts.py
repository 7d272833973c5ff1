"""Which drifted columns should alert? Sampling noise vs real shifts, by simulation (numpy + the project's
Evidently-equivalent tests in aiso_pipeline.drift.stattests; no pipeline, seconds).

    python benchmarks/drift_alerts.py [--runs 1000] [--seed 1]

A model's day (n calls) is compared with a 7-day reference (7 n calls), as the drift assets do, on four columns
like the demo's. Calls come from users (1 + Poisson(4) calls each) who keep their language and part of their
prompt style: input tokens and prompt length are lognormal with a per-user factor, confidence is beta(4, 2) per
call, language is one of 5 per user. Quiet days draw both sides from one distribution; a drift day shifts prompt
length x 2.2, input tokens x 2 and moves 35% of users to a new language (the generator's episode); a mild drift
x 1.2, x 1.15 and 5%. For each column and day size it prints how often Evidently's default rule says "drifted",
and how often that rule plus a significance test of the shift (two-sample KS / chi-square homogeneity) would
alert: counting calls as independent, or counting users (the design effect sum m^2 / sum m of calls per user,
as the pipeline does).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aiso_pipeline.drift import stattests  # noqa: E402

LANGS = np.array(["en", "de", "fr", "ja", "pt"])
SHARES = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
# day kind -> (input tokens factor, prompt length factor, share of users in a new language)
SHIFTS = {"quiet": (1.0, 1.0, 0.0), "mild drift": (1.15, 1.2, 0.05), "drift": (2.0, 2.2, 0.35)}
ALPHA = 0.001  # the pipeline's default (reference/monitoring.yaml: drift_alert_alpha)


def day(rng, n: int, kind: str) -> tuple[dict[str, np.ndarray], float]:
    """n calls of one side, and its design effect (calls per user)."""
    tokens, chars, new_lang = SHIFTS[kind]
    calls = 1 + rng.poisson(4, max(n // 5, 1))
    calls = calls[np.cumsum(calls) <= n] if calls.sum() > n else calls
    users = len(calls)
    lang = np.where(rng.random(users) < new_lang, "es", rng.choice(LANGS, users, p=SHARES))
    style = rng.normal(0, 0.5, users)
    u = np.repeat(np.arange(users), calls)
    m = len(u)
    cols = {"input_tokens": np.round(np.exp(np.log(400 * tokens) + style[u] + rng.normal(0, 0.4, m))),
            "confidence": np.round(rng.beta(4, 2, m), 3),
            "prompt_chars": np.round(np.exp(np.log(300 * chars) + style[u] + rng.normal(0, 0.5, m))),
            "language": lang[u]}
    return cols, float((calls ** 2).sum() / calls.sum())  # the pipeline's design effect (drift/sql/units.sql)


def counts(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, n = np.unique(v, return_counts=True)
    return x, n


def judge(ref: np.ndarray, cur: np.ndarray, categorical: bool, deff: tuple[float, float]) -> tuple[bool, float, float]:
    """(Evidently's default decision, the shift's p counting calls, the shift's p counting users)."""
    if categorical:
        r, c = dict(zip(*counts(ref))), dict(zip(*counts(cur)))
        if len(ref) > 1000:
            drifted = stattests.jensenshannon_from_counts(r, c) >= 0.1
        else:
            drifted = stattests.chisquare_from_counts(r, c)[1] < 0.05
        return drifted, stattests.homogeneity_p(r, c), stattests.homogeneity_p(r, c, *deff)
    rx, rn = counts(ref)
    cx, cn = counts(cur)
    if len(ref) > 1000:
        drifted = stattests.wasserstein_normed(rx, rn, cx, cn, max(float(np.std(ref)), 0.001)) >= 0.1
    else:
        drifted = stattests.ks_from_values(ref, cur)[1] <= 0.05
    return (drifted, stattests.ks_from_counts(rx, rn, cx, cn)[1],
            stattests.ks_from_counts(rx, rn, cx, cn, *deff)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"| calls a day | day | column | Evidently says drifted | alert, calls as independent (p < {ALPHA:g}) | "
          f"alert, users as units (p < {ALPHA:g}, the pipeline) |")
    print("|---|---|---|---|---|---|")
    for n in (270, 2000, 20000):
        runs = args.runs if n <= 2000 else max(args.runs // 10, 100)
        for kind in SHIFTS:
            rows: dict[str, list[tuple[bool, float, float]]] = {}
            any_iid = any_units = 0
            for _ in range(runs):
                (ref, d_ref), (cur, d_cur) = day(rng, 7 * n, "quiet"), day(rng, n, kind)
                a_iid = a_units = False
                for col in ref:
                    got = judge(ref[col], cur[col], col == "language", (d_ref, d_cur))
                    rows.setdefault(col, []).append(got)
                    a_iid |= got[0] and got[1] < ALPHA
                    a_units |= got[0] and got[2] < ALPHA
                any_iid += a_iid
                any_units += a_units
            for col, got in rows.items():
                d, p_iid, p_units = (np.array(x) for x in zip(*got))
                print(f"| {n:,} | {kind} | {col} | {d.mean():.1%} | {np.mean(d & (p_iid < ALPHA)):.1%} | "
                      f"{np.mean(d & (p_units < ALPHA)):.1%} |")
            print(f"| {n:,} | {kind} | **any of the 4** | | {any_iid / runs:.1%} | {any_units / runs:.1%} |")


if __name__ == "__main__":
    main()
