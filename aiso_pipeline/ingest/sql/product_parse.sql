-- Parse staged product lines (_lines) into typed rows (_parsed): Segment track calls, camelCase or snake_case.
-- `reason` is NULL for a good row, else '<category>: <field>'. Keys the contract does not name (context,
-- sentAt, ...) go to `attributes`. DuckDB-specific: json_transform, lambdas.
CREATE OR REPLACE TEMP MACRO product_keys() AS '{
  "message_id": "VARCHAR", "messageId": "VARCHAR",
  "event": "VARCHAR", "timestamp": "VARCHAR",
  "user_id": "VARCHAR", "userId": "VARCHAR",
  "anonymous_id": "VARCHAR", "anonymousId": "VARCHAR",
  "session_id": "VARCHAR", "sessionId": "VARCHAR",
  "request_id": "VARCHAR", "requestId": "VARCHAR",
  "properties": "JSON"
}';

CREATE OR REPLACE TEMP TABLE _parsed AS
WITH raw_values AS (
    SELECT source_file, line_number, payload, valid_json, is_object,
           CASE WHEN is_object THEN json_transform(payload, product_keys()) END AS s,
           CASE WHEN is_object THEN list_filter(json_keys(payload), lambda k: NOT list_contains(json_keys(product_keys()), k)) END AS unknown_keys
    FROM _objects  -- ingest/sql/objects.sql
), picked AS (
    SELECT source_file, line_number, payload, valid_json, is_object, unknown_keys,
           nullif(trim(coalesce(s.message_id, s.messageId)), '') AS message_id,
           nullif(trim(s.event), '') AS event,
           nullif(trim(s."timestamp"), '') AS ts_raw,
           nullif(coalesce(s.user_id, s.userId), '') AS user_id,
           nullif(coalesce(s.anonymous_id, s.anonymousId), '') AS anonymous_id,
           nullif(coalesce(s.session_id, s.sessionId), '') AS session_id,
           -- CSV carries properties as a JSON string: unwrap it.
           CASE WHEN json_type(s.properties) = 'VARCHAR' THEN try(json(s.properties ->> '$'))
                WHEN json_type(s.properties) = 'NULL' THEN NULL
                ELSE s.properties END AS properties,
           json_type(s.properties) = 'VARCHAR' AND try(json(s.properties ->> '$')) IS NULL AS properties_unparseable,
           s.request_id AS top_request_id, s.requestId AS top_request_id_camel
    FROM raw_values
), typed AS (
    SELECT *,
           parse_timestamp(ts_raw) AS ts,
           nullif(coalesce(top_request_id, top_request_id_camel, properties ->> '$.request_id',
                           properties ->> '$.requestId'), '') AS request_id,
           properties -> '$.revenue' AS revenue_json
    FROM picked
)
SELECT source_file, line_number, message_id AS dedup_key,
       CASE
           WHEN NOT valid_json THEN 'unparseable: invalid JSON'
           WHEN NOT is_object THEN 'unparseable: not a JSON object'
           WHEN message_id IS NULL THEN 'missing_required_key: message_id'
           WHEN event IS NULL THEN 'missing_required_key: event'
           WHEN ts_raw IS NULL THEN 'missing_required_key: timestamp'
           WHEN user_id IS NULL AND anonymous_id IS NULL THEN 'missing_required_key: user_id or anonymous_id'
           WHEN ts IS NULL THEN 'unparseable_timestamp: timestamp'
           WHEN year(ts) NOT BETWEEN 2000 AND 2100 THEN 'out_of_range: timestamp'
           WHEN properties_unparseable OR json_type(properties) <> 'OBJECT' THEN 'invalid_type: properties'
           WHEN revenue_json IS NOT NULL AND json_type(revenue_json) NOT IN ('NULL', 'UBIGINT', 'BIGINT', 'DOUBLE')
                AND try_cast(revenue_json ->> '$' AS DOUBLE) IS NULL THEN 'invalid_type: properties.revenue'
           WHEN NOT (abs(try_cast(revenue_json ->> '$' AS DOUBLE)) <= 1e12) THEN 'out_of_range: properties.revenue'  -- sums stay finite
       END AS reason,
       CASE WHEN reason IS NOT NULL THEN payload END AS payload,
       message_id, event, ts AS "timestamp", user_id, anonymous_id, session_id, request_id, properties,
       try_cast(revenue_json ->> '$' AS DOUBLE) AS revenue,
       CASE WHEN len(unknown_keys) > 0 THEN to_json(map_from_entries(list_filter(
           map_entries(json_transform(payload, '"MAP(VARCHAR, JSON)"')),
           lambda e: list_contains(unknown_keys, e.key)))) END AS attributes
FROM typed;

-- The same key in the partitions already loaded, for dedup (ingest/sql/seen.sql).
CREATE OR REPLACE TEMP VIEW _history AS SELECT message_id AS dedup_key, key_hash, dt FROM raw.product_events;
