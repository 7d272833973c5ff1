-- The change log publishing reads: which (table, dt) partitions each write replaced, so a publish writes those
-- partitions only (warehouse/publishing.py). Pipeline-internal; not in the published warehouse.
CREATE SCHEMA IF NOT EXISTS meta;

CREATE SEQUENCE IF NOT EXISTS meta.partition_write_seq;

CREATE TABLE IF NOT EXISTS meta.partition_writes (
    table_name VARCHAR NOT NULL,   -- 'schema.table'
    dt         DATE,               -- NULL: the whole table
    seq        BIGINT NOT NULL,    -- meta.partition_write_seq, in commit order (one writer at a time)
    written_at TIMESTAMPTZ
);

-- One row. database_id: a publish only builds on earlier publications of the same working database (one deleted and
-- rebuilt restarts seq). pruned_through: log rows up to it were published and are gone.
CREATE TABLE IF NOT EXISTS meta.change_log (
    database_id    UUID NOT NULL,
    pruned_through BIGINT NOT NULL
);
INSERT INTO meta.change_log SELECT uuid(), 0 WHERE NOT EXISTS (SELECT * FROM meta.change_log);
