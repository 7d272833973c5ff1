-- Attribute product events to the inferences of day D (CONTRACT section 5) → temp table _jo_outcomes, one row
-- per inference of D that got at least one event. Reads inference partitions D .. D+k and product partitions
-- D .. D+k only (k = ceil(window / 24 h)): an event can only follow an inference of D by at most the window,
-- so nothing older or newer can matter and the cost tracks the day's data, not history. $events_from: the first
-- product partition read, D for a whole join, a later one to attribute only the events added since the last join
-- (engine.py merges them with joined_merge.sql).
CREATE OR REPLACE TEMP TABLE _jo_outcomes AS
WITH events AS (
    -- Product events that could fall in the window of one of the day's inferences: [start of D, end of D + window].
    SELECT "timestamp" AS ts,
           user_id,
           nullif(request_id, '') AS request_id,
           -- DuckDB list function: each configured event list arrives as one LIST parameter
           list_contains($success_events::VARCHAR[], event) AS is_success,
           list_contains($conversion_events::VARCHAR[], event) AS is_conversion,
           revenue
    FROM raw.product_events
    WHERE dt BETWEEN $events_from::DATE AND $dt::DATE + $days          -- DuckDB: DATE + INTEGER adds days
      AND "timestamp" >= $dt::DATE::TIMESTAMPTZ
      AND "timestamp" <= ($dt::DATE + 1)::TIMESTAMPTZ + $window
),
direct AS (
    -- An event naming a request_id belongs to that inference, if it falls in [ts, ts + window]; never last touch.
    SELECT i.request_id, e.ts, e.is_success, e.is_conversion, e.revenue
    FROM events AS e
    JOIN raw.inference_events AS i ON i.request_id = e.request_id
    WHERE i.dt = $dt
      AND e.ts BETWEEN i."timestamp" AND i."timestamp" + $window
),
candidates AS (
    -- Last touch competes over the user's inferences of D and the following days, so that an event whose
    -- latest inference is on a later day is not claimed by D.
    SELECT request_id, user_id, "timestamp" AS ts, dt
    FROM raw.inference_events
    WHERE dt BETWEEN $dt::DATE AND $dt::DATE + $days
      AND user_id IS NOT NULL
),
reach AS (
    -- Per user with an inference of D: D's last one, and the first of a later day. An event past the window of
    -- D's last inference cannot go to D, nor can one at or after the first later inference when all of D's come
    -- before it (that one, or a later one, is its last touch). Dropping those events before the ASOF join changes
    -- no result; a refresh that adds a day's events (mostly after the users' next inferences) then sorts only the
    -- few that can still go to D, and only their users' inferences.
    SELECT user_id, max(ts) FILTER (WHERE dt = $dt) AS last_of_day, min(ts) FILTER (WHERE dt > $dt) AS first_later
    FROM candidates
    GROUP BY user_id
    HAVING count(*) FILTER (WHERE dt = $dt) > 0
),
touch_events AS (
    SELECT e.*
    FROM events AS e
    JOIN reach AS r ON r.user_id = e.user_id
    WHERE e.request_id IS NULL
      AND e.ts <= r.last_of_day + $window
      AND (r.first_later IS NULL OR e.ts < r.first_later OR r.last_of_day >= r.first_later)
),
last_touch AS (
    -- DuckDB ASOF JOIN: per event, the same user's latest inference at or before it. The (ts, request_id) pair
    -- breaks ties between inferences with the same timestamp deterministically (the greatest request_id wins):
    -- the event side carries the largest code point so an inference at exactly the event's time qualifies.
    SELECT c.request_id, e.ts, e.is_success, e.is_conversion, e.revenue
    FROM touch_events AS e
    ASOF JOIN (SELECT * FROM candidates WHERE user_id IN (SELECT user_id FROM touch_events)) AS c
      ON e.user_id = c.user_id
     AND {'t': e.ts, 'r': chr(1114111)} >= {'t': c.ts, 'r': c.request_id}
    WHERE c.dt = $dt
      AND e.ts <= c.ts + $window
)
SELECT request_id,
       count(*) AS events_attributed,
       bool_or(is_success) AS success,
       bool_or(is_conversion) AS converted,
       coalesce(sum(revenue) FILTER (WHERE is_conversion), 0) AS revenue,
       min(ts) AS first_outcome_at
FROM (SELECT * FROM direct UNION ALL SELECT * FROM last_touch) AS a
GROUP BY request_id;
