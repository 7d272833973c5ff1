-- The change log publishing reads: which (table, dt) partitions each write replaced, so a published copy is
-- brought up to date by copying those partitions only. Pipeline-internal; not in the published warehouse.
CREATE SCHEMA IF NOT EXISTS meta;

CREATE SEQUENCE IF NOT EXISTS meta.partition_write_seq;

CREATE TABLE IF NOT EXISTS meta.partition_writes (
    table_name VARCHAR NOT NULL,   -- 'schema.table'
    dt         DATE,               -- NULL: the whole table
    seq        BIGINT NOT NULL,    -- meta.partition_write_seq, in commit order (one writer at a time)
    written_at TIMESTAMPTZ
);

-- One row. database_id: a published copy only takes changes from the database it was copied from (a working
-- database deleted and rebuilt restarts seq). pruned_through: log rows up to it are gone, so a copy older than
-- that needs a full copy.
CREATE TABLE IF NOT EXISTS meta.change_log (
    database_id    UUID NOT NULL,
    pruned_through BIGINT NOT NULL
);
INSERT INTO meta.change_log SELECT uuid(), 0 WHERE NOT EXISTS (SELECT * FROM meta.change_log);

-- How far each published copy (slot 'a', 'b') is known to be; never ahead of the copy. What pruning may drop.
CREATE TABLE IF NOT EXISTS meta.published_copies (
    slot         VARCHAR NOT NULL,
    seq          BIGINT NOT NULL,
    published_at TIMESTAMPTZ
);
