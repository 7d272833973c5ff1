-- Weighted p95 latency per hour of day × model for partition D (the UI heatmap); same percentile definition
-- as cost_daily_write.sql.
WITH latencies AS (
    SELECT hour("timestamp") AS hour, model, latency_ms, sum(weight) AS weight
    FROM marts.joined_outcomes
    WHERE dt = $dt AND latency_ms IS NOT NULL
    GROUP BY hour("timestamp"), model, latency_ms
),
cumulative AS (
    SELECT hour, model, latency_ms,
           sum(weight) OVER (PARTITION BY hour, model ORDER BY latency_ms
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_weight,
           sum(weight) OVER (PARTITION BY hour, model) AS total_weight
    FROM latencies
)
SELECT hour, model, min(latency_ms) FILTER (WHERE cum_weight >= 0.95 * total_weight * (1 - 1e-9)) AS latency_p95_ms
FROM cumulative
GROUP BY hour, model
ORDER BY hour, model;
