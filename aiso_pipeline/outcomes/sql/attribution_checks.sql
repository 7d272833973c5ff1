-- Why product events of partition D went unattributed → quality.check_results (WARN, run inside the write
-- transaction). An event of day D can only belong to an inference of partitions D-k .. D, so those are
-- the only ones joined. An event naming a request_id that is not among them is looked up in the 7 partitions
-- before: found there, it is `outside_window` (late feedback on an older call); found nowhere, `unknown_request_id`
-- (an id that was never logged, or whose call was quarantined or is older than that: a fixed look-back, so the
-- check's cost does not grow with history). Mirrors the attribution rules of joined_attribute.sql.
CREATE OR REPLACE TEMP TABLE _jo_check AS
WITH ev AS (
    SELECT "timestamp" AS ts, user_id, nullif(request_id, '') AS request_id
    FROM raw.product_events
    WHERE dt = $dt
),
inf AS (
    SELECT request_id, user_id, "timestamp" AS ts
    FROM raw.inference_events
    WHERE dt BETWEEN $dt::DATE - $days AND $dt::DATE                -- DuckDB: DATE - INTEGER subtracts days
),
matched AS (
    SELECT ev.request_id, inf.request_id IS NOT NULL AS found, ev.ts BETWEEN inf.ts AND inf.ts + $window AS inside
    FROM ev
    LEFT JOIN inf ON inf.request_id = ev.request_id
    WHERE ev.request_id IS NOT NULL
),
older AS (
    -- by the stored 8-byte key_hash (= hash(request_id), the dedup key), not the id strings: 7 days of calls are
    -- probed, and a 64-bit collision could only move one event of this WARN check from unknown to outside_window
    SELECT DISTINCT key_hash
    FROM raw.inference_events
    WHERE dt BETWEEN $dt::DATE - $days - 7 AND $dt::DATE - $days - 1
      AND key_hash IN (SELECT hash(request_id) FROM matched WHERE NOT found)
),
direct AS (
    SELECT CASE WHEN m.inside THEN 'attributed'
                WHEN m.found OR o.key_hash IS NOT NULL THEN 'outside_window'
                ELSE 'unknown_request_id' END AS outcome
    FROM matched AS m
    LEFT JOIN older AS o ON NOT m.found AND o.key_hash = hash(m.request_id)
),
last_touch AS (
    -- DuckDB ASOF JOIN, as in joined_attribute.sql. Only how far back the latest inference is matters here, so
    -- users are matched on a 64-bit hash of user_id (cheaper to partition than strings; a collision could only
    -- shift one count of this WARN check).
    SELECT CASE WHEN inf.ts IS NULL THEN 'no_prior_inference'
                WHEN ev.ts <= inf.ts + $window THEN 'attributed'
                ELSE 'outside_window' END AS outcome
    FROM (SELECT hash(user_id) AS user_key, ts FROM ev WHERE request_id IS NULL AND user_id IS NOT NULL) AS ev
    ASOF LEFT JOIN (SELECT hash(user_id) AS user_key, ts FROM inf WHERE user_id IS NOT NULL) AS inf
      ON ev.user_key = inf.user_key AND ev.ts >= inf.ts
),
outcomes AS (
    SELECT outcome FROM direct
    UNION ALL SELECT outcome FROM last_touch
    UNION ALL SELECT 'no_user_id' FROM ev WHERE request_id IS NULL AND user_id IS NULL
)
SELECT count(*) AS events,
       count(*) FILTER (WHERE outcome <> 'attributed') AS unattributed,
       count(*) FILTER (WHERE outcome = 'unknown_request_id') AS unknown_request_id,
       count(*) FILTER (WHERE outcome = 'outside_window') AS outside_window,
       count(*) FILTER (WHERE outcome = 'no_prior_inference') AS no_prior_inference,
       count(*) FILTER (WHERE outcome = 'no_user_id') AS no_user_id
FROM outcomes;

DELETE FROM quality.check_results
WHERE dt = $dt AND asset = 'marts.joined_outcomes'
  AND check_name IN ('outcomes_unknown_request_id', 'outcomes_unattributed_events');

INSERT INTO quality.check_results BY NAME
SELECT $dt::DATE AS dt, 'marts.joined_outcomes' AS asset, 'outcomes_unknown_request_id' AS check_name,
       unknown_request_id = 0 AS passed, 'WARN' AS severity, unknown_request_id AS observed_value,
       '= 0' AS threshold,
       printf('%d of %d product events of %s name a request_id that is not a loaded inference of the %d day(s) '
              'before (never logged, quarantined, or older)', unknown_request_id, events, $dt, $days + 7) AS details,
       current_timestamp AS checked_at
FROM _jo_check
UNION ALL
SELECT $dt::DATE, 'marts.joined_outcomes', 'outcomes_unattributed_events',
       unattributed <= $max_unattributed_share * events, 'WARN', unattributed,
       printf('<= %g of events', $max_unattributed_share),
       printf('%d of %d product events of %s unattributed: %d unknown request_id, %d outside the window, '
              '%d with no earlier inference of the user, %d without user_id',
              unattributed, events, $dt, unknown_request_id, outside_window, no_prior_inference, no_user_id),
       current_timestamp
FROM _jo_check;
