//! Walking the hash chain: the first broken link, if any.

use futures::StreamExt;
use sqlx::Row;

use super::chain::{self, ChainHead, GENESIS};
use super::{Store, hash_of};
use crate::Result;

/// Where and how the chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Break {
    /// The sequence number the walk expected next.
    pub seq: i64,
    pub expected: String,
    pub found: String,
    pub reason: &'static str,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chain broken at #{}: {} (expected {}, found {})",
            self.seq, self.reason, self.expected, self.found
        )
    }
}

/// The outcome of a walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Events whose links held.
    pub verified: u64,
    /// The last link that held.
    pub head: ChainHead,
    pub broken: Option<Break>,
    /// How the hourly roll-up (what evaluation reads) differs from the events, when it does.
    pub rollup: Option<String>,
}

impl Verification {
    /// Whether the chain holds and the roll-up agrees with it.
    pub fn intact(&self) -> bool {
        self.broken.is_none() && self.rollup.is_none()
    }

    /// What is wrong, in words, when something is.
    pub fn problem(&self) -> Option<String> {
        match (&self.broken, &self.rollup) {
            (Some(broken), _) => Some(broken.to_string()),
            (None, Some(rollup)) => Some(rollup.clone()),
            (None, None) => None,
        }
    }
}

impl Store {
    /// Walks the whole chain in order, streaming, recomputing every hash; stops at the first
    /// break: a gap or an inserted row in the sequence, a previous-hash link that does not match,
    /// or a stored hash that is not the hash of the stored event (an edited field, a swap).
    /// `progress` is called every 100,000 events with the count so far.
    pub async fn verify(&self, mut progress: impl FnMut(u64)) -> Result<Verification> {
        let checkpoint = self.latest_checkpoint().await?;
        let mut at_checkpoint = None;
        let mut rows = sqlx::query(
            "SELECT seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash, hash \
             FROM audit_events ORDER BY seq",
        )
        .fetch(&self.pool);
        let mut head = ChainHead {
            seq: 0,
            hash: GENESIS,
        };
        let mut verified = 0u64;
        let mut tallier = super::rollup::Tallier::default();
        while let Some(row) = rows.next().await {
            let row = row?;
            let seq: i64 = row.try_get(0)?;
            let expected_seq = head.seq + 1;
            if seq != expected_seq {
                let reason = if seq > expected_seq {
                    "events missing from the sequence"
                } else {
                    "an event out of sequence"
                };
                let found = format!("#{seq}");
                return Ok(Verification {
                    verified,
                    broken: Some(Break {
                        seq: expected_seq,
                        expected: format!("#{expected_seq}"),
                        found,
                        reason,
                    }),
                    head,
                    rollup: None,
                });
            }
            let prev = hash_of(row.try_get(8)?)?;
            if prev != head.hash {
                let broken = Break {
                    seq,
                    expected: hex::encode(head.hash),
                    found: hex::encode(prev),
                    reason: "its previous hash does not link to the event before",
                };
                return Ok(Verification {
                    verified,
                    head,
                    broken: Some(broken),
                    rollup: None,
                });
            }
            let event = super::stored_event(&row)?;
            tallier.add(&event);
            let recomputed = chain::link(&head.hash, seq, &event);
            let stored = hash_of(row.try_get(9)?)?;
            if recomputed != stored {
                let broken = Break {
                    seq,
                    expected: hex::encode(recomputed),
                    found: hex::encode(stored),
                    reason: "the stored event does not hash to its stored hash",
                };
                return Ok(Verification {
                    verified,
                    head,
                    broken: Some(broken),
                    rollup: None,
                });
            }
            head = ChainHead { seq, hash: stored };
            if checkpoint.as_ref().is_some_and(|c| c.seq == seq) {
                at_checkpoint = Some(stored);
            }
            verified += 1;
            if verified.is_multiple_of(100_000) {
                progress(verified);
            }
        }
        // The chain alone cannot show a cut-off tail or a rewrite from some point on; the newest
        // signed checkpoint can.
        let broken = checkpoint.and_then(|c| {
            if !c.signature_holds() {
                Some(Break {
                    seq: c.seq,
                    expected: "a valid signature".into(),
                    found: hex::encode(c.signature),
                    reason: "the latest checkpoint's signature does not verify",
                })
            } else if c.seq > head.seq {
                Some(Break {
                    seq: head.seq + 1,
                    expected: format!("#{} (signed checkpoint)", c.seq),
                    found: format!("#{} (end of chain)", head.seq),
                    reason: "the chain ends before its latest signed checkpoint: its tail was cut off",
                })
            } else if c.seq > 0 && at_checkpoint != Some(c.hash) {
                Some(Break {
                    seq: c.seq,
                    expected: hex::encode(c.hash),
                    found: at_checkpoint.map(hex::encode).unwrap_or_default(),
                    reason: "the chain differs from its latest signed checkpoint",
                })
            } else {
                None
            }
        });
        let rollup = match broken {
            Some(_) => None,
            None => self.rollup_difference(&tallier.into_tally()).await?,
        };
        Ok(Verification {
            verified,
            head,
            broken,
            rollup,
        })
    }

    /// The first difference between the stored roll-up and `tally` (of every event), if any.
    async fn rollup_difference(&self, tally: &super::rollup::Tally) -> Result<Option<String>> {
        let rows = sqlx::query(
            "SELECT event_type, outcome, bucket, events, last_at FROM audit_rollup \
             ORDER BY event_type, outcome, bucket",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut stored = super::rollup::Tally::new();
        for row in rows {
            stored.insert(
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?),
                (row.try_get(3)?, row.try_get(4)?),
            );
        }
        if &stored == tally {
            return Ok(None);
        }
        let keys: std::collections::BTreeSet<_> = stored.keys().chain(tally.keys()).collect();
        let differs = keys
            .into_iter()
            .find(|k| stored.get(*k) != tally.get(*k))
            .expect("the tallies differ somewhere");
        let (event_type, _, hour) = differs;
        let show =
            |v: Option<&(i64, i64)>| v.map_or("none".to_string(), |(n, _)| format!("{n} events"));
        Ok(Some(format!(
            "the hourly roll-up differs from the events (evaluation reads it): {event_type} in hour {} has {} in the roll-up, {} in the chain",
            crate::posture::timestamp(hour * super::rollup::HOUR),
            show(stored.get(differs)),
            show(tally.get(differs)),
        )))
    }
}
