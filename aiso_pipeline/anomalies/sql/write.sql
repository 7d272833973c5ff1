-- Replace partition $dt of marts.anomalies (run inside one transaction). anomaly_id is a hash of what the anomaly
-- is about, so a rerun keeps the ids (alerts are not sent twice) and the first detected_at. detected_at is the run's
-- clock: now, shifted by $clock_offset_seconds when a replay (`aiso demo`) runs a past night as its nightly would have.
CREATE OR REPLACE TEMP TABLE _anomaly_prev AS
SELECT anomaly_id, detected_at FROM marts.anomalies WHERE dt = $dt::DATE;

DELETE FROM marts.anomalies WHERE dt = $dt::DATE;

INSERT INTO marts.anomalies BY NAME
SELECT f.*, coalesce(p.detected_at, current_timestamp + to_microseconds(CAST($clock_offset_seconds * 1e6 AS BIGINT)))
       AS detected_at
FROM (
    SELECT *, left(md5(concat_ws('|', CAST(dt AS VARCHAR), kind, model, coalesce(feature, ''), metric)), 16)
              AS anomaly_id
    FROM _anomaly_found
) f
LEFT JOIN _anomaly_prev p USING (anomaly_id);

-- A new drift episode's detection delay: hours from the end of its first partition (midnight UTC after dt) to its
-- first detection (negative when a partition was judged before its day ended).
UPDATE marts.anomalies
SET detection_delay_hours = (epoch(detected_at) - epoch(CAST(dt + 1 AS TIMESTAMPTZ))) / 3600
WHERE dt = $dt::DATE AND kind = 'drift' AND episode_start = dt;
