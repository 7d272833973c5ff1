-- Tables analysts query (CONTRACT section 7). Created if missing; columns are added, never renamed or dropped.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS quality;
CREATE SCHEMA IF NOT EXISTS marts;

CREATE TABLE IF NOT EXISTS raw.inference_events (
    request_id          VARCHAR NOT NULL,
    "timestamp"         TIMESTAMPTZ NOT NULL,
    model               VARCHAR NOT NULL,
    model_version       VARCHAR,
    provider            VARCHAR,
    operation           VARCHAR,
    feature             VARCHAR,
    user_id             VARCHAR,
    session_id          VARCHAR,
    input_tokens        BIGINT,
    output_tokens       BIGINT,
    cached_input_tokens BIGINT,
    latency_ms          DOUBLE,
    status              VARCHAR,
    error_type          VARCHAR,
    is_fallback         BOOLEAN,
    confidence          DOUBLE,
    cost_usd            DOUBLE,      -- reported, else priced; NULL = unpriced
    cost_source         VARCHAR,     -- 'reported' | 'price_table' | NULL
    experiment_id       VARCHAR,
    variant             VARCHAR,
    sample_rate         DOUBLE,
    features            JSON,
    attributes          JSON,        -- every key the contract does not name
    dt                  DATE NOT NULL,
    source_file         VARCHAR NOT NULL,
    line_number         BIGINT,
    loaded_at           TIMESTAMPTZ
);
-- Columns added since the table was first created (a working database from before keeps its rows).
ALTER TABLE raw.inference_events ADD COLUMN IF NOT EXISTS record_number BIGINT;  -- the span within an OTLP line
ALTER TABLE raw.inference_events ADD COLUMN IF NOT EXISTS trace_id VARCHAR;      -- span sources: the trace
ALTER TABLE raw.inference_events ADD COLUMN IF NOT EXISTS span_id VARCHAR;       -- and the span of the call

CREATE TABLE IF NOT EXISTS raw.product_events (
    message_id   VARCHAR NOT NULL,
    event        VARCHAR NOT NULL,
    "timestamp"  TIMESTAMPTZ NOT NULL,
    user_id      VARCHAR,
    anonymous_id VARCHAR,
    session_id   VARCHAR,
    request_id   VARCHAR,
    properties   JSON,
    revenue      DOUBLE,
    attributes   JSON,
    dt           DATE NOT NULL,
    source_file  VARCHAR NOT NULL,
    line_number  BIGINT,
    loaded_at    TIMESTAMPTZ
);
ALTER TABLE raw.product_events ADD COLUMN IF NOT EXISTS record_number BIGINT;

CREATE TABLE IF NOT EXISTS quality.quarantine (
    stream         VARCHAR NOT NULL,
    dt             DATE NOT NULL,
    source_file    VARCHAR NOT NULL,
    line_number    BIGINT,          -- NULL when the whole file is quarantined
    reason         VARCHAR NOT NULL, -- '<category>: <detail>', e.g. 'out_of_range: confidence'
    payload        VARCHAR,
    quarantined_at TIMESTAMPTZ
);
ALTER TABLE quality.quarantine ADD COLUMN IF NOT EXISTS record_number BIGINT;  -- the span within an OTLP line

CREATE TABLE IF NOT EXISTS quality.ingest_log (
    stream           VARCHAR NOT NULL,
    dt               DATE NOT NULL,
    source_file      VARCHAR NOT NULL,
    file_format      VARCHAR,
    file_bytes       BIGINT,
    file_mtime       TIMESTAMPTZ,
    rows_read        BIGINT NOT NULL,
    rows_loaded      BIGINT NOT NULL,
    rows_duplicate   BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    rows_unpriced    BIGINT,
    file_error       VARCHAR,        -- set when the whole file was quarantined
    loaded_at        TIMESTAMPTZ
);
ALTER TABLE quality.ingest_log ADD COLUMN IF NOT EXISTS source VARCHAR;         -- the declaration it was read as
ALTER TABLE quality.ingest_log ADD COLUMN IF NOT EXISTS rows_skipped BIGINT;    -- records that are not events
ALTER TABLE quality.ingest_log ADD COLUMN IF NOT EXISTS skip_reasons JSON;      -- {kind: count} of those

CREATE TABLE IF NOT EXISTS quality.check_results (
    dt             DATE NOT NULL,
    asset          VARCHAR,
    check_name     VARCHAR NOT NULL,
    passed         BOOLEAN NOT NULL,
    severity       VARCHAR NOT NULL,
    observed_value DOUBLE,
    threshold      VARCHAR,
    details        VARCHAR,
    checked_at     TIMESTAMPTZ
);
