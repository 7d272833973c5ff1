-- _rows(source_file): the inference rows of the staged landing file (_lines), typed, with `reason` NULL for a good row, else
-- '<category>: <field>' and the row is quarantined (ingest/engine.py inserts them into _parsed, file by file).
-- Every alias of CONTRACT section 2 is accepted (canonical key first); keys the contract does not name go to
-- `attributes`. The payload is kept only for quarantined rows. DuckDB-specific: table macros, json_transform, lambdas.
-- Upper bounds the contract leaves open (cost_usd <= 1e9, latency_ms <= 1e10, sample_rate >= 1e-9) keep every
-- weighted sum in the marts finite: beyond them a value is out_of_range.

-- The JSON shape read from each line: every canonical key and alias, as raw text (typed below, with reasons).
CREATE OR REPLACE TEMP MACRO inference_keys() AS '{
  "request_id": "VARCHAR", "gen_ai.response.id": "VARCHAR",
  "timestamp": "VARCHAR", "start_time": "VARCHAR",
  "model": "VARCHAR", "gen_ai.request.model": "VARCHAR", "llm.model_name": "VARCHAR",
  "model_version": "VARCHAR", "gen_ai.response.model": "VARCHAR",
  "provider": "VARCHAR", "gen_ai.provider.name": "VARCHAR", "gen_ai.system": "VARCHAR",
  "operation": "VARCHAR", "gen_ai.operation.name": "VARCHAR",
  "feature": "VARCHAR", "channel": "VARCHAR",
  "user_id": "VARCHAR", "user.id": "VARCHAR",
  "session_id": "VARCHAR", "session.id": "VARCHAR", "gen_ai.conversation.id": "VARCHAR",
  "input_tokens": "VARCHAR", "gen_ai.usage.input_tokens": "VARCHAR", "gen_ai.usage.prompt_tokens": "VARCHAR",
  "llm.token_count.prompt": "VARCHAR",
  "output_tokens": "VARCHAR", "gen_ai.usage.output_tokens": "VARCHAR", "gen_ai.usage.completion_tokens": "VARCHAR",
  "llm.token_count.completion": "VARCHAR",
  "cached_input_tokens": "VARCHAR", "gen_ai.usage.cache_read.input_tokens": "VARCHAR",
  "latency_ms": "VARCHAR", "latency_s": "VARCHAR",
  "status": "VARCHAR", "error_type": "VARCHAR", "error.type": "VARCHAR",
  "is_fallback": "VARCHAR", "confidence": "VARCHAR", "cost_usd": "VARCHAR",
  "experiment_id": "VARCHAR", "variant": "VARCHAR", "sample_rate": "VARCHAR",
  "features": "JSON"
}';

