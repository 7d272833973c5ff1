-- marts.anomalies (CONTRACT section 7): one detected anomaly per dt × kind × model × feature × metric.
CREATE SCHEMA IF NOT EXISTS marts;

CREATE TABLE IF NOT EXISTS marts.anomalies (
    dt            DATE NOT NULL,
    kind          VARCHAR NOT NULL,  -- 'spike' | 'drop' | 'drift' | 'parity'
    model         VARCHAR NOT NULL,
    feature       VARCHAR,           -- NULL for dataset drift, which is per model
    metric        VARCHAR NOT NULL,  -- requests, cost_usd, cost_per_success, latency_p95_ms, error_rate,
                                     -- fallback_rate, join_rate, ece, dataset_drift, drift:<column>,
                                     -- success_rate[<slice key>=<value>] (parity)
    value         DOUBLE,            -- the day's value (share of drifted columns for dataset_drift)
    baseline      DOUBLE,            -- trailing median over the history window
    threshold     DOUBLE,            -- the value the day crossed: baseline ± warn_z · scale (NULL for drift)
    severity      VARCHAR NOT NULL,  -- 'warning' | 'critical'
    z_score       DOUBLE,            -- robust z: (value − baseline) / scale (NULL for drift)
    scale         DOUBLE,            -- 1.4826 · MAD, floored (see anomalies/sql/score.sql)
    history_days  INTEGER,           -- days in the baseline
    anomaly_id    VARCHAR NOT NULL,  -- md5 of dt, kind, model, feature, metric: stable across reruns
    detected_at   TIMESTAMPTZ NOT NULL
);

-- drift: the column's weight x how far past its threshold; episodes of drift (see anomalies/sql/drift.sql)
ALTER TABLE marts.anomalies ADD COLUMN IF NOT EXISTS score DOUBLE;
ALTER TABLE marts.anomalies ADD COLUMN IF NOT EXISTS episode_start DATE;           -- drift: first day of the episode
ALTER TABLE marts.anomalies ADD COLUMN IF NOT EXISTS detection_delay_hours DOUBLE; -- drift: end of that day -> first detection
