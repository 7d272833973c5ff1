-- Replace partition D of marts.cost_daily from marts.joined_outcomes (run inside one transaction).
-- Every figure is weighted by 1/sample_rate, i.e. an estimate over all calls.
-- Unpriced requests (cost_usd NULL) count in requests and unpriced_requests but not in cost_usd, and the
-- per-unit costs divide cost by the priced requests / successes / conversions only, so an unpriced call
-- neither adds a fake zero nor dilutes the average. Ratios are NULL when their denominator is 0.
DELETE FROM marts.cost_daily WHERE dt = $dt;

INSERT INTO marts.cost_daily BY NAME
WITH j AS (
    SELECT * FROM marts.joined_outcomes WHERE dt = $dt
),
totals AS (
    SELECT model, feature,
           sum(weight) AS requests,
           count(*) AS request_rows,
           sum(weight * input_tokens) AS input_tokens,
           sum(weight * output_tokens) AS output_tokens,
           sum(weight * cost_usd) AS cost_usd,
           coalesce(sum(weight) FILTER (WHERE cost_usd IS NULL), 0) AS unpriced_requests,
           sum(weight) FILTER (WHERE cost_usd IS NOT NULL) AS priced_requests,
           coalesce(sum(weight) FILTER (WHERE success), 0) AS successes,
           sum(weight) FILTER (WHERE success AND cost_usd IS NOT NULL) AS priced_successes,
           coalesce(sum(weight) FILTER (WHERE converted), 0) AS conversions,
           sum(weight) FILTER (WHERE converted AND cost_usd IS NOT NULL) AS priced_conversions,
           sum(weight * revenue) AS revenue,
           coalesce(sum(weight) FILTER (WHERE status IN ('error', 'timeout')), 0) / sum(weight) AS error_rate,
           coalesce(sum(weight) FILTER (WHERE status = 'timeout'), 0) / sum(weight) AS timeout_rate,
           coalesce(sum(weight) FILTER (WHERE is_fallback), 0) / sum(weight) AS fallback_rate,
           sum(weight) FILTER (WHERE latency_ms IS NOT NULL) AS latency_weight,
           bool_and(window_closed) AS window_closed
    FROM j
    GROUP BY model, feature
),
latencies AS (
    -- One row per distinct latency with its total weight: summing ties first is cheaper than sorting every call.
    SELECT model, feature, latency_ms, sum(weight) AS weight
    FROM j
    WHERE latency_ms IS NOT NULL
    GROUP BY model, feature, latency_ms
),
cumulative AS (
    -- Weighted percentile = the smallest latency at which the cumulative weight of calls (ascending latency)
    -- reaches p of the total: the inverse of the weighted empirical CDF, no interpolation. It equals the
    -- percentile of the population the sample stands for (a row of weight 4 counts as 4 identical calls).
    -- DuckDB has no weighted quantile aggregate, hence the running sum.
    SELECT model, feature, latency_ms,
           sum(weight) OVER (PARTITION BY model, feature ORDER BY latency_ms
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_weight
    FROM latencies
),
percentiles AS (
    -- The 1e-9 relative slack keeps float rounding of the running sum from skipping an exact boundary.
    SELECT c.model, c.feature,
           min(c.latency_ms) FILTER (WHERE c.cum_weight >= 0.50 * t.latency_weight * (1 - 1e-9)) AS latency_p50_ms,
           min(c.latency_ms) FILTER (WHERE c.cum_weight >= 0.95 * t.latency_weight * (1 - 1e-9)) AS latency_p95_ms,
           min(c.latency_ms) FILTER (WHERE c.cum_weight >= 0.99 * t.latency_weight * (1 - 1e-9)) AS latency_p99_ms
    FROM cumulative AS c
    JOIN totals AS t ON t.model = c.model AND t.feature IS NOT DISTINCT FROM c.feature
    GROUP BY c.model, c.feature
)
SELECT $dt::DATE AS dt, t.model, t.feature, t.requests, t.request_rows, t.input_tokens, t.output_tokens,
       t.cost_usd, t.unpriced_requests,
       1000 * t.cost_usd / nullif(t.priced_requests, 0) AS cost_per_1k_requests,
       t.successes, t.cost_usd / nullif(t.priced_successes, 0) AS cost_per_success,
       t.conversions, t.cost_usd / nullif(t.priced_conversions, 0) AS cost_per_conversion,
       t.revenue, t.error_rate, t.timeout_rate, t.fallback_rate,
       p.latency_p50_ms, p.latency_p95_ms, p.latency_p99_ms,
       t.window_closed, current_timestamp AS computed_at
FROM totals AS t
LEFT JOIN percentiles AS p ON p.model = t.model AND p.feature IS NOT DISTINCT FROM t.feature;