CREATE OR REPLACE TEMP MACRO _rows(source_file) AS TABLE
WITH raw_values AS (
    FROM _objects(inference_keys())  -- ingest/sql/objects.sql
), picked AS (
    SELECT line_number, payload, valid_json, is_object, unknown_keys,
           nullif(trim(coalesce(s.request_id, s."gen_ai.response.id")), '') AS request_id,
           nullif(trim(coalesce(s."timestamp", s.start_time)), '') AS ts_raw,
           nullif(trim(coalesce(s.model, s."gen_ai.request.model", s."llm.model_name")), '') AS model,
           nullif(coalesce(s.model_version, s."gen_ai.response.model"), '') AS model_version,
           nullif(coalesce(s.provider, s."gen_ai.provider.name", s."gen_ai.system"), '') AS provider,
           coalesce(nullif(coalesce(s.operation, s."gen_ai.operation.name"), ''), 'chat') AS operation,
           coalesce(nullif(coalesce(s.feature, s.channel), ''), 'default') AS feature,
           nullif(coalesce(s.user_id, s."user.id"), '') AS user_id,
           nullif(coalesce(s.session_id, s."session.id", s."gen_ai.conversation.id"), '') AS session_id,
           coalesce(s.input_tokens, s."gen_ai.usage.input_tokens", s."gen_ai.usage.prompt_tokens",
                    s."llm.token_count.prompt") AS input_tokens_raw,
           coalesce(s.output_tokens, s."gen_ai.usage.output_tokens", s."gen_ai.usage.completion_tokens",
                    s."llm.token_count.completion") AS output_tokens_raw,
           coalesce(s.cached_input_tokens, s."gen_ai.usage.cache_read.input_tokens") AS cached_raw,
           s.latency_ms AS latency_ms_raw, s.latency_s AS latency_s_raw,
           lower(nullif(s.status, '')) AS status_raw,
           nullif(coalesce(s.error_type, s."error.type"), '') AS error_type,
           lower(nullif(s.is_fallback, '')) AS is_fallback_raw,
           s.confidence AS confidence_raw, s.cost_usd AS cost_raw, s.sample_rate AS sample_rate_raw,
           nullif(s.experiment_id, '') AS experiment_id, nullif(s.variant, '') AS variant,
           -- CSV carries features as a JSON string: unwrap it. json_transform gives a value's JSON text, so its
           -- first character tells the JSON type without parsing it again.
           CASE WHEN starts_with(s.features, '"') THEN try(json(s.features ->> '$'))
                WHEN s.features::VARCHAR = 'null' THEN NULL
                ELSE s.features END AS features,
           starts_with(s.features, '"') AND try(json(s.features ->> '$')) IS NULL AS features_unparseable
    FROM raw_values
), typed AS (
    SELECT *,
           parse_timestamp(ts_raw) AS ts,
           CASE WHEN regexp_full_match(input_tokens_raw, '[0-9]{1,15}(\.0+)?') THEN input_tokens_raw::DOUBLE::BIGINT
                WHEN input_tokens_raw IS NULL THEN 0 END AS input_tokens,
           CASE WHEN regexp_full_match(output_tokens_raw, '[0-9]{1,15}(\.0+)?') THEN output_tokens_raw::DOUBLE::BIGINT
                WHEN output_tokens_raw IS NULL THEN 0 END AS output_tokens,
           CASE WHEN regexp_full_match(cached_raw, '[0-9]{1,15}(\.0+)?') THEN cached_raw::DOUBLE::BIGINT
                WHEN cached_raw IS NULL THEN 0 END AS cached_input_tokens,
           coalesce(try_cast(latency_ms_raw AS DOUBLE), try_cast(latency_s_raw AS DOUBLE) * 1000) AS latency_ms,
           coalesce(status_raw, CASE WHEN error_type IS NOT NULL THEN 'error' ELSE 'ok' END) AS status,
           CASE WHEN is_fallback_raw IN ('true', '1') THEN true
                WHEN is_fallback_raw IN ('false', '0') OR is_fallback_raw IS NULL THEN false END AS is_fallback,
           try_cast(confidence_raw AS DOUBLE) AS confidence,
           try_cast(cost_raw AS DOUBLE) AS reported_cost,
           coalesce(try_cast(sample_rate_raw AS DOUBLE), CASE WHEN sample_rate_raw IS NULL THEN 1.0 END) AS sample_rate
    FROM picked
)
SELECT source_file::VARCHAR AS source_file, line_number, request_id AS dedup_key,
       CASE
           WHEN NOT valid_json THEN 'unparseable: invalid JSON'
           WHEN NOT is_object THEN 'unparseable: not a JSON object'
           WHEN request_id IS NULL THEN 'missing_required_key: request_id'
           WHEN ts_raw IS NULL THEN 'missing_required_key: timestamp'
           WHEN model IS NULL THEN 'missing_required_key: model'
           WHEN ts IS NULL THEN 'unparseable_timestamp: timestamp'
           WHEN year(ts) NOT BETWEEN 2000 AND 2100 THEN 'out_of_range: timestamp'
           WHEN input_tokens IS NULL THEN CASE WHEN try_cast(input_tokens_raw AS DOUBLE) IS NULL
                THEN 'invalid_type: input_tokens' ELSE 'out_of_range: input_tokens' END
           WHEN output_tokens IS NULL THEN CASE WHEN try_cast(output_tokens_raw AS DOUBLE) IS NULL
                THEN 'invalid_type: output_tokens' ELSE 'out_of_range: output_tokens' END
           WHEN cached_input_tokens IS NULL THEN CASE WHEN try_cast(cached_raw AS DOUBLE) IS NULL
                THEN 'invalid_type: cached_input_tokens' ELSE 'out_of_range: cached_input_tokens' END
           WHEN cached_input_tokens > input_tokens THEN 'out_of_range: cached_input_tokens > input_tokens'
           WHEN (latency_ms_raw IS NOT NULL OR latency_s_raw IS NOT NULL) AND latency_ms IS NULL
                THEN 'invalid_type: latency_ms'
           WHEN NOT (latency_ms BETWEEN 0 AND 1e10) THEN 'out_of_range: latency_ms'  -- ~116 days; NaN fails BETWEEN
           WHEN status NOT IN ('ok', 'error', 'timeout') THEN 'out_of_range: status'
           WHEN is_fallback IS NULL THEN 'invalid_type: is_fallback'
           WHEN confidence_raw IS NOT NULL AND confidence IS NULL THEN 'invalid_type: confidence'
           WHEN NOT (confidence BETWEEN 0 AND 1) THEN 'out_of_range: confidence'
           WHEN cost_raw IS NOT NULL AND reported_cost IS NULL THEN 'invalid_type: cost_usd'
           WHEN NOT (reported_cost BETWEEN 0 AND 1e9) THEN 'out_of_range: cost_usd'
           WHEN sample_rate IS NULL THEN 'invalid_type: sample_rate'
           WHEN NOT (sample_rate BETWEEN 1e-9 AND 1) THEN 'out_of_range: sample_rate'
           WHEN features_unparseable OR NOT starts_with(ltrim(features), '{') THEN 'invalid_type: features'
           -- a nested object or array needs a { or [ after the opening brace: only then is the object parsed again
           WHEN (contains(features[2:], '{') OR contains(features, '['))
                AND list_has_any(json_type(features, '$.*'), ['OBJECT', 'ARRAY']) THEN 'invalid_type: features'
           -- DuckDB's JSON reader accepts NaN / Infinity, which strict JSON readers (and analysts' tools) reject
           WHEN (contains(features, 'NaN') OR contains(features, 'Infinity')) AND list_bool_or(list_transform(json_extract(features, '$.*'),
                lambda v: CASE WHEN json_type(v) = 'DOUBLE' THEN NOT isfinite(try_cast(v AS DOUBLE)) END)) THEN 'invalid_type: features'
       END AS reason,
       CASE WHEN reason IS NOT NULL THEN payload END AS payload,
       request_id, ts AS "timestamp", model, model_version, provider, operation, feature, user_id, session_id,
       input_tokens, output_tokens, cached_input_tokens, latency_ms, status, error_type, is_fallback,
       confidence, reported_cost, experiment_id, variant, sample_rate, features,
       CASE WHEN len(unknown_keys) > 0 THEN to_json(map_from_entries(list_filter(
           map_entries(json_transform(payload, '"MAP(VARCHAR, JSON)"')),
           lambda e: list_contains(unknown_keys, e.key)))) END AS attributes
FROM typed;

-- The same key in the partitions already loaded, for dedup (ingest/sql/dedup.sql).
CREATE OR REPLACE TEMP VIEW _history AS SELECT request_id AS dedup_key, key_hash, dt FROM raw.inference_events;
