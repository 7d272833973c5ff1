-- Per slice (model x feature x declared input x value, from the 'latency' rows of _mon_agg) and per model x
-- feature (slice_key NULL, from the 'bucket' rows): the sums the slice tests need, and the weighted p95 latency
-- per slice. Only the $max_values most requested
-- values of each model x feature x key are kept (an input with a million distinct values would otherwise make a
-- million rows); the rest are counted.
CREATE OR REPLACE TEMP TABLE _mon_slice_all AS
SELECT model, feature, CASE WHEN set_kind = 'latency' THEN slice_key END AS slice_key,
       CASE WHEN set_kind = 'latency' THEN slice_value END AS slice_value,
       sum(w) AS requests, sum(calls) AS calls, sum(weight_sq) AS weight_sq, sum(successes) AS successes,
       sum(conversions) AS conversions, sum(cost) AS cost, sum(priced_successes) AS priced_successes,
       bool_and(closed) AS window_closed
FROM _mon_agg
WHERE set_kind = 'bucket' OR slice_value IS NOT NULL
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _mon_slice_stats AS
SELECT *
FROM _mon_slice_all
QUALIFY slice_key IS NULL
     OR row_number() OVER (PARTITION BY model, feature, slice_key ORDER BY requests DESC, slice_value) <= $max_values;

CREATE OR REPLACE TEMP TABLE _mon_slice_latency AS
WITH kept AS (
    SELECT l.model, l.feature, l.slice_key, l.slice_value, l.latency_ms, l.w AS weight
    FROM _mon_agg AS l
    SEMI JOIN _mon_slice_stats AS s
        ON s.model = l.model AND s.feature IS NOT DISTINCT FROM l.feature AND s.slice_key = l.slice_key
       AND s.slice_value = l.slice_value
    WHERE l.set_kind = 'latency' AND l.latency_ms IS NOT NULL
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
