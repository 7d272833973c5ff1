-- Replace partition $dt of raw.inference_events with this batch's loaded rows (run inside one transaction).
DELETE FROM raw.inference_events WHERE dt = $dt;

INSERT INTO raw.inference_events BY NAME
SELECT request_id, hash(request_id) AS key_hash, "timestamp", model, model_version, provider, operation, feature, user_id, session_id,
       input_tokens, output_tokens, cached_input_tokens, latency_ms, status, error_type, is_fallback, confidence,
       cost_usd, cost_source, experiment_id, variant, sample_rate, features, attributes,
       $dt::DATE AS dt, source_file, line_number, current_timestamp AS loaded_at
FROM _classified
WHERE outcome = 'loaded';
