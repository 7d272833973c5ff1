"""Experiment statistics on per-variant sufficient statistics, split as GrowthBook's gbstats is:

- `statistics`: the sufficient statistics (SampleMean, Proportion, Ratio, Cuped, CupedRatio) and CUPED's theta;
- `tests`: pairwise moments, Welch / sequential tests, the relative lift's interval, SRM, Holm / BH;
- `power`: the MDE of the test actually run, and the days still needed to reach a target MDE;
- `decision`: ship / stop / keep_running / invalid, safe under daily looks, with its reason;
- `readout`: one experiment's readout in one call.

Modelled on gbstats (packages/stats/gbstats) so the numbers match its published fixtures. Pure numpy/scipy: no
Dagster, DuckDB or warehouse column names here.
"""

import importlib

# Loaded on first use (PEP 562): `decision` needs neither numpy nor scipy, and the code location imports it, so
# importing the package must not pull scipy.stats in (about 0.6 s) before an experiment is read out.
_HOME = {
    "DEFAULT_POWER": "power", "days_to_mde": "power", "mde_relative": "power",
    "MetricReadout": "readout", "Readout": "readout", "analyze": "readout",
    "Cuped": "statistics", "CupedRatio": "statistics", "Proportion": "statistics", "Ratio": "statistics",
    "SampleMean": "statistics", "Stat": "statistics", "cuped_ratio_theta": "statistics",
    "cuped_theta": "statistics", "variance_of_ratios": "statistics",
    "DEFAULT_ALPHA": "tests", "DEFAULT_SEQUENTIAL_TUNING": "tests", "DEFAULT_SRM_THRESHOLD": "tests",
    "Comparison": "tests", "Moments": "tests", "adjust_p_values": "tests", "compare": "tests",
    "moments": "tests", "sequential_rho": "tests", "srm_p_value": "tests", "welch_dof": "tests",
}


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(f"aiso_pipeline.stats.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    if name == "decision":
        return importlib.import_module("aiso_pipeline.stats.decision")
    raise AttributeError(f"module 'aiso_pipeline.stats' has no attribute {name!r}")


__all__ = [
    "decision",
    "DEFAULT_ALPHA",
    "DEFAULT_POWER",
    "DEFAULT_SEQUENTIAL_TUNING",
    "DEFAULT_SRM_THRESHOLD",
    "Comparison",
    "Cuped",
    "CupedRatio",
    "MetricReadout",
    "Moments",
    "Proportion",
    "Ratio",
    "Readout",
    "SampleMean",
    "Stat",
    "adjust_p_values",
    "analyze",
    "compare",
    "cuped_ratio_theta",
    "cuped_theta",
    "days_to_mde",
    "mde_relative",
    "moments",
    "sequential_rho",
    "srm_p_value",
    "variance_of_ratios",
    "welch_dof",
]
