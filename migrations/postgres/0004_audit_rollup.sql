-- Hourly roll-up of audit_events: events and the latest time per (type, outcome, hour), kept in
-- the ingest transaction. Evaluation reads whole hours here and only the hours that hold an
-- interval boundary from audit_events, so its cost follows intervals, not events. Derived data:
-- `soc2-operator verify` recomputes it from the chain and reports any difference.
CREATE TABLE audit_rollup (
    event_type TEXT   NOT NULL,
    outcome    TEXT   NOT NULL,  -- the event's outcome; U+0001 for events without one
    bucket     BIGINT NOT NULL,  -- floor(occurred_at / 3,600,000,000): the hour since the epoch
    events     BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,  -- microseconds
    PRIMARY KEY (event_type, outcome, bucket)
);

INSERT INTO audit_rollup (event_type, outcome, bucket, events, last_at)
SELECT event_type, COALESCE(outcome, chr(1)), hour, COUNT(*), MAX(occurred_at)
FROM (SELECT event_type, outcome, occurred_at,
             CASE WHEN occurred_at >= 0 THEN occurred_at / 3600000000
                  ELSE (occurred_at - 3599999999) / 3600000000 END AS hour
      FROM audit_events) AS hourly
GROUP BY event_type, COALESCE(outcome, chr(1)), hour;
