-- Replace partition ($stream, $dt) of quality.quarantine and quality.ingest_log (run inside one transaction).
-- Every file gets a log row where rows_read = rows_loaded + rows_duplicate + rows_quarantined; a file that could
-- not be read at all has file_error set, one quarantine row with NULL line_number, and zero rows read.
DELETE FROM quality.quarantine WHERE stream = $stream AND dt = $dt;
DELETE FROM quality.ingest_log WHERE stream = $stream AND dt = $dt;

INSERT INTO quality.quarantine BY NAME
SELECT $stream AS stream, $dt::DATE AS dt, source_file, line_number, reason, payload,
       current_timestamp AS quarantined_at
FROM _classified
WHERE outcome = 'quarantined'
UNION ALL
SELECT $stream, $dt::DATE, source_file, NULL, file_error, error_payload, current_timestamp
FROM _files
WHERE file_error IS NOT NULL;

INSERT INTO quality.ingest_log BY NAME
WITH counts AS (
    SELECT source_file,
           count(*) AS rows_read,
           count(*) FILTER (WHERE outcome = 'loaded') AS rows_loaded,
           count(*) FILTER (WHERE outcome = 'duplicate') AS rows_duplicate,
           count(*) FILTER (WHERE outcome = 'quarantined') AS rows_quarantined,
           count(*) FILTER (WHERE outcome = 'loaded' AND unpriced) AS rows_unpriced
    FROM _classified
    GROUP BY source_file
)
SELECT $stream AS stream, $dt::DATE AS dt, f.source_file, f.file_format, f.file_bytes, f.file_mtime,
       coalesce(c.rows_read, 0) AS rows_read, coalesce(c.rows_loaded, 0) AS rows_loaded,
       coalesce(c.rows_duplicate, 0) AS rows_duplicate, coalesce(c.rows_quarantined, 0) AS rows_quarantined,
       coalesce(c.rows_unpriced, 0) AS rows_unpriced, f.file_error, current_timestamp AS loaded_at
FROM _files AS f
LEFT JOIN counts AS c USING (source_file);
