-- Replace partition $dt of marts.threshold_curve from _mon_buckets (inside one transaction): the seed's vignette, a
-- confidence threshold below which a fallback answer is served, priced on the day's calls.
-- Population: the model's own answers with a confidence (fallbacks already served are the cost basis, not the
-- population). At threshold t = k / 20 (k = 1 .. 19) a call falls back when floor(20 * confidence) < k.
-- cost_saved_usd: the model cost of the priced calls that would fall back, minus as many fallbacks at the weighted
-- mean cost of the fallbacks observed for the same model x feature that day (NULL when none was served: no basis).
-- It assumes a fallback costs what today's did and leaves outcomes aside: success_rate_below is what is at stake.
DELETE FROM marts.threshold_curve WHERE dt = $dt::DATE;

INSERT INTO marts.threshold_curve BY NAME
WITH answers AS (
    SELECT model, feature, bucket, w, successes, cost, priced, closed
    FROM _mon_buckets
    WHERE bucket IS NOT NULL AND NOT is_fallback
),
totals AS (
    SELECT model, feature, sum(w) AS w, sum(successes) AS successes, bool_and(closed) AS closed
    FROM answers
    GROUP BY model, feature
),
fallbacks AS (
    SELECT model, feature, sum(w) AS served, sum(cost) / nullif(sum(priced), 0) AS unit_cost
    FROM _mon_buckets
    WHERE is_fallback
    GROUP BY model, feature
),
thresholds AS (
    SELECT k, k / 20 AS threshold FROM range(1, 20) AS t(k)
),
curve AS (
    SELECT a.model, a.feature, t.threshold,
           coalesce(sum(a.w) FILTER (WHERE a.bucket < t.k), 0) AS w_below,
           coalesce(sum(a.successes) FILTER (WHERE a.bucket < t.k), 0) AS successes_below,
           coalesce(sum(a.cost) FILTER (WHERE a.bucket < t.k), 0) AS cost_below,
           coalesce(sum(a.priced) FILTER (WHERE a.bucket < t.k), 0) AS priced_below
    FROM answers AS a
    CROSS JOIN thresholds AS t
    GROUP BY a.model, a.feature, t.threshold
)
SELECT $dt::DATE AS dt, c.model, c.feature, c.threshold, t.w AS calls,
       c.w_below / t.w AS fallback_share,
       (t.successes - c.successes_below) / nullif(t.w - c.w_below, 0) AS success_rate_above,
       c.successes_below / nullif(c.w_below, 0) AS success_rate_below,
       c.cost_below - c.priced_below * f.unit_cost AS cost_saved_usd,
       f.unit_cost AS fallback_unit_cost_usd, coalesce(f.served, 0) AS fallbacks_observed,
       t.closed AS window_closed, current_timestamp AS computed_at
FROM curve AS c
JOIN totals AS t ON t.model = c.model AND t.feature IS NOT DISTINCT FROM c.feature
LEFT JOIN fallbacks AS f ON f.model = c.model AND f.feature IS NOT DISTINCT FROM c.feature;
