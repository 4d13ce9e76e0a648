//! Signed checkpoints of the chain head (Ed25519).
//!
//! The signed message is the 27 ASCII bytes `soc2-operator/checkpoint/v1` and a newline, then the
//! head's sequence number (8 bytes big-endian), its hash (32 bytes) and the signing instant
//! (8 bytes big-endian microseconds since the Unix epoch).

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use sqlx::Row;

use super::{Store, hash_of};
use crate::{Error, Result};

const DOMAIN: &[u8] = b"soc2-operator/checkpoint/v1\n";

/// A signed statement "the chain had this head at this instant".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub seq: i64,
    #[serde(with = "hex::serde")]
    pub hash: [u8; 32],
    /// Microseconds since the Unix epoch.
    pub signed_at: i64,
    #[serde(with = "hex::serde")]
    pub public_key: [u8; 32],
    #[serde(with = "hex::serde")]
    pub signature: [u8; 64],
}

/// The bytes a checkpoint's signature covers.
pub fn message(seq: i64, hash: &[u8; 32], signed_at: i64) -> Vec<u8> {
    [DOMAIN, &seq.to_be_bytes(), hash, &signed_at.to_be_bytes()].concat()
}

impl Checkpoint {
    /// Whether the signature is the embedded public key's over this checkpoint.
    pub fn signature_holds(&self) -> bool {
        VerifyingKey::from_bytes(&self.public_key).is_ok_and(|key| {
            key.verify(
                &message(self.seq, &self.hash, self.signed_at),
                &Signature::from_bytes(&self.signature),
            )
            .is_ok()
        })
    }
}

/// Reads an Ed25519 private key in PKCS#8 PEM (`openssl genpkey -algorithm ed25519`).
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey> {
    SigningKey::from_pkcs8_pem(pem)
        .map_err(|e| Error::Key(format!("not an Ed25519 private key in PKCS#8 PEM: {e}")))
}

/// Reads an Ed25519 public key in SPKI PEM (`openssl pkey -pubout`).
pub fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey> {
    VerifyingKey::from_public_key_pem(pem)
        .map_err(|e| Error::Key(format!("not an Ed25519 public key in PEM: {e}")))
}

/// What an export states about the log it was computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainState {
    pub head: super::ChainHead,
    pub checkpoint: Option<Checkpoint>,
}

impl Store {
    /// The chain head and the newest signed checkpoint.
    pub async fn chain_state(&self) -> Result<ChainState> {
        Ok(ChainState {
            head: self.head().await?,
            checkpoint: self.latest_checkpoint().await?,
        })
    }

    /// Signs the current chain head at `signed_at` (microseconds) and stores the checkpoint.
    pub async fn checkpoint(&self, key: &SigningKey, signed_at: i64) -> Result<Checkpoint> {
        let head = self.head().await?;
        let signature = key.sign(&message(head.seq, &head.hash, signed_at));
        let checkpoint = Checkpoint {
            seq: head.seq,
            hash: head.hash,
            signed_at,
            public_key: key.verifying_key().to_bytes(),
            signature: signature.to_bytes(),
        };
        sqlx::query("INSERT INTO checkpoints (chain_seq, chain_hash, signed_at, public_key, signature) VALUES ($1, $2, $3, $4, $5)")
            .bind(checkpoint.seq)
            .bind(checkpoint.hash.as_slice())
            .bind(checkpoint.signed_at)
            .bind(checkpoint.public_key.as_slice())
            .bind(checkpoint.signature.as_slice())
            .execute(&self.pool)
            .await?;
        Ok(checkpoint)
    }

    /// A checkpoint by `key` of the current head: the newest stored one when it already is, else
    /// a new one. What an export carries, so that repeated exports of an unchanged chain do not
    /// add checkpoints.
    pub async fn seal(&self, key: &SigningKey, signed_at: i64) -> Result<ChainState> {
        let head = self.head().await?;
        let latest = self.latest_checkpoint().await?;
        let checkpoint = match latest {
            Some(c)
                if c.seq == head.seq
                    && c.hash == head.hash
                    && c.public_key == key.verifying_key().to_bytes() =>
            {
                c
            }
            _ => self.checkpoint(key, signed_at).await?,
        };
        Ok(ChainState {
            head: super::ChainHead {
                seq: checkpoint.seq,
                hash: checkpoint.hash,
            },
            checkpoint: Some(checkpoint),
        })
    }

    /// The chain state an export states: sealed with `key` when there is one.
    pub async fn export_state(&self, key: Option<&SigningKey>, now: i64) -> Result<ChainState> {
        match key {
            Some(key) => self.seal(key, now).await,
            None => self.chain_state().await,
        }
    }

    /// The newest checkpoint, if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let row = sqlx::query("SELECT chain_seq, chain_hash, signed_at, public_key, signature FROM checkpoints ORDER BY id DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let bytes = |i: usize| -> Result<Vec<u8>> { Ok(row.try_get::<Vec<u8>, _>(i)?) };
        let malformed = |what: &str| {
            Error::Store(sqlx::Error::Decode(
                format!("a checkpoint {what} of the wrong length").into(),
            ))
        };
        Ok(Some(Checkpoint {
            seq: row.try_get(0)?,
            hash: hash_of(bytes(1)?)?,
            signed_at: row.try_get(2)?,
            public_key: bytes(3)?.try_into().map_err(|_| malformed("public key"))?,
            signature: bytes(4)?.try_into().map_err(|_| malformed("signature"))?,
        }))
    }
}
