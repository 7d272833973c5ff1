-- Winsorization caps for one experiment: the pooled quantile of each cappable per-user measure over its units
-- (users without rows in scope count as 0; slots in double braces filled in by experiments/metrics.py). A quantile of 1 is the
-- maximum, i.e. no cap. Quantiles must be constants, hence one call per experiment that asks for winsorization.
SELECT {{quantiles}}
FROM _xp_units AS u
LEFT JOIN _xp_user AS m USING (unit_id)
WHERE u.experiment_id = $experiment_id;
