-- The most frequent quarantine reasons of a partition ($stream, $dt), each with its first file and line.
SELECT reason, count(*) AS quarantined_rows,
       first(source_file ORDER BY source_file, line_number) AS source_file,
       first(line_number ORDER BY source_file, line_number) AS line_number
FROM quality.quarantine
WHERE stream = $stream AND dt = $dt::DATE AND line_number IS NOT NULL
GROUP BY reason
ORDER BY quarantined_rows DESC, reason
LIMIT $n;
