-- In the catalog being built (attached as `catalog`, publishing.CATALOG): one row saying what it holds, which
-- analysts may read too. The pipeline's own meta tables stay in the working database.
CREATE SCHEMA catalog.meta;
CREATE TABLE catalog.meta.published (
    database_id  UUID,            -- the working database it was published from
    seq          BIGINT,          -- the last change (meta.partition_writes.seq) it holds
    publication  BIGINT,          -- the how-many-th publish of this data directory
    published_at TIMESTAMPTZ,
    method       VARCHAR,         -- 'parquet lake': big tables are views over Parquet files under .work/lake/
    data_root    VARCHAR          -- the data directory the views' Parquet paths are under
);
INSERT INTO catalog.meta.published VALUES ($database_id::UUID, $seq, $publication, current_timestamp, 'parquet lake',
                                           $data_root);
