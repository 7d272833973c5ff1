-- Every sufficient statistic the monitoring marts need, in one pass over the day's calls: marts.joined_outcomes
-- (partition $dt) joined to the same calls in raw.inference_events (request_id is the inference stream's dedup
-- key, so one to one) for confidence and the declared slice inputs. GROUPING SETS make one row per
--   'bucket'  model x feature x confidence bucket x served fallback: bucket = floor(20 * confidence) (1.0 in 19,
--             NULL without a confidence); calibration bin b = bucket // 2 is exactly floor(10 * confidence)
--             (doubling a float is exact, so floor(20c) // 2 = floor(10c) for every c). Summed over buckets:
--             the model x feature totals.
--   'latency' model x feature x declared input value x latency (NULL included): the weights of the weighted p95,
--             and summed over latencies, the slice's sums.
-- Every sum is additive, so two kinds of sets serve five tables.
-- Slots in double braces are filled in by monitoring/__init__.py from reference/monitoring.yaml: feature paths and
-- slice keys arrive as bound parameters, raw columns are whitelisted names.
CREATE OR REPLACE TEMP TABLE _mon_agg AS
WITH day_calls AS (
    SELECT j.model, j.feature, j.weight, j.success, j.converted, j.cost_usd, j.latency_ms,
           coalesce(j.is_fallback, false) AS is_fallback, j.window_closed,
           CASE WHEN r.confidence BETWEEN 0 AND 1 THEN r.confidence END AS confidence{{slice_columns}}
    FROM marts.joined_outcomes AS j
    JOIN raw.inference_events AS r ON r.request_id = j.request_id
    WHERE j.dt = $dt::DATE
      AND r.dt = $dt::DATE
      AND j.weight > 0
),
bucketed AS (
    -- least() ignores NULLs: a call without a confidence must stay out of bucket 19
    SELECT *, CASE WHEN confidence IS NOT NULL THEN least(floor(confidence * 20), 19)::INTEGER END AS bucket
    FROM day_calls
)
SELECT model, feature, bucket, is_fallback, latency_ms,
       {{key_case}} AS slice_key, {{value_case}} AS slice_value,
       CASE WHEN grouping(bucket) = 0 THEN 'bucket' ELSE 'latency' END AS set_kind,
       sum(weight) AS w, count(*) AS calls, sum(weight * weight) AS weight_sq,
       sum(weight * confidence) AS confidence_sum,
       sum(weight * success::INT) AS successes,
       sum(weight * (confidence - success::INT) * (confidence - success::INT)) AS squared_error,
       coalesce(sum(weight * cost_usd), 0) AS cost,
       coalesce(sum(weight) FILTER (WHERE cost_usd IS NOT NULL), 0) AS priced,
       sum(weight * converted::INT) AS conversions,
       sum(weight) FILTER (WHERE success AND cost_usd IS NOT NULL) AS priced_successes,
       bool_and(window_closed) AS closed
FROM bucketed
GROUP BY GROUPING SETS ((model, feature, bucket, is_fallback){{sets}});

CREATE OR REPLACE TEMP TABLE _mon_buckets AS
SELECT * FROM _mon_agg WHERE set_kind = 'bucket';
