-- Replace partition $dt of raw.inference_events with this batch's loaded rows (run inside one transaction):
-- valid, not skipped, not a duplicate (dedup.sql), priced (prices.sql) unless the provider reported its cost. A call
-- with no token counts at all is priced only by a reported cost: unpriced (NULL), never $0.
DELETE FROM raw.inference_events WHERE dt = $dt;

INSERT INTO raw.inference_events BY NAME
SELECT r.request_id, hash(r.request_id) AS key_hash, r."timestamp", r.model, r.model_version, r.provider, r.operation,
       r.feature, r.user_id, r.session_id, r.input_tokens, r.output_tokens, r.cached_input_tokens, r.latency_ms,
       r.status, r.error_type, r.is_fallback, r.confidence,
       coalesce(r.reported_cost, CASE WHEN r.input_tokens IS NOT NULL OR r.output_tokens IS NOT NULL THEN
                ((coalesce(r.input_tokens, 0) - r.cached_input_tokens) * pi.input_per_mtok
                 + r.cached_input_tokens * pi.cached_input_per_mtok
                 + coalesce(r.output_tokens, 0) * pi.output_per_mtok) / 1e6 END) AS cost_usd,
       CASE WHEN r.reported_cost IS NOT NULL THEN 'reported'
            WHEN pi.model IS NOT NULL AND (r.input_tokens IS NOT NULL OR r.output_tokens IS NOT NULL) THEN 'price_table'
       END AS cost_source,
       r.experiment_id, r.variant, r.sample_rate, r.features, r.attributes, r.trace_id, r.span_id,
       $dt::DATE AS dt, r.source_file, r.line_number, r.record_number, current_timestamp AS loaded_at
FROM _parsed AS r
LEFT JOIN _price_intervals AS pi
       ON r.model = pi.model AND r."timestamp" >= pi.valid_from
      AND (pi.valid_to IS NULL OR r."timestamp" < pi.valid_to)
WHERE r.reason IS NULL AND r.skip_reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM _duplicates AS d WHERE d.source_file = r.source_file AND d.line_number = r.line_number
                                                 AND d.record_number = r.record_number);

-- The day's feature shapes, cached for drift, are stale now (warehouse/sql/schema.sql).
DELETE FROM meta.feature_shapes WHERE dt = $dt;
DELETE FROM meta.feature_shape_days WHERE dt = $dt;

-- What was loaded, per file: the ingest log's rows_loaded and rows_unpriced (quality_write.sql).
CREATE OR REPLACE TEMP TABLE _loaded AS
SELECT source_file, count(*) AS rows_loaded, count(*) FILTER (WHERE cost_usd IS NULL) AS rows_unpriced
FROM raw.inference_events
WHERE dt = $dt
GROUP BY source_file;
