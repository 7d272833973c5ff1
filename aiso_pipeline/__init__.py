"""aiso_pipeline: nightly AI-system observability with Dagster and DuckDB."""
