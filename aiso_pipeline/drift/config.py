"""Drift configuration: reference window, Evidently-default thresholds and the whitelist of checked columns."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

# Columns of raw.inference_events that drift may check. Only names from these two maps are ever interpolated
# into SQL (as identifiers); everything else reaches the SQL as a bound parameter.
NUMERIC_COLUMNS = ("latency_ms", "input_tokens", "output_tokens", "cached_input_tokens", "confidence", "cost_usd",
                   "sample_rate")
CATEGORICAL_COLUMNS = ("status", "is_fallback", "provider", "operation", "feature", "model_version", "error_type",
                       "experiment_id", "variant")


@dataclass(frozen=True)
class DriftConfig:
    """How one day is compared with its reference window. Defaults are Evidently 0.7.23's defaults.

    Method choice per column (evidently/legacy/calculations/stattests/registry.py, `_get_default_stattest`), where
    `n_ref` counts the reference column's non-null, finite values and `n_values` the distinct values of reference
    and current together:
      - categorical, or numeric with n_values <= categorical_max_distinct:
          n_ref > small_reference_rows -> Jensen-Shannon distance, drift when >= jensenshannon_threshold
          otherwise chi-square (n_values > binary_max_distinct) or two-proportion z test, drift when p < threshold
      - numeric otherwise:
          n_ref > small_reference_rows -> normed Wasserstein distance, drift when >= wasserstein_threshold
          otherwise two-sample Kolmogorov-Smirnov, drift when p <= ks_threshold (Evidently uses <= here)
    """

    reference_days: int = 7
    reference_start: _dt.date | None = None  # pinned reference window; either bound overrides the default
    reference_end: _dt.date | None = None

    wasserstein_threshold: float = 0.1
    jensenshannon_threshold: float = 0.1
    ks_threshold: float = 0.05
    chisquare_threshold: float = 0.05
    z_threshold: float = 0.05

    small_reference_rows: int = 1000
    categorical_max_distinct: int = 5
    binary_max_distinct: int = 2
    dataset_drift_share: float = 0.5

    # Evidently divides the Wasserstein distance by max(std(reference), 0.001).
    wasserstein_norm_floor: float = 0.001
    # Numeric values are counted per bucket of a grid of step wasserstein_tolerance / 4 * std(reference) (the std
    # estimated from a ~1% block sample; exact values for integer columns whose step would be below 1). After the
    # count, the bound on the resulting error of the normed distance is computed from the full data; a column whose
    # bound exceeds wasserstein_tolerance is recounted on a finer grid, so the error never exceeds it.
    wasserstein_tolerance: float = 1e-3
    # A model whose sample holds fewer reference values of a numeric column than this is read in full for its std.
    min_sampled_values: int = 1000
    # scipy's ks_2samp switches from the exact to the asymptotic p-value above 10000 values on a side: up to this
    # many current values, the values are fetched and scipy is called as Evidently calls it; above, D is computed
    # in SQL and the asymptotic p-value in Python.
    ks_exact_max_rows: int = 10_000
    # A categorical column with more categories than this (for one model) is skipped, with a reason.
    max_categories: int = 10_000
    # Feature keys checked per model: the ones in the most feature shapes (then by name). A stray row with
    # thousands of keys would otherwise make a column each (3,000 took drift past 3 GB); the rest are counted in
    # marts.drift_summary.feature_keys_skipped.
    max_feature_keys: int = 100

    numeric_columns: tuple[str, ...] = ("latency_ms", "input_tokens", "output_tokens", "confidence")
    categorical_columns: tuple[str, ...] = ("status", "is_fallback")
    include_features: bool = True

    def __post_init__(self):
        bad = [c for c in self.numeric_columns if c not in NUMERIC_COLUMNS]
        bad += [c for c in self.categorical_columns if c not in CATEGORICAL_COLUMNS]
        if bad:
            raise ValueError(f"drift cannot check column(s) {bad}: allowed numeric {NUMERIC_COLUMNS}, "
                             f"categorical {CATEGORICAL_COLUMNS}")
        if self.reference_days < 1:
            raise ValueError("reference_days must be >= 1")

    def reference_window(self, dt: _dt.date) -> tuple[_dt.date, _dt.date]:
        """Inclusive reference dates for partition day dt."""
        start = self.reference_start or dt - _dt.timedelta(days=self.reference_days)
        end = self.reference_end or dt - _dt.timedelta(days=1)
        if end < start:
            raise ValueError(f"reference window is empty: {start} > {end}")
        return start, end

    def threshold(self, method: str) -> float:
        return {"wasserstein": self.wasserstein_threshold, "jensenshannon": self.jensenshannon_threshold,
                "ks": self.ks_threshold, "chisquare": self.chisquare_threshold, "z": self.z_threshold}[method]
