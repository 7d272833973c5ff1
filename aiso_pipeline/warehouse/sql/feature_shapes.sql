-- Pipeline-internal (not published). The distinct shapes of raw.inference_events.features per day and model (key
-- names and JSON types), which drift reads for its reference days instead of parsing a week of JSON every night.
-- Filled by drift (drift/engine.py, drift/sql/feature_keys.sql) for the days listed in feature_shape_days; ingest
-- drops a day's rows when it replaces the day's partition (ingest/sql/inference_write.sql).
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.feature_shapes (dt DATE NOT NULL, model VARCHAR, keys VARCHAR[], types VARCHAR[]);
CREATE TABLE IF NOT EXISTS meta.feature_shape_days (dt DATE NOT NULL, rows BIGINT);  -- rows with features then
