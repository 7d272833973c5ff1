-- Per-user metrics from marts.joined_outcomes: post = from the exposure to the end of window_end's day,
-- pre = the 14 days before the exposure (CUPED; only for experiments with cuped on). Rows are the user's
-- inferences on the experiment's features (_xp_scope: experiment_id, feature).
--
-- Weighting (each row stands for `weight` = 1/sample_rate calls): request-level quantities are weighted sums
-- (cost_per_user is the user's estimated total cost; success/error/latency ratios are weighted over requests).
-- Units (users) are never weighted, and neither are conversion and revenue: they come from product events,
-- which are not sampled, attributed to whichever logged inference they follow.
-- Unpriced rows (cost_usd NULL) add nothing to cost and are counted in unpriced_rows.
-- CASE sums rather than FILTER clauses, and one integer group key: this is the heaviest step.
CREATE OR REPLACE TEMP TABLE _xp_user AS
WITH scoped AS (
    SELECT u.unit_id, u.user_id, u.exposed_at, c.window_end, c.cuped, s.feature
    FROM _xp_units AS u
    JOIN _xp_config AS c USING (experiment_id)
    JOIN _xp_scope AS s USING (experiment_id)
),
rows AS (
    SELECT s.unit_id, (j."timestamp" >= s.exposed_at)::INT AS post, j.weight,
           j.converted::INT AS converted, j.revenue, coalesce(j.weight * j.cost_usd, 0) AS cost,
           j.cost_usd IS NULL AS unpriced, j.success::INT AS success,
           (j.status IN ('error', 'timeout'))::INT AS error, j.latency_ms, NOT j.window_closed AS open
    FROM marts.joined_outcomes AS j
    JOIN scoped AS s ON j.user_id = s.user_id AND j.feature = s.feature
    WHERE j.dt BETWEEN $pre_from AND $dt
      AND j.dt <= s.window_end
      AND j."timestamp" >= s.exposed_at - INTERVAL 14 DAY
      AND (s.cuped OR j."timestamp" >= s.exposed_at)
)
SELECT unit_id,
       max(post * converted)::DOUBLE AS conversion_rate,
       sum(post * revenue) AS revenue_per_user,
       sum(post * cost) AS cost_per_user,
       sum(post * weight) AS requests,
       sum(post * weight * success) AS successes,
       sum(post * weight * error) AS errors,
       sum(CASE WHEN post = 1 AND latency_ms IS NOT NULL THEN weight * latency_ms ELSE 0 END) AS latency_num,
       sum(CASE WHEN post = 1 AND latency_ms IS NOT NULL THEN weight ELSE 0 END) AS latency_den,
       max((1 - post) * converted)::DOUBLE AS conversion_rate_pre,
       sum((1 - post) * revenue) AS revenue_per_user_pre,
       sum((1 - post) * cost) AS cost_per_user_pre,
       min(post) = 0 AS has_pre,
       sum(post) AS post_rows,
       sum(post * unpriced::INT) AS unpriced_rows,
       sum(post * open::INT) AS open_rows
FROM rows
GROUP BY unit_id;
