"""Experiment readouts (CONTRACT sections 6, 7): registry, sufficient statistics in DuckDB, readout rows via
aiso_pipeline.stats.analyze(), markdown and report pages. No Dagster here
(aiso_pipeline/defs/experiments.py is the wiring)."""
from aiso_pipeline.experiments.engine import (ASSET, MIXED_CHECK, SRM_CHECK, ExperimentReadout, ReadoutSummary,
                                              build_experiment_readouts, ensure_tables, sufficient_statistics)
from aiso_pipeline.experiments.registry import (DEFAULT_GUARDRAILS, DEFAULT_PRIMARY, METRICS, ExperimentConfig,
                                                default_config, load)
from aiso_pipeline.experiments.report import experiment_markdown, forest_plot, summary_markdown

__all__ = ["ASSET", "DEFAULT_GUARDRAILS", "DEFAULT_PRIMARY", "METRICS", "MIXED_CHECK", "SRM_CHECK",
           "ExperimentConfig", "ExperimentReadout", "ReadoutSummary", "build_experiment_readouts", "default_config",
           "ensure_tables", "experiment_markdown", "forest_plot", "load", "sufficient_statistics", "summary_markdown"]
