"""Outcomes and cost: every inference tied to the product events it led to, rolled up per day × model × feature
(CONTRACT sections 4, 5, 7). Plain Python + DuckDB SQL; the Dagster wiring is aiso_pipeline/defs/outcomes.py."""
from aiso_pipeline.outcomes.config import (DEFAULT_CONVERSION_EVENTS, DEFAULT_SUCCESS_EVENTS,
                                           MAX_UNATTRIBUTED_SHARE, MIN_JOIN_RATE, OutcomeConfig,
                                           load_config)
from aiso_pipeline.outcomes.engine import (JoinSummary, build_cost_daily, build_joined_outcomes,
                                           build_outcome_coverage, cost_trend, ensure_tables, headline,
                                           latency_by_hour, low_coverage, open_days)

__all__ = ["DEFAULT_CONVERSION_EVENTS", "DEFAULT_SUCCESS_EVENTS", "MAX_UNATTRIBUTED_SHARE", "MIN_JOIN_RATE",
           "JoinSummary", "OutcomeConfig", "load_config",
           "build_cost_daily", "build_joined_outcomes", "build_outcome_coverage", "cost_trend", "ensure_tables",
           "headline", "latency_by_hour", "low_coverage", "open_days"]
