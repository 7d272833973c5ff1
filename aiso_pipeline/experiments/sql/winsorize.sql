-- Winsorization caps for one experiment: the pooled quantile of each per-user metric over its units (users
-- without rows in scope count as 0). A quantile of 1 is the maximum, i.e. no cap. Quantiles must be constants,
-- hence one call per experiment that asks for winsorization.
SELECT quantile_cont(coalesce(m.conversion_rate, 0), $q_conversion_rate) AS conversion_rate,
       quantile_cont(coalesce(m.revenue_per_user, 0), $q_revenue_per_user) AS revenue_per_user,
       quantile_cont(coalesce(m.cost_per_user, 0), $q_cost_per_user) AS cost_per_user
FROM _xp_units AS u
LEFT JOIN _xp_user AS m USING (unit_id)
WHERE u.experiment_id = $experiment_id;
