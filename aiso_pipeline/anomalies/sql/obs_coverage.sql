-- Observations from marts.outcome_coverage, trailing window only: the join rate per day × model × feature.
INSERT INTO _anomaly_obs
SELECT dt, model, feature, 'join_rate', join_rate, inferences, window_closed
FROM marts.outcome_coverage
WHERE dt BETWEEN $dt::DATE - $lookback_days::INTEGER AND $dt::DATE
  AND join_rate IS NOT NULL;
