-- (Re)fill raw.*.key_hash: on a database written before the column existed, or by a DuckDB whose hash() differs.
UPDATE raw.inference_events SET key_hash = hash(request_id);
UPDATE raw.product_events SET key_hash = hash(message_id);
DELETE FROM meta.key_hash;
INSERT INTO meta.key_hash VALUES (hash('aiso_pipeline key_hash'));
