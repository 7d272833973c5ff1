-- Cost per model per day over the k days ending D (the UI trend), from marts.cost_daily.
SELECT dt, model, sum(cost_usd) AS cost_usd, sum(requests) AS requests
FROM marts.cost_daily
WHERE dt BETWEEN $dt::DATE - ($days - 1) AND $dt::DATE             -- DuckDB: DATE - INTEGER subtracts days
GROUP BY dt, model
ORDER BY dt, model;
