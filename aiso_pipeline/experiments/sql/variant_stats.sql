-- Sufficient statistics per experiment x variant, from the per-user table: unit count, sums, sums of squares,
-- numerator x denominator products (ratio metrics, delta method) and post x pre products (CUPED).
-- Every exposed unit counts, with zeros when it has no rows in scope. Per-user metrics are capped at
-- _xp_config.cap_<metric> (absolute cap or winsorization quantile; NULL = none), pre-period values at the same cap.
WITH capped AS (
SELECT u.experiment_id, u.variant,
       least(coalesce(m.conversion_rate, 0), coalesce(c.cap_conversion_rate, 'inf')) AS cr,
       least(coalesce(m.conversion_rate_pre, 0), coalesce(c.cap_conversion_rate, 'inf')) AS cr_pre,
       least(coalesce(m.revenue_per_user, 0), coalesce(c.cap_revenue_per_user, 'inf')) AS rev,
       least(coalesce(m.revenue_per_user_pre, 0), coalesce(c.cap_revenue_per_user, 'inf')) AS rev_pre,
       least(coalesce(m.cost_per_user, 0), coalesce(c.cap_cost_per_user, 'inf')) AS cost,
       least(coalesce(m.cost_per_user_pre, 0), coalesce(c.cap_cost_per_user, 'inf')) AS cost_pre,
       coalesce(m.requests, 0) AS req, coalesce(m.successes, 0) AS succ, coalesce(m.errors, 0) AS err,
       coalesce(m.latency_num, 0) AS lat, coalesce(m.latency_den, 0) AS lat_d,
       coalesce(m.conversion_rate, 0) AS converted, coalesce(m.cost_per_user, 0) AS cost_uncapped,
       coalesce(m.has_pre, false) AS has_pre, coalesce(m.post_rows, 0) AS post_rows,
       coalesce(m.unpriced_rows, 0) AS unpriced_rows, coalesce(m.open_rows, 0) AS open_rows
FROM _xp_units AS u
JOIN _xp_config AS c USING (experiment_id)
LEFT JOIN _xp_user AS m USING (unit_id)
)
SELECT experiment_id, variant, count(*) AS n,
       sum(cr) AS conversion_rate_sum, sum(cr * cr) AS conversion_rate_ss,
       sum(cr_pre) AS conversion_rate_pre_sum, sum(cr_pre * cr_pre) AS conversion_rate_pre_ss,
       sum(cr * cr_pre) AS conversion_rate_x_pre,
       sum(rev) AS revenue_per_user_sum, sum(rev * rev) AS revenue_per_user_ss,
       sum(rev_pre) AS revenue_per_user_pre_sum, sum(rev_pre * rev_pre) AS revenue_per_user_pre_ss,
       sum(rev * rev_pre) AS revenue_per_user_x_pre,
       sum(cost) AS cost_per_user_sum, sum(cost * cost) AS cost_per_user_ss,
       sum(cost_pre) AS cost_per_user_pre_sum, sum(cost_pre * cost_pre) AS cost_per_user_pre_ss,
       sum(cost * cost_pre) AS cost_per_user_x_pre,
       sum(req) AS requests_sum, sum(req * req) AS requests_ss,
       sum(succ) AS successes_sum, sum(succ * succ) AS successes_ss, sum(succ * req) AS successes_x_requests,
       sum(err) AS errors_sum, sum(err * err) AS errors_ss, sum(err * req) AS errors_x_requests,
       sum(lat) AS latency_num_sum, sum(lat * lat) AS latency_num_ss,
       sum(lat_d) AS latency_den_sum, sum(lat_d * lat_d) AS latency_den_ss, sum(lat * lat_d) AS latency_num_x_den,
       sum(cost * cr) AS cost_x_converted, sum(cost * succ) AS cost_x_successes,
       sum(converted) AS converted_users, sum(cost_uncapped) AS cost_usd,
       count(*) FILTER (WHERE has_pre) AS users_with_pre, sum(post_rows) AS post_rows,
       sum(unpriced_rows) AS unpriced_rows, sum(open_rows) AS open_rows
FROM capped
GROUP BY experiment_id, variant
ORDER BY experiment_id, variant;
