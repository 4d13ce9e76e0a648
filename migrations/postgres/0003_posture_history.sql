-- Daily posture: one row per requirement per UTC day, the day's latest evaluation. Derived data
-- (not part of the chain): it keeps greenSince and the trend across restarts.
CREATE TABLE posture_history (
    day                TEXT   NOT NULL,  -- UTC day, YYYY-MM-DD
    namespace          TEXT   NOT NULL,  -- '' for requirements evaluated from files
    name               TEXT   NOT NULL,  -- the Soc2Requirement's name
    requirement        TEXT   NOT NULL,  -- its CC id
    state              TEXT   NOT NULL,  -- Green, Amber, Red or Unknown
    events             BIGINT NOT NULL,
    coverage           TEXT   NOT NULL,
    evaluated_at       BIGINT NOT NULL,  -- microseconds: the day's latest evaluation
    state_since        BIGINT NOT NULL,  -- microseconds: the day's first evaluation in this state
    PRIMARY KEY (namespace, name, day)
);
