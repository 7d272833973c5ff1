-- The primary metric's readout on every as-of day so far, for the experiment's report page.
SELECT dt, variant, units, control_units, rel_lift, ci_low, ci_high, p_value_adjusted, mde, decision
FROM marts.experiment_readouts
WHERE experiment_id = $experiment_id AND metric_role = 'primary' AND dt <= $dt::DATE
ORDER BY dt, variant;
