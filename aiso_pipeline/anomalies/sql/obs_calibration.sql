-- Observations from marts.calibration, trailing window only: the expected calibration error per day × model ×
-- feature, with the weighted calls behind it (its sampling noise shrinks as 1/sqrt(n): the 'sqrt_n' floor).
INSERT INTO _anomaly_obs
SELECT dt, model, feature, 'ece', ece, n, window_closed
FROM marts.calibration
WHERE dt BETWEEN $dt::DATE - $lookback_days::INTEGER AND $dt::DATE
  AND ece IS NOT NULL;
