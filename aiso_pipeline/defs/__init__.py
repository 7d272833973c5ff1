"""Dagster wiring, one module per domain. Thin: the work lives in the plain packages beside `defs`."""
