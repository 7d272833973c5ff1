-- After a publish wrote its Parquet files (listed in _written: table_name, dt, path NULL for an emptied day, rows,
-- bytes), in one transaction: the files they replace are retired (older catalogs still name them), the new ones
-- listed, the publication recorded, and the change log pruned of what it published.
INSERT INTO meta.lake_retired
SELECT f.path, $publication
FROM meta.lake_files AS f
JOIN _written AS w ON w.table_name = f.table_name AND w.dt = f.dt;

DELETE FROM meta.lake_files AS f
WHERE EXISTS (SELECT 1 FROM _written AS w WHERE w.table_name = f.table_name AND w.dt = f.dt);

INSERT INTO meta.lake_files
SELECT table_name, dt, path, rows, $publication FROM _written WHERE path IS NOT NULL;

INSERT INTO meta.publications
SELECT $publication, $seq, $database_id::UUID, current_timestamp, count(*), coalesce(sum(rows), 0),
       coalesce(sum(bytes), 0)
FROM _written;

DELETE FROM meta.partition_writes WHERE seq <= $seq;
UPDATE meta.change_log SET pruned_through = greatest(pruned_through, $seq);
