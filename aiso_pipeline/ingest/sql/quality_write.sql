-- Replace partition ($stream, $dt) of quality.quarantine and quality.ingest_log (run inside one transaction, after
-- the stream's write, which leaves _loaded). Every file gets a log row where rows_read = rows_loaded +
-- rows_duplicate + rows_quarantined + rows_skipped (records that are not events to load: non-model spans, Segment
-- identify calls, ...; skip_reasons counts them by kind); a file that could not be read at all has file_error set,
-- one quarantine row with NULL line_number, and zero rows read.
DELETE FROM quality.quarantine WHERE stream = $stream AND dt = $dt;
DELETE FROM quality.ingest_log WHERE stream = $stream AND dt = $dt;

-- At most $max_rows bad rows per file are stored (the first by line); past that, one row says how many more
-- there were. The ingest log counts every one.
INSERT INTO quality.quarantine BY NAME
WITH bad AS (
    SELECT source_file, line_number, record_number, reason, payload,
           row_number() OVER (PARTITION BY source_file ORDER BY line_number, record_number) AS n
    FROM _parsed
    WHERE reason IS NOT NULL
)
SELECT $stream AS stream, $dt::DATE AS dt, source_file, line_number, record_number, reason, payload,
       current_timestamp AS quarantined_at
FROM bad
WHERE n <= $max_rows
UNION ALL
SELECT $stream, $dt::DATE, source_file, NULL, NULL,
       'quarantine_truncated: ' || (count(*) - $max_rows) || ' more bad rows of this file are counted in '
       || 'quality.ingest_log, not stored (max_quarantined_rows_per_file in reference/ingest.yaml)', NULL,
       current_timestamp
FROM bad
GROUP BY source_file
HAVING count(*) > $max_rows
UNION ALL
SELECT $stream, $dt::DATE, source_file, NULL, NULL, file_error, error_payload, current_timestamp
FROM _files
WHERE file_error IS NOT NULL;

INSERT INTO quality.ingest_log BY NAME
WITH parsed AS (
    SELECT source_file, count(*) AS rows_read, count(*) FILTER (WHERE reason IS NOT NULL) AS rows_quarantined,
           count(*) FILTER (WHERE skip_reason IS NOT NULL) AS rows_skipped
    FROM _parsed
    GROUP BY source_file
), skips AS (
    SELECT source_file, to_json(map(list(skip_reason ORDER BY skip_reason), list(n ORDER BY skip_reason))) AS skip_reasons
    FROM (SELECT source_file, skip_reason, count(*) AS n FROM _parsed WHERE skip_reason IS NOT NULL GROUP BY ALL)
    GROUP BY source_file
), duplicates AS (
    SELECT source_file, count(*) AS rows_duplicate FROM _duplicates GROUP BY source_file
)
SELECT $stream AS stream, $dt::DATE AS dt, f.source_file, f.file_format, f.source, f.file_bytes, f.file_mtime,
       coalesce(p.rows_read, 0) AS rows_read, coalesce(l.rows_loaded, 0) AS rows_loaded,
       coalesce(d.rows_duplicate, 0) AS rows_duplicate, coalesce(p.rows_quarantined, 0) AS rows_quarantined,
       coalesce(p.rows_skipped, 0) AS rows_skipped, k.skip_reasons,
       coalesce(l.rows_unpriced, 0) AS rows_unpriced, f.file_error, current_timestamp AS loaded_at
FROM _files AS f
LEFT JOIN parsed AS p USING (source_file)
LEFT JOIN duplicates AS d USING (source_file)
LEFT JOIN skips AS k USING (source_file)
LEFT JOIN _loaded AS l USING (source_file);
