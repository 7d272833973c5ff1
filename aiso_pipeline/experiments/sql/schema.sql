-- marts.experiment_readouts (CONTRACT sections 6, 7): as-of dt x experiment x metric x non-control variant.
-- Created if missing; columns are added, never renamed or dropped. Columns after `decision` are extras.
CREATE SCHEMA IF NOT EXISTS marts;

CREATE TABLE IF NOT EXISTS marts.experiment_readouts (
    dt                  DATE NOT NULL,     -- as-of day: cumulative from the experiment's start to this day
    experiment_id       VARCHAR NOT NULL,
    metric              VARCHAR NOT NULL,
    variant             VARCHAR NOT NULL,  -- the treatment compared with control_variant
    control_variant     VARCHAR NOT NULL,
    is_guardrail        BOOLEAN NOT NULL,
    units               BIGINT,            -- users in `variant` (the control's are in control_units)
    mean                DOUBLE,            -- treatment mean (ratio metrics: ratio of sums); unadjusted
    control_mean        DOUBLE,
    abs_lift            DOUBLE,            -- CUPED-adjusted when cuped_theta <> 0
    rel_lift            DOUBLE,
    ci_low              DOUBLE,            -- bounds of rel_lift; guardrails: two one-sided bounds (ci_level)
    ci_high             DOUBLE,
    p_value             DOUBLE,            -- primary/secondary: two-sided; guardrails: one-sided for harm
    p_value_adjusted    DOUBLE,            -- Holm (or BH) over primary + secondary x variants; guardrails = p_value
    significant         BOOLEAN NOT NULL,
    srm_p_value         DOUBLE,
    srm_flag            BOOLEAN NOT NULL,  -- srm_p_value < 0.001
    mde                 DOUBLE,            -- relative lift detectable at 80% power with the current sample
    decision            VARCHAR NOT NULL,  -- ship | stop | keep_running | invalid; one per experiment and dt
    metric_role         VARCHAR,           -- primary | secondary | guardrail
    control_units       BIGINT,
    abs_ci_low          DOUBLE,
    abs_ci_high         DOUBLE,
    abs_p_value         DOUBLE,
    ci_level            DOUBLE,
    target_mde          DOUBLE,            -- the registry's mde
    cuped_theta         DOUBLE,            -- 0: no CUPED adjustment (disabled, ratio metric, or no pre-period signal)
    alpha               DOUBLE,
    correction          VARCHAR,
    sequential          BOOLEAN,
    experiment_start    DATE,
    window_end          DATE,              -- last day of data used: min(dt, registry end)
    mixed_variant_users BIGINT,            -- users seen in more than one variant, excluded
    registered          BOOLEAN,           -- listed in reference/experiments.yaml
    computed_at         TIMESTAMPTZ
);
ALTER TABLE marts.experiment_readouts ADD COLUMN IF NOT EXISTS decision_reason VARCHAR;  -- the rule that decided
ALTER TABLE marts.experiment_readouts ADD COLUMN IF NOT EXISTS margin DOUBLE;  -- guardrails: non-inferiority margin
-- further days at the current exposure rate until the row's MDE reaches the registry's target `mde` (0: reached;
-- infinity: not within 10 years at this rate; NULL: no target set, or no MDE yet)
ALTER TABLE marts.experiment_readouts ADD COLUMN IF NOT EXISTS days_to_target_mde DOUBLE;
