-- Run on a fresh full copy of the working database (its own connection). The meta schema is the pipeline's
-- (change log, bookkeeping): replaced by one row saying what this copy holds, which analysts may read too.
DROP SCHEMA IF EXISTS meta CASCADE;
CREATE SCHEMA meta;
CREATE TABLE meta.published (
    database_id  UUID,            -- the working database it was copied from
    seq          BIGINT,          -- the last change (meta.partition_writes.seq) it holds
    published_at TIMESTAMPTZ,
    method       VARCHAR          -- 'full copy' | 'incremental': how it was last brought up to date
);
INSERT INTO meta.published VALUES ($database_id::UUID, $seq, current_timestamp, 'full copy');
