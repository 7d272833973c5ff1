-- What publishing keeps in the working database (warehouse/publishing.py). Pipeline-internal; not published.
CREATE SCHEMA IF NOT EXISTS meta;

-- The Parquet file each day of each lake table is published from (path relative to the data directory).
CREATE TABLE IF NOT EXISTS meta.lake_files (
    table_name  VARCHAR NOT NULL,  -- 'schema.table'
    dt          DATE NOT NULL,
    path        VARCHAR NOT NULL,
    rows        BIGINT NOT NULL,
    publication BIGINT NOT NULL    -- the publish that wrote it
);

-- Files a publish replaced: older catalogs still name them, so they are deleted a few publishes later.
CREATE TABLE IF NOT EXISTS meta.lake_retired (
    path        VARCHAR NOT NULL,
    publication BIGINT NOT NULL    -- the publish that replaced it
);

-- One row per publish: how far into the change log it went (seq), and what it wrote.
CREATE TABLE IF NOT EXISTS meta.publications (
    publication   BIGINT NOT NULL,
    seq           BIGINT NOT NULL,
    database_id   UUID NOT NULL,   -- meta.change_log.database_id, as in the catalog's meta.published
    published_at  TIMESTAMPTZ,
    partitions    BIGINT,
    rows_written  BIGINT,
    bytes_written BIGINT
);
