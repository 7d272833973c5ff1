-- Sufficient statistics per experiment x variant, from the per-user table (columns declared in
-- experiments/metrics.yaml, slots in double braces filled in by experiments/metrics.py): unit count, sums, sums of squares and
-- the sums of products the statistics need (ratio numerator x denominator, post x pre for CUPED).
-- Every exposed unit counts, with zeros when it has no rows in scope. Cappable measures are capped at
-- _xp_config.cap_<measure> (absolute cap or winsorization quantile; NULL = none), pre-period values at the same cap.
-- converted_users and cost_usd are the report's uncapped totals (cost per converted user).
WITH capped AS (
SELECT u.experiment_id, u.variant,
       {{capped_values}},
       coalesce(m.converted, 0) AS converted_users, coalesce(m.cost, 0) AS cost_usd,
       coalesce(m.has_pre, false) AS has_pre, coalesce(m.post_rows, 0) AS post_rows,
       coalesce(m.unpriced_rows, 0) AS unpriced_rows, coalesce(m.open_rows, 0) AS open_rows
FROM _xp_units AS u
JOIN _xp_config AS c USING (experiment_id)
LEFT JOIN _xp_user AS m USING (unit_id)
)
SELECT experiment_id, variant, count(*) AS n,
       {{sums}},
       sum(converted_users) AS converted_users, sum(cost_usd) AS cost_usd,
       count(*) FILTER (WHERE has_pre) AS users_with_pre, sum(post_rows) AS post_rows,
       sum(unpriced_rows) AS unpriced_rows, sum(open_rows) AS open_rows
FROM capped
GROUP BY experiment_id, variant
ORDER BY experiment_id, variant;
