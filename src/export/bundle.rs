//! Checking a signed JSON export offline, with nothing but the export and the operator's public
//! key: the "Public Evidence Verification" of CC8.1. docs/evidence-chain.md states the same steps
//! for an independent verifier; `docs/verify-bundle.py` implements them with Python and openssl.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use super::{PostureExport, json};
use crate::evidence::chain;
use crate::evidence::checkpoint;
use crate::evidence::event::Event;

/// Why a bundle is not genuine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("not a posture export: {0}")]
    NotAnExport(String),
    #[error("not in the exact form the operator writes (a byte was changed, added or removed)")]
    NotCanonical,
    #[error("the export is not signed (it was made without a signing key)")]
    Unsigned,
    #[error("signed by key {found}, not by the given public key {expected}")]
    OtherKey { expected: String, found: String },
    #[error("the signature does not verify: the export was changed after signing")]
    BadSignature,
    #[error("the export carries no checkpoint of its chain head")]
    NoCheckpoint,
    #[error("the checkpoint's signature does not verify")]
    BadCheckpoint,
    #[error("the checkpoint (#{checkpoint}) is not of the export's chain head (#{head})")]
    CheckpointNotHead { checkpoint: i64, head: i64 },
    #[error("event #{seq} ({id}): {reason}")]
    Event {
        seq: i64,
        id: String,
        reason: &'static str,
    },
    #[error("requirement {requirement} cites event {id}, which the export does not carry")]
    Uncited { requirement: String, id: String },
}

/// What a genuine bundle vouches for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub head_seq: i64,
    pub head_hash: String,
    pub events: usize,
    pub requirements: usize,
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// Checks a JSON export against `key`: its exact bytes, its signature, its checkpoint, and every
/// event it carries (recomputed chain hash, links, and that the requirements cite nothing else).
pub fn verify(bytes: &[u8], key: &VerifyingKey) -> Result<Verified, BundleError> {
    let export: PostureExport =
        serde_json::from_slice(bytes).map_err(|e| BundleError::NotAnExport(e.to_string()))?;
    // The signature covers a rendering; only the exact rendering is accepted, so that no byte of
    // the file escapes it.
    if json::pretty(&export).as_bytes() != bytes {
        return Err(BundleError::NotCanonical);
    }
    let signature = export.signature.as_ref().ok_or(BundleError::Unsigned)?;
    if signature.algorithm != "Ed25519" {
        return Err(BundleError::BadSignature);
    }
    let expected = hex::encode(key.to_bytes());
    if signature.public_key != expected {
        return Err(BundleError::OtherKey {
            expected,
            found: signature.public_key.clone(),
        });
    }
    let unsigned = json::pretty(&PostureExport {
        signature: None,
        ..export.clone()
    });
    let value: [u8; 64] = hex::decode(&signature.value)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(BundleError::BadSignature)?;
    key.verify(
        &json::signed_message(&unsigned),
        &Signature::from_bytes(&value),
    )
    .map_err(|_| BundleError::BadSignature)?;

    let head = &export.chain_head;
    let cp = export
        .checkpoint
        .as_ref()
        .ok_or(BundleError::NoCheckpoint)?;
    let cp_hash = hex32(&cp.hash).ok_or(BundleError::BadCheckpoint)?;
    let cp_signature: [u8; 64] = hex::decode(&cp.signature)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(BundleError::BadCheckpoint)?;
    let message = checkpoint::message(cp.seq, &cp_hash, cp.signed_at.as_microsecond());
    if cp.public_key != expected
        || key
            .verify(&message, &Signature::from_bytes(&cp_signature))
            .is_err()
    {
        return Err(BundleError::BadCheckpoint);
    }
    if cp.seq != head.seq || cp.hash != head.hash {
        return Err(BundleError::CheckpointNotHead {
            checkpoint: cp.seq,
            head: head.seq,
        });
    }

    let mut previous: Option<(i64, [u8; 32])> = None;
    for e in &export.evidence {
        let broken = |reason| BundleError::Event {
            seq: e.seq,
            id: e.id.clone(),
            reason,
        };
        let (Some(prev), Some(hash)) = (hex32(&e.prev_hash), hex32(&e.hash)) else {
            return Err(broken("a hash is not 32 bytes of hex"));
        };
        if e.occurred_at.as_microsecond() != e.occurred_at_micros {
            return Err(broken("occurredAt and occurredAtMicros differ"));
        }
        let event = Event {
            id: e.id.clone(),
            occurred_at: e.occurred_at_micros,
            event_type: e.event_type.clone(),
            actor: e.actor.clone(),
            outcome: e.outcome.clone(),
            resource: e.resource.clone(),
            attributes: e.attributes.clone(),
        };
        if chain::link(&prev, e.seq, &event) != hash {
            return Err(broken("its fields do not hash to its chain hash"));
        }
        if e.seq < 1 || e.seq > head.seq || (e.seq == head.seq && e.hash != head.hash) {
            return Err(broken(
                "it is not on the chain that ends at the signed head",
            ));
        }
        match previous {
            Some((seq, _)) if e.seq <= seq => return Err(broken("events out of chain order")),
            Some((seq, h)) if e.seq == seq + 1 && h != prev => {
                return Err(broken("it does not link to the event before it"));
            }
            _ => {}
        }
        previous = Some((e.seq, hash));
    }
    for r in &export.requirements {
        for cited in &r.recent_events {
            if !export
                .evidence
                .iter()
                .any(|e| e.id == cited.id && e.hash == cited.hash)
            {
                return Err(BundleError::Uncited {
                    requirement: r.id.clone(),
                    id: cited.id.clone(),
                });
            }
        }
    }
    Ok(Verified {
        head_seq: head.seq,
        head_hash: head.hash.clone(),
        events: export.evidence.len(),
        requirements: export.requirements.len(),
    })
}
