-- The append-only, hash-chained audit log. See docs/evidence-chain.md for the hash.
-- The same table as migrations/sqlite/0001, in PostgreSQL's types.
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,       -- chain position: 1, 2, 3, … in ingest order
    event_id    TEXT   NOT NULL UNIQUE,   -- the producer's id; ingest is idempotent on it
    occurred_at BIGINT NOT NULL,          -- microseconds since the Unix epoch, UTC
    event_type  TEXT   NOT NULL,
    actor       TEXT,
    outcome     TEXT,
    resource    TEXT,
    attributes  TEXT,                     -- canonical JSON (sorted keys, compact), as hashed
    prev_hash   BYTEA  NOT NULL,          -- hash of seq - 1; 32 zero bytes for seq 1
    hash        BYTEA  NOT NULL           -- SHA-256(prev_hash || canonical encoding)
);

-- Serves the evaluation query (type + time range, outcome filter) from the index alone,
-- and "newest N of a type" as a backward index scan.
CREATE INDEX audit_events_type_time ON audit_events (event_type, occurred_at, outcome);

CREATE FUNCTION soc2_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION soc2_append_only();

-- Row triggers do not see TRUNCATE.
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION soc2_append_only();
