"""Experiment statistics on per-variant sufficient statistics, split as GrowthBook's gbstats is:

- `statistics`: the sufficient statistics (SampleMean, Proportion, Ratio, Cuped, CupedRatio) and CUPED's theta;
- `tests`: pairwise moments, Welch / sequential tests, the relative lift's interval, SRM, Holm / BH;
- `power`: the MDE of the test actually run, and the days still needed to reach a target MDE;
- `decision`: ship / stop / keep_running / invalid, safe under daily looks, with its reason;
- `readout`: one experiment's readout in one call.

Modelled on gbstats (packages/stats/gbstats) so the numbers match its published fixtures. Pure numpy/scipy: no
Dagster, DuckDB or warehouse column names here.
"""

from aiso_pipeline.stats import decision
from aiso_pipeline.stats.power import DEFAULT_POWER, days_to_mde, mde_relative
from aiso_pipeline.stats.readout import MetricReadout, Readout, analyze
from aiso_pipeline.stats.statistics import (Cuped, CupedRatio, Proportion, Ratio, SampleMean, Stat, cuped_ratio_theta,
                                            cuped_theta, variance_of_ratios)
from aiso_pipeline.stats.tests import (DEFAULT_ALPHA, DEFAULT_SEQUENTIAL_TUNING, DEFAULT_SRM_THRESHOLD, Comparison,
                                       Moments, adjust_p_values, compare, moments, sequential_rho, srm_p_value,
                                       welch_dof)

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
