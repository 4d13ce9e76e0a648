-- Signed checkpoints of the chain head: a truncated tail, or a rewritten chain, no longer matches
-- the newest one. See docs/evidence-chain.md for the signed message.
CREATE TABLE checkpoints (
    id         INTEGER PRIMARY KEY,
    chain_seq  INTEGER NOT NULL,  -- the head's sequence number when signed
    chain_hash BLOB    NOT NULL,  -- the head's hash
    signed_at  INTEGER NOT NULL,  -- microseconds since the Unix epoch
    public_key BLOB    NOT NULL,  -- Ed25519 public key of the signer, 32 bytes
    signature  BLOB    NOT NULL   -- Ed25519 signature of the message, 64 bytes
);

CREATE TRIGGER checkpoints_append_only_update BEFORE UPDATE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are append-only');
END;

CREATE TRIGGER checkpoints_append_only_delete BEFORE DELETE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are append-only');
END;
