-- Replace partition $dt of raw.product_events with this batch's loaded rows (run inside one transaction).
DELETE FROM raw.product_events WHERE dt = $dt;

INSERT INTO raw.product_events BY NAME
SELECT message_id, hash(message_id) AS key_hash, event, "timestamp", user_id, anonymous_id, session_id, request_id, properties, revenue,
       attributes, $dt::DATE AS dt, source_file, line_number, current_timestamp AS loaded_at
FROM _classified
WHERE outcome = 'loaded';
