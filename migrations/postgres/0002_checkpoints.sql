-- Signed checkpoints of the chain head: a truncated tail, or a rewritten chain, no longer matches
-- the newest one. See docs/evidence-chain.md for the signed message.
CREATE TABLE checkpoints (
    id         BIGSERIAL PRIMARY KEY,
    chain_seq  BIGINT NOT NULL,  -- the head's sequence number when signed
    chain_hash BYTEA  NOT NULL,  -- the head's hash
    signed_at  BIGINT NOT NULL,  -- microseconds since the Unix epoch
    public_key BYTEA  NOT NULL,  -- Ed25519 public key of the signer, 32 bytes
    signature  BYTEA  NOT NULL   -- Ed25519 signature of the message, 64 bytes
);

CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION soc2_append_only();

CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION soc2_append_only();
