-- Replace this run's checks of one partition in quality.check_results: run inside one transaction, after the
-- rows of this run are staged in _check_results. Rows of other checks (other assets, other modules) are kept.
DELETE FROM quality.check_results
WHERE dt = $dt::DATE AND asset = $asset AND check_name IN (SELECT check_name FROM _check_results);

INSERT INTO quality.check_results BY NAME
SELECT $dt::DATE AS dt, $asset AS asset, check_name, passed, severity, observed_value, threshold, details,
       current_timestamp AS checked_at
FROM _check_results;
