-- Replace partition $dt of marts.calibration and marts.calibration_bins from _mon_buckets (inside one transaction).
-- Every call with a confidence counts with its weight (1 / sample_rate); success is the label. Bin b holds the
-- calls with floor(10 * confidence) = b, and 1.0 joins bin 9, so the bins are [0, .1) ... [.9, 1].
-- ECE = sum over bins of (W_b / W) |mean confidence_b - success rate_b|; Brier = weighted mean of
-- (confidence - success)^2. Recomputed with the day while its attribution window is open.
DELETE FROM marts.calibration WHERE dt = $dt::DATE;

DELETE FROM marts.calibration_bins WHERE dt = $dt::DATE;

CREATE OR REPLACE TEMP TABLE _mon_bins AS
SELECT model, feature, bucket // 2 AS bin,
       sum(w) AS weight, sum(calls) AS calls,
       sum(confidence_sum) / sum(w) AS mean_confidence,
       sum(successes) / sum(w) AS success_rate,
       sum(squared_error) AS squared_error,
       bool_and(closed) AS window_closed
FROM _mon_buckets
WHERE bucket IS NOT NULL
GROUP BY model, feature, bin;

INSERT INTO marts.calibration_bins BY NAME
SELECT $dt::DATE AS dt, model, feature, bin, bin / 10 AS bin_low, (bin + 1) / 10 AS bin_high, weight, calls,
       mean_confidence, success_rate
FROM _mon_bins;

INSERT INTO marts.calibration BY NAME
SELECT $dt::DATE AS dt, model, feature, sum(weight) AS n, sum(calls) AS calls,
       sum(squared_error) / sum(weight) AS brier,
       sum(weight * abs(mean_confidence - success_rate)) / sum(weight) AS ece,
       sum(weight * mean_confidence) / sum(weight) AS mean_confidence,
       sum(weight * success_rate) / sum(weight) AS success_rate,
       bool_and(window_closed) AS window_closed, current_timestamp AS computed_at
FROM _mon_bins
GROUP BY model, feature;

DROP TABLE _mon_bins;
