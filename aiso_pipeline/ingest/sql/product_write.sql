-- Replace partition $dt of raw.product_events with this batch's loaded rows (run inside one transaction): valid
-- not skipped and not a duplicate (dedup.sql).
DELETE FROM raw.product_events WHERE dt = $dt;

INSERT INTO raw.product_events BY NAME
SELECT r.message_id, hash(r.message_id) AS key_hash, r.event, r."timestamp", r.user_id, r.anonymous_id, r.session_id,
       r.request_id, r.properties, r.revenue, r.attributes, $dt::DATE AS dt, r.source_file, r.line_number,
       r.record_number, current_timestamp AS loaded_at
FROM _parsed AS r
WHERE r.reason IS NULL AND r.skip_reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM _duplicates AS d WHERE d.source_file = r.source_file AND d.line_number = r.line_number
                                                 AND d.record_number = r.record_number);

-- What was loaded, per file: the ingest log's rows_loaded (quality_write.sql); product events have no price.
CREATE OR REPLACE TEMP TABLE _loaded AS
SELECT source_file, count(*) AS rows_loaded, 0 AS rows_unpriced
FROM raw.product_events
WHERE dt = $dt
GROUP BY source_file;
