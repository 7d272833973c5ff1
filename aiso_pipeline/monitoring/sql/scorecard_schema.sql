-- marts.scorecard (CONTRACT section 7): dt x model, the checks of monitoring/scorecard.yaml with their statuses,
-- and marts.scorecard_checks, the same checks in long form with target and reason. Columns are added, never
-- renamed or dropped.
CREATE SCHEMA IF NOT EXISTS marts;

CREATE TABLE IF NOT EXISTS marts.scorecard (
    dt                        DATE NOT NULL,
    model                     VARCHAR NOT NULL,
    requests                  DOUBLE,
    cost_usd                  DOUBLE,
    window_closed             BOOLEAN,
    join_rate                 DOUBLE,
    drift_detect_hours        DOUBLE,   -- latest drift episode (last 7 days): end of its first day -> detection
    drift_episode_start       DATE,
    experiment_power          DOUBLE,   -- lowest power of the model's running experiments at their target MDE
    cost_per_success          DOUBLE,
    cost_per_success_trend    DOUBLE,   -- against the trailing 7-day median (+0.1 = 10% dearer)
    cost_per_conversion       DOUBLE,
    cost_per_conversion_trend DOUBLE,
    latency_p95_ms            DOUBLE,
    latency_p95_trend         DOUBLE,
    error_rate                DOUBLE,
    fallback_rate             DOUBLE,
    ece                       DOUBLE,
    worst_slice_gap           DOUBLE,   -- success-rate gap of the worst tested slice to its model
    worst_slice               VARCHAR,  -- feature key=value
    worse_slices              BIGINT,
    open_anomalies            BIGINT,
    critical_anomalies        BIGINT,
    join_rate_status                 VARCHAR,  -- pass | warn | fail | n/a (monitoring/scorecard.yaml)
    drift_detect_hours_status        VARCHAR,
    experiment_power_status          VARCHAR,
    cost_per_success_trend_status    VARCHAR,
    cost_per_conversion_trend_status VARCHAR,
    latency_p95_trend_status         VARCHAR,
    error_rate_status                VARCHAR,
    fallback_rate_status             VARCHAR,
    ece_status                       VARCHAR,
    worst_slice_gap_status           VARCHAR,
    open_anomalies_status            VARCHAR,
    visibility_score          DOUBLE,   -- 0-100
    failing                   VARCHAR,  -- the failing checks, comma-separated
    computed_at               TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS marts.scorecard_checks (
    dt          DATE NOT NULL,
    model       VARCHAR NOT NULL,
    check_name  VARCHAR NOT NULL,
    value       DOUBLE,
    target      VARCHAR,
    status      VARCHAR NOT NULL,
    weight      DOUBLE,
    reason      VARCHAR
);

ALTER TABLE marts.scorecard ADD COLUMN IF NOT EXISTS feature_join_rate DOUBLE;  -- its least-joined feature (>= 5%)
ALTER TABLE marts.scorecard ADD COLUMN IF NOT EXISTS worst_join_feature VARCHAR;
ALTER TABLE marts.scorecard ADD COLUMN IF NOT EXISTS feature_join_rate_status VARCHAR;
ALTER TABLE marts.scorecard ADD COLUMN IF NOT EXISTS underpowered_experiment VARCHAR;  -- the one experiment_power is
ALTER TABLE marts.scorecard ADD COLUMN IF NOT EXISTS worse_slice_gap DOUBLE;  -- of slices significantly worse (0: none)
ALTER TABLE marts.scorecard ADD COLUMN IF NOT EXISTS successes_eff DOUBLE;    -- effective counts (Kish), the noise of
ALTER TABLE marts.scorecard ADD COLUMN IF NOT EXISTS conversions_eff DOUBLE;  -- the cost trends

-- Which experiments ran on which model, per day (the model cards' decision log reads its history).
CREATE TABLE IF NOT EXISTS marts.model_experiments (
    dt            DATE NOT NULL,
    model         VARCHAR NOT NULL,
    experiment_id VARCHAR NOT NULL
);
