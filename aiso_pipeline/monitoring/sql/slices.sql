-- Sufficient statistics per slice (model x feature x declared input x value) and per model x feature (the row
-- whose slice_key is NULL), in one pass over _mon_rows with GROUPING SETS; then the weighted p95 latency per
-- slice. Slots in double braces are filled in by monitoring/__init__.py (one set per declared slice); slice
-- keys arrive as bound parameters. Only the $max_values most requested values of each model x feature x key are
-- kept (an input with a million distinct values would otherwise make a million rows); the rest are counted.
CREATE OR REPLACE TEMP TABLE _mon_slice_all AS
SELECT model, feature, {{key_case}} AS slice_key, {{value_case}} AS slice_value,
       sum(weight) AS requests, count(*) AS calls, sum(weight * weight) AS weight_sq,
       sum(weight * success::INT) AS successes, sum(weight * converted::INT) AS conversions,
       sum(weight * cost_usd) AS cost,
       sum(weight) FILTER (WHERE success AND cost_usd IS NOT NULL) AS priced_successes,
       bool_and(window_closed) AS window_closed
FROM _mon_rows
WHERE weight > 0
GROUP BY GROUPING SETS ((model, feature){{sets}});

CREATE OR REPLACE TEMP TABLE _mon_slice_stats AS
SELECT *
FROM _mon_slice_all
WHERE slice_key IS NULL OR slice_value IS NOT NULL
QUALIFY slice_key IS NULL
     OR row_number() OVER (PARTITION BY model, feature, slice_key ORDER BY requests DESC, slice_value) <= $max_values;

CREATE OR REPLACE TEMP TABLE _mon_slice_latency AS
WITH latencies AS (
    SELECT model, feature, {{key_case}} AS slice_key, {{value_case}} AS slice_value, latency_ms, sum(weight) AS weight
    FROM _mon_rows
    WHERE latency_ms IS NOT NULL AND weight > 0
    GROUP BY GROUPING SETS ({{latency_sets}})
),
kept AS (
    SELECT l.*
    FROM latencies AS l
    SEMI JOIN _mon_slice_stats AS s
        ON s.model = l.model AND s.feature IS NOT DISTINCT FROM l.feature AND s.slice_key = l.slice_key
       AND s.slice_value = l.slice_value
),
cumulative AS (
    -- the inverse of the weighted empirical CDF, as marts.cost_daily's percentiles
    SELECT *, sum(weight) OVER (PARTITION BY model, feature, slice_key, slice_value ORDER BY latency_ms
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_weight,
              sum(weight) OVER (PARTITION BY model, feature, slice_key, slice_value) AS total_weight
    FROM kept
)
SELECT model, feature, slice_key, slice_value,
       min(latency_ms) FILTER (WHERE cum_weight >= 0.95 * total_weight * (1 - 1e-9)) AS latency_p95_ms
FROM cumulative
GROUP BY model, feature, slice_key, slice_value;
