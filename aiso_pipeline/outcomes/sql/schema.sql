-- Outcome and cost marts (CONTRACT section 7). Created if missing; columns are added, never renamed or dropped.
-- Weighted columns (inferences, requests, tokens, cost...) are estimates of all calls: each row counts
-- 1/sample_rate, so they are DOUBLE even when they look like counts.
CREATE SCHEMA IF NOT EXISTS marts;

CREATE TABLE IF NOT EXISTS marts.joined_outcomes (
    request_id        VARCHAR NOT NULL,
    dt                DATE NOT NULL,
    "timestamp"       TIMESTAMPTZ NOT NULL,
    model             VARCHAR NOT NULL,
    feature           VARCHAR,
    user_id           VARCHAR,
    experiment_id     VARCHAR,
    variant           VARCHAR,
    status            VARCHAR,
    is_fallback       BOOLEAN,
    latency_ms        DOUBLE,
    input_tokens      BIGINT,
    output_tokens     BIGINT,
    cost_usd          DOUBLE,      -- NULL = unpriced
    weight            DOUBLE NOT NULL,  -- 1 / sample_rate: the calls this row stands for
    has_outcome       BOOLEAN NOT NULL,
    events_attributed BIGINT NOT NULL,
    success           BOOLEAN NOT NULL,
    converted         BOOLEAN NOT NULL,
    revenue           DOUBLE NOT NULL, -- sum of attributed conversion revenue; 0 without one
    first_outcome_at  TIMESTAMPTZ,
    window_closed     BOOLEAN NOT NULL, -- false: later product events may still change the outcome columns
    computed_at       TIMESTAMPTZ
);

-- Whether each day's attribution window has closed, as of its last refresh: the joined rows carry the same flag,
-- and the published marts.joined_outcomes takes it from here, so a window closing rewrites no Parquet file.
CREATE TABLE IF NOT EXISTS marts.outcome_windows (
    dt            DATE NOT NULL,
    window_closed BOOLEAN NOT NULL,
    checked_at    TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS marts.outcome_coverage (
    dt             DATE NOT NULL,
    model          VARCHAR NOT NULL,
    feature        VARCHAR,
    inferences     DOUBLE NOT NULL,  -- weighted
    joined         DOUBLE NOT NULL,  -- weighted, has_outcome
    join_rate      DOUBLE,
    inference_rows BIGINT NOT NULL,  -- unweighted rows
    joined_rows    BIGINT NOT NULL,
    window_closed  BOOLEAN NOT NULL,
    computed_at    TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS marts.cost_daily (
    dt                   DATE NOT NULL,
    model                VARCHAR NOT NULL,
    feature              VARCHAR,
    requests             DOUBLE NOT NULL,
    request_rows         BIGINT NOT NULL,  -- unweighted rows behind the estimates
    input_tokens         DOUBLE,
    output_tokens        DOUBLE,
    cost_usd             DOUBLE,           -- priced requests only; NULL when none is priced
    unpriced_requests    DOUBLE NOT NULL,
    cost_per_1k_requests DOUBLE,           -- per priced request
    successes            DOUBLE NOT NULL,
    cost_per_success     DOUBLE,           -- cost of priced requests / their successes
    conversions          DOUBLE NOT NULL,
    cost_per_conversion  DOUBLE,
    revenue              DOUBLE NOT NULL,
    error_rate           DOUBLE,           -- status error or timeout
    timeout_rate         DOUBLE,
    fallback_rate        DOUBLE,
    latency_p50_ms       DOUBLE,           -- weighted percentiles, see cost_daily_write.sql
    latency_p95_ms       DOUBLE,
    latency_p99_ms       DOUBLE,
    window_closed        BOOLEAN NOT NULL,
    computed_at          TIMESTAMPTZ
);

-- Pipeline-internal (not published): what each day's joined outcomes and attribution checks were computed from
-- (inputs.sql), so a refresh whose inputs did not change is not computed again.
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.outcome_inputs (
    dt                 DATE NOT NULL,
    join_inputs        VARCHAR NOT NULL,  -- digest of inputs.sql's 'join' rows, the settings and the SQL
    check_inputs       VARCHAR NOT NULL,  -- the same for the 'checks' rows
    events             BIGINT,            -- the attribution checks' counts, for the summary
    unattributed       BIGINT,
    unknown_request_id BIGINT,
    computed_at        TIMESTAMPTZ
);
-- digest of the join's settings and SQL alone: with the same, a join can be extended (joined_merge.sql)
ALTER TABLE meta.outcome_inputs ADD COLUMN IF NOT EXISTS join_code VARCHAR;
-- The 'join' rows of inputs.sql as of the day's last join: which partitions it read, to tell what was added since.
CREATE TABLE IF NOT EXISTS meta.outcome_join_parts (
    dt        DATE NOT NULL,     -- the joined day
    stream    VARCHAR NOT NULL,  -- inference | product
    part_dt   DATE NOT NULL,     -- a partition it read
    rows      BIGINT,
    loaded_at TIMESTAMPTZ
);
