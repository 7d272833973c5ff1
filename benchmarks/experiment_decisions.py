"""How often experiment decisions are wrong under daily looks: the simulation of
aiso_pipeline_tests/test_experiment_simulations.py, larger, for the README's figures.

    python benchmarks/experiment_decisions.py [--runs 1000]

For A/A experiments (no effect) and for a +20% / +40% conversion lift, 150 users per arm and day, 28 daily looks:
the share of runs that read `ship` or `stop` on some day, with the default policy (sequential, 7-day burn-in,
guardrail margins) and with the old default (a fixed-horizon test, deciding on every look).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aiso_pipeline.stats import decision  # noqa: E402
from aiso_pipeline_tests.test_experiment_simulations import first_decision  # noqa: E402

# The old default: a fixed-horizon test read every day as if each look were the planned one, no burn-in,
# guardrails against no change (margin 0).
OLD = decision.Policy(sequential=True, min_days=0, min_units_per_arm=0)


def rates(runs: int, lift: float, policy, old: bool = False) -> tuple[float, float, float]:
    out = []
    for seed in range(runs):
        if old:
            out.append(_old_first_decision(seed, lift))
        else:
            out.append(first_decision(seed, lift=lift, policy=policy)[0])
    n = len(out)
    return out.count("ship") / n, out.count("stop") / n, sum(o != "keep_running" for o in out) / n


def _old_first_decision(seed: int, lift: float) -> str:
    import aiso_pipeline_tests.test_experiment_simulations as sim
    from aiso_pipeline import stats

    real_analyze = stats.analyze

    def fixed(*args, **kw):  # fixed horizon, guardrails at margin 0, decided on every look
        kw.update(sequential=False, margins={m: 0.0 for m in sim.GUARDRAILS},
                  policy=decision.Policy(sequential=True, min_days=0, min_units_per_arm=0))
        return real_analyze(*args, **kw)
    sim.stats.analyze = fixed
    try:
        return sim.first_decision(seed, lift=lift, policy=OLD)[0]
    finally:
        sim.stats.analyze = real_analyze


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    print(f"{'world':<14} {'policy':<32} {'ship':>6} {'stop':>6} {'decided':>8}   ({args.runs} runs, 28 daily looks)")
    for lift in (0.0, 0.2, 0.4):
        world = "A/A" if lift == 0 else f"+{lift:.0%} conversion"
        for label, policy, old in (("default (sequential, burn-in)", decision.Policy(), False),
                                   ("old default (fixed, every day)", OLD, True)):
            ship, stop, decided = rates(args.runs, lift, policy, old)
            print(f"{world:<14} {label:<32} {ship:>6.1%} {stop:>6.1%} {decided:>8.1%}", flush=True)


if __name__ == "__main__":
    main()
