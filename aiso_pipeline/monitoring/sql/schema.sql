-- Monitoring marts (CONTRACT section 7): calibration, its reliability curve, the confidence-threshold curve and
-- slice parity, per day from marts.joined_outcomes and the day's raw.inference_events (confidence, features).
-- Columns are added, never renamed or dropped.
CREATE SCHEMA IF NOT EXISTS marts;

CREATE TABLE IF NOT EXISTS marts.calibration (
    dt            DATE NOT NULL,
    model         VARCHAR NOT NULL,
    feature       VARCHAR,
    n             DOUBLE NOT NULL,   -- weighted calls with a confidence (weight = 1 / sample_rate)
    calls         BIGINT NOT NULL,   -- unweighted rows behind it
    brier         DOUBLE,            -- weighted mean of (confidence - success)^2
    ece           DOUBLE,            -- sum over 10 bins of (W_b / W) |mean confidence - success rate|
    mean_confidence DOUBLE,
    success_rate  DOUBLE,
    window_closed BOOLEAN NOT NULL,  -- false: later product events can still turn calls into successes
    computed_at   TIMESTAMPTZ
);

-- The reliability curve: bin b holds the calls with floor(10 * confidence) = b (b = 9 also holds 1.0).
CREATE TABLE IF NOT EXISTS marts.calibration_bins (
    dt              DATE NOT NULL,
    model           VARCHAR NOT NULL,
    feature         VARCHAR,
    bin             INTEGER NOT NULL,  -- 0 .. 9
    bin_low         DOUBLE NOT NULL,   -- b / 10
    bin_high        DOUBLE NOT NULL,   -- (b + 1) / 10
    weight          DOUBLE NOT NULL,
    calls           BIGINT NOT NULL,
    mean_confidence DOUBLE NOT NULL,
    success_rate    DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS marts.threshold_curve (
    dt                     DATE NOT NULL,
    model                  VARCHAR NOT NULL,
    feature                VARCHAR,
    threshold              DOUBLE NOT NULL,  -- 0.05 .. 0.95: calls with floor(20 * confidence) < 20 * threshold fall back
    calls                  DOUBLE NOT NULL,  -- weighted model answers with a confidence (fallbacks served excluded)
    fallback_share         DOUBLE,           -- share of them that would fall back
    success_rate_above     DOUBLE,           -- success rate of the calls that would still be answered
    success_rate_below     DOUBLE,           -- success rate of the calls that would fall back (what is at stake)
    cost_saved_usd         DOUBLE,           -- their model cost minus what as many observed fallbacks cost; NULL
                                             -- without an observed fallback of this model x feature that day
    fallback_unit_cost_usd DOUBLE,           -- weighted mean cost of the day's observed fallbacks
    fallbacks_observed     DOUBLE NOT NULL,  -- weighted fallbacks served that day (the cost basis)
    window_closed          BOOLEAN NOT NULL,
    computed_at            TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS marts.slice_metrics (
    dt                DATE NOT NULL,
    model             VARCHAR NOT NULL,
    feature           VARCHAR,
    slice_key         VARCHAR NOT NULL,  -- a declared input (reference/monitoring.yaml: slices)
    slice_value       VARCHAR NOT NULL,
    requests          DOUBLE NOT NULL,   -- weighted
    calls             BIGINT NOT NULL,
    success_rate      DOUBLE,
    conversion_rate   DOUBLE,
    cost_per_success  DOUBLE,            -- priced calls' cost / their successes
    latency_p95_ms    DOUBLE,            -- weighted
    model_success_rate DOUBLE,           -- the model x feature overall
    gap_vs_model      DOUBLE,            -- success_rate - model_success_rate
    rest_success_rate DOUBLE,            -- the rest of the model x feature (what the test compares with)
    p_value           DOUBLE,            -- one-sided: is the slice worse than the rest by more than the margin?
    p_value_adjusted  DOUBLE,            -- Benjamini-Hochberg over the day's tested slices
    tested            BOOLEAN NOT NULL,  -- slice and rest both have slice_min_requests
    worse             BOOLEAN NOT NULL,  -- p_value_adjusted < slice_alpha
    margin            DOUBLE,
    window_closed     BOOLEAN NOT NULL,
    computed_at       TIMESTAMPTZ
);
