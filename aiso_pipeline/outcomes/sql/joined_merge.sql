-- Extend partition D of marts.joined_outcomes with the attributions of the events added since its last join
-- (_jo_outcomes from joined_attribute.sql, run on the new product partitions only; inside one transaction). Every
-- outcome column is a count, an OR, a sum or a minimum over a request's events, so adding the new events' part gives
-- what a whole join would (engine.py extends a join only when no earlier attribution can change; it brings
-- window_closed up to date after). Portable SQL but for UPDATE ... FROM (Spark: MERGE INTO).
UPDATE marts.joined_outcomes AS j
SET has_outcome = true,
    events_attributed = j.events_attributed + o.events_attributed,
    success = j.success OR o.success,
    converted = j.converted OR o.converted,
    revenue = j.revenue + o.revenue,
    first_outcome_at = CASE WHEN j.first_outcome_at IS NULL OR o.first_outcome_at < j.first_outcome_at
                            THEN o.first_outcome_at ELSE j.first_outcome_at END,
    computed_at = current_timestamp
FROM _jo_outcomes AS o
WHERE j.dt = $dt AND j.request_id = o.request_id;
