-- The day's calls with what monitoring reads: outcome columns from marts.joined_outcomes, confidence and the
-- declared slice inputs from the same calls in raw.inference_events (partition $dt of both; request_id is the
-- inference stream's dedup key, so the join is one to one). Slots in double braces are filled in by
-- monitoring/__init__.py from reference/monitoring.yaml (feature paths arrive as bound parameters).
CREATE OR REPLACE TEMP TABLE _mon_rows AS
SELECT j.model, j.feature, j.weight, j.success, j.converted, j.cost_usd, j.latency_ms,
       coalesce(j.is_fallback, false) AS is_fallback, j.window_closed,
       CASE WHEN r.confidence BETWEEN 0 AND 1 THEN r.confidence END AS confidence{{slice_columns}}
FROM marts.joined_outcomes AS j
JOIN raw.inference_events AS r ON r.request_id = j.request_id
WHERE j.dt = $dt::DATE
  AND r.dt = $dt::DATE;
