-- _rows(source_file): the product rows of the staged landing file (_lines) (Segment track calls, camelCase or snake_case),
-- typed; `reason` is NULL for a good row, else '<category>: <field>'. Keys the contract does not name (context,
-- sentAt, ...) go to `attributes`. The payload is kept only for quarantined rows. DuckDB-specific: table macros,
-- json_transform, lambdas.
CREATE OR REPLACE TEMP MACRO product_keys() AS '{
  "message_id": "VARCHAR", "messageId": "VARCHAR",
  "event": "VARCHAR", "timestamp": "VARCHAR",
  "user_id": "VARCHAR", "userId": "VARCHAR",
  "anonymous_id": "VARCHAR", "anonymousId": "VARCHAR",
  "session_id": "VARCHAR", "sessionId": "VARCHAR",
  "request_id": "VARCHAR", "requestId": "VARCHAR",
  "properties": "JSON"
}';

CREATE OR REPLACE TEMP MACRO _rows(source_file) AS TABLE
WITH raw_values AS (
    FROM _objects(product_keys())  -- ingest/sql/objects.sql
), picked AS (
    SELECT line_number, payload, valid_json, is_object, unknown_keys,
           nullif(trim(coalesce(s.message_id, s.messageId)), '') AS message_id,
           nullif(trim(s.event), '') AS event,
           nullif(trim(s."timestamp"), '') AS ts_raw,
           nullif(coalesce(s.user_id, s.userId), '') AS user_id,
           nullif(coalesce(s.anonymous_id, s.anonymousId), '') AS anonymous_id,
           nullif(coalesce(s.session_id, s.sessionId), '') AS session_id,
           -- CSV carries properties as a JSON string: unwrap it. json_transform gives a value's JSON text, so its
           -- first character tells the JSON type without parsing it again.
           CASE WHEN starts_with(s.properties, '"') THEN try(json(s.properties ->> '$'))
                WHEN s.properties::VARCHAR = 'null' THEN NULL
                ELSE s.properties END AS properties,
           starts_with(s.properties, '"') AND try(json(s.properties ->> '$')) IS NULL AS properties_unparseable,
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
SELECT source_file::VARCHAR AS source_file, line_number, message_id AS dedup_key,
       CASE
           WHEN NOT valid_json THEN 'unparseable: invalid JSON'
           WHEN NOT is_object THEN 'unparseable: not a JSON object'
           WHEN message_id IS NULL THEN 'missing_required_key: message_id'
           WHEN event IS NULL THEN 'missing_required_key: event'
           WHEN ts_raw IS NULL THEN 'missing_required_key: timestamp'
           WHEN user_id IS NULL AND anonymous_id IS NULL THEN 'missing_required_key: user_id or anonymous_id'
           WHEN ts IS NULL THEN 'unparseable_timestamp: timestamp'
           WHEN year(ts) NOT BETWEEN 2000 AND 2100 THEN 'out_of_range: timestamp'
           WHEN properties_unparseable OR NOT starts_with(ltrim(properties), '{') THEN 'invalid_type: properties'
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

-- The same key in the partitions already loaded, for dedup (ingest/sql/dedup.sql).
CREATE OR REPLACE TEMP VIEW _history AS SELECT message_id AS dedup_key, key_hash, dt FROM raw.product_events;
