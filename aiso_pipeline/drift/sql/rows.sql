-- The rows one drift comparison reads: the current day (is_current TRUE) and the reference window (is_current
-- FALSE: a boolean groups faster than a text label) of the models compared (the day's models, bound as $rm0, $rm1,
-- ... or $model, listed by ref_models); one output column per checked column, aliased c0, c1, ...
-- Placeholders filled by engine.py (braced names below): source is a validated table name, base a list of
-- whitelisted column identifiers, features and columns are built only from the fragments in expressions.sql;
-- sample_cur / sample_ref are empty or the row_sample fragment.
-- Values ($dt, $ref_start, $ref_end, $feature_paths, the models) are bound parameters. Portable SQL.
SELECT model, is_current{columns}
FROM (
    SELECT model, TRUE AS is_current{base}{features}
    FROM {source}
    WHERE dt = $dt{sample_cur}
    UNION ALL
    SELECT model, FALSE AS is_current{base}{features}
    FROM {source}
    WHERE dt BETWEEN $ref_start AND $ref_end
      AND model IN ({ref_models}){sample_ref}
) AS tagged
