"""Pure statistics (numpy/scipy/statsmodels only): experiment readouts in `experiments`, the decision in
`decision`."""

from aiso_pipeline.stats import decision
from aiso_pipeline.stats.experiments import (
    EXTRA_COLUMNS,
    READOUT_COLUMNS,
    Comparison,
    Cuped,
    Moments,
    Proportion,
    Ratio,
    SampleMean,
    adjust_p_values,
    analyze,
    compare,
    cuped_theta,
    mde_relative,
    moments,
    sequential_rho,
    srm_p_value,
    variance_of_ratios,
    welch_dof,
)

__all__ = [
    "decision",
    "EXTRA_COLUMNS",
    "READOUT_COLUMNS",
    "Comparison",
    "Cuped",
    "Moments",
    "Proportion",
    "Ratio",
    "SampleMean",
    "adjust_p_values",
    "analyze",
    "compare",
    "cuped_theta",
    "mde_relative",
    "moments",
    "sequential_rho",
    "srm_p_value",
    "variance_of_ratios",
    "welch_dof",
]
