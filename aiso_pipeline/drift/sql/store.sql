-- marts.drift_metrics (dt x model x column) and marts.drift_summary (dt x model): replace partition $dt from
-- the temp relations _drift_metrics / _drift_summary (run inside one transaction).
CREATE TABLE IF NOT EXISTS marts.drift_metrics (
    dt DATE NOT NULL, model VARCHAR NOT NULL, column_name VARCHAR NOT NULL, column_type VARCHAR, method VARCHAR,
    statistic DOUBLE, threshold DOUBLE, drifted BOOLEAN, reference_start DATE, reference_end DATE,
    reference_rows BIGINT, current_rows BIGINT, p_value DOUBLE, test_statistic DOUBLE, declared_type VARCHAR,
    reference_values BIGINT, current_values BIGINT, distinct_values BIGINT, reason VARCHAR
);
CREATE TABLE IF NOT EXISTS marts.drift_summary (
    dt DATE NOT NULL, model VARCHAR NOT NULL, columns_checked INTEGER, columns_drifted INTEGER, share_drifted DOUBLE,
    dataset_drift BOOLEAN, columns_skipped INTEGER, drift_share_threshold DOUBLE, reference_start DATE,
    reference_end DATE, reference_rows BIGINT, current_rows BIGINT, report_path VARCHAR
);
ALTER TABLE marts.drift_summary ADD COLUMN IF NOT EXISTS feature_keys_skipped INTEGER;  -- past max_feature_keys
-- is the shift more than sampling noise? two-sample KS (numeric) or chi-square homogeneity (categorical): alerts
ALTER TABLE marts.drift_metrics ADD COLUMN IF NOT EXISTS shift_p_value DOUBLE;
DELETE FROM marts.drift_metrics WHERE dt = $dt;
DELETE FROM marts.drift_summary WHERE dt = $dt;
INSERT INTO marts.drift_metrics BY NAME SELECT * FROM _drift_metrics;
INSERT INTO marts.drift_summary BY NAME SELECT * FROM _drift_summary;
