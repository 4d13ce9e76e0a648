//! The operator's own evidence for CC8.1: chain verifications and signed checkpoints, recorded
//! as audit events in the chain they describe (docs/event-catalogue.md).

use jiff::Timestamp;
use serde_json::json;
use sqlx::Row;

use super::Store;
use super::checkpoint::Checkpoint;
use super::event::{Event, canonical_json};
use super::verify::Verification;
use crate::Result;

/// A walk of the whole chain: outcome `success` (intact) or `failure` (broken).
pub const CHAIN_VERIFIED: &str = "integrity.chain.verified";
/// A checkpoint of the chain head was signed and stored.
pub const CHECKPOINT_SIGNED: &str = "integrity.checkpoint.signed";
/// What the integrity events are about.
const RESOURCE: &str = "evidence-chain";

impl Verification {
    /// The audit event recording this verification, by `actor` at `at`.
    pub fn to_event(&self, actor: &str, at: Timestamp) -> Event {
        let mut attributes = json!({
            "verified": self.verified,
            "headSeq": self.head.seq,
            "headHash": hex::encode(self.head.hash),
        });
        if let Some(rollup) = &self.rollup {
            attributes["rollup"] = json!(rollup);
        }
        if let Some(broken) = &self.broken {
            attributes["broken"] = json!({
                "seq": broken.seq,
                "reason": broken.reason,
                "expected": broken.expected,
                "found": broken.found,
            });
        }
        integrity_event(
            CHAIN_VERIFIED,
            self.head.seq,
            actor,
            at,
            if self.intact() { "success" } else { "failure" },
            attributes,
        )
    }
}

impl Checkpoint {
    /// The audit event recording that this checkpoint was signed, by `actor`.
    pub fn to_event(&self, actor: &str) -> Event {
        integrity_event(
            CHECKPOINT_SIGNED,
            self.seq,
            actor,
            crate::posture::timestamp(self.signed_at),
            "success",
            json!({
                "seq": self.seq,
                "hash": hex::encode(self.hash),
                "publicKey": hex::encode(self.public_key),
                "signature": hex::encode(self.signature),
            }),
        )
    }
}

fn integrity_event(
    event_type: &str,
    seq: i64,
    actor: &str,
    at: Timestamp,
    outcome: &str,
    attributes: serde_json::Value,
) -> Event {
    let at = at.as_microsecond();
    Event {
        id: format!("{event_type}/{at}/{seq}"),
        occurred_at: at,
        event_type: event_type.into(),
        actor: Some(actor.into()),
        outcome: Some(outcome.into()),
        resource: Some(RESOURCE.into()),
        attributes: Some(canonical_json(&attributes)),
    }
}

impl Store {
    /// Why the chain is broken, if the newest verification before `before` (microseconds) found
    /// it broken.
    pub async fn chain_broken(&self, before: i64) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT outcome, attributes FROM audit_events WHERE event_type = $1 AND occurred_at < $2 \
             ORDER BY occurred_at DESC, seq DESC LIMIT 1",
        )
        .bind(CHAIN_VERIFIED)
        .bind(before)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let outcome: Option<String> = row.try_get(0)?;
        if outcome.as_deref() != Some("failure") {
            return Ok(None);
        }
        let attributes: Option<String> = row.try_get(1)?;
        let broken = attributes
            .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok())
            .map(|a| a["broken"].clone())
            .unwrap_or_default();
        Ok(Some(match broken["seq"].as_i64() {
            Some(seq) => format!(
                "chain broken at #{seq}: {}",
                broken["reason"].as_str().unwrap_or("unknown reason")
            ),
            None => "the hourly roll-up differs from the events".into(),
        }))
    }
}
