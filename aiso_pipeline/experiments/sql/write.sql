-- Replace as-of day $dt of marts.experiment_readouts and this asset's rows of quality.check_results.
-- Run inside one transaction, after the rows are staged in _xp_rows and _xp_checks.
DELETE FROM marts.experiment_readouts WHERE dt = $dt::DATE;

INSERT INTO marts.experiment_readouts BY NAME
SELECT *, current_timestamp AS computed_at
FROM _xp_rows;

DELETE FROM quality.check_results WHERE dt = $dt::DATE AND asset = $asset;

INSERT INTO quality.check_results BY NAME
SELECT $dt::DATE AS dt, $asset AS asset, check_name, passed, severity, observed_value, threshold, details,
       current_timestamp AS checked_at
FROM _xp_checks;
