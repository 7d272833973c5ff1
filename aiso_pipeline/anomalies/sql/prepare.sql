-- Working tables of one detection run (temp: private to the connection, dropped at the end).
-- _anomaly_obs: one value per day × model × feature × metric in [$dt − window, $dt].
CREATE OR REPLACE TEMP TABLE _anomaly_obs (
    dt            DATE,
    model         VARCHAR,
    feature       VARCHAR,
    metric        VARCHAR,
    value         DOUBLE,
    requests      DOUBLE,   -- the day's volume behind the value (weighted requests or inferences)
    window_closed BOOLEAN   -- false: later product events can still change an outcome-based value
);

CREATE OR REPLACE TEMP TABLE _anomaly_found (
    dt           DATE,
    kind         VARCHAR,
    model        VARCHAR,
    feature      VARCHAR,
    metric       VARCHAR,
    value        DOUBLE,
    baseline     DOUBLE,
    threshold    DOUBLE,
    severity     VARCHAR,
    z_score      DOUBLE,
    scale        DOUBLE,
    history_days INTEGER,
    score        DOUBLE,
    episode_start DATE,
    detection_delay_hours DOUBLE
);
