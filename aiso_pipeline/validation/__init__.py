"""Validation of the raw tables: Great Expectations suites evaluated inside DuckDB, plus SQL metrics that span
tables or days; results in quality.check_results and reports/validation/. No Dagster here (defs/validation.py
wires it); Great Expectations is imported only when a partition is validated."""
from aiso_pipeline.validation.checks import CHECKS, Check, asset_key, asset_name
from aiso_pipeline.validation.engine import CheckOutcome, report_path, validate_partition

__all__ = ["CHECKS", "Check", "CheckOutcome", "asset_key", "asset_name", "report_path", "validate_partition"]
