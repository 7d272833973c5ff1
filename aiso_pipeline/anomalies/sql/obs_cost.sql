-- Observations from marts.cost_daily, trailing window only: [$dt − $lookback_days, $dt].
-- requests is dense: from a model × feature's first day in the window on, a computed day without its row counts
-- 0 requests, so traffic that stops shows as a drop. A day with no cost_daily rows at all is not computed (yet)
-- and gives no observations.
INSERT INTO _anomaly_obs
WITH src AS (
    SELECT * FROM marts.cost_daily WHERE dt BETWEEN $dt::DATE - $lookback_days::INTEGER AND $dt::DATE
),
days AS (SELECT DISTINCT dt FROM src),
combos AS (SELECT model, feature, min(dt) AS first_dt FROM src GROUP BY model, feature)
SELECT d.dt, c.model, c.feature, 'requests', coalesce(s.requests, 0), coalesce(s.requests, 0), true
FROM days d
JOIN combos c ON d.dt >= c.first_dt
LEFT JOIN src s ON s.dt = d.dt AND s.model = c.model AND s.feature IS NOT DISTINCT FROM c.feature;

INSERT INTO _anomaly_obs
SELECT * FROM (
    SELECT s.dt, s.model, s.feature, m.metric,
           CASE m.metric
               WHEN 'cost_usd' THEN s.cost_usd
               WHEN 'cost_per_success' THEN s.cost_per_success
               WHEN 'latency_p95_ms' THEN s.latency_p95_ms
               WHEN 'error_rate' THEN s.error_rate
               WHEN 'fallback_rate' THEN s.fallback_rate
           END AS value,
           s.requests,
           s.window_closed
    FROM marts.cost_daily s
    CROSS JOIN (VALUES ('cost_usd'), ('cost_per_success'), ('latency_p95_ms'), ('error_rate'), ('fallback_rate'))
        AS m(metric)
    WHERE s.dt BETWEEN $dt::DATE - $lookback_days::INTEGER AND $dt::DATE
)
WHERE value IS NOT NULL;
