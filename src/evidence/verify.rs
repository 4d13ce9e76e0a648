//! Walking the hash chain: the first broken link, if any.

use sqlx::Row;

use super::chain::{self, ChainHead, Fields, GENESIS};
use super::rollup::Tallier;
use super::{Native, Store};
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

/// Every event in chain order, with the links: what the walk reads.
const WALK: &str = "SELECT seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash, hash \
     FROM audit_events ORDER BY seq";

/// The walk so far: fed each row in chain order, it keeps the last link that held, the roll-up
/// tally of the events walked and the hash at the checkpoint's position, until the first break.
struct Walk {
    head: ChainHead,
    verified: u64,
    broken: Option<Break>,
    tallier: Tallier,
    checkpoint_seq: Option<i64>,
    at_checkpoint: Option<[u8; 32]>,
    progress: Box<dyn FnMut(u64) + Send>,
}

impl Walk {
    /// Checks the next row against the chain so far; false once the chain is broken.
    fn step(&mut self, seq: i64, event: Fields<'_>, prev: &[u8], stored: &[u8]) -> bool {
        let expected_seq = self.head.seq + 1;
        let broken = |reason, expected: String, found: String| Break {
            seq: expected_seq,
            expected,
            found,
            reason,
        };
        if seq != expected_seq {
            let reason = if seq > expected_seq {
                "events missing from the sequence"
            } else {
                "an event out of sequence"
            };
            self.broken = Some(broken(
                reason,
                format!("#{expected_seq}"),
                format!("#{seq}"),
            ));
            return false;
        }
        if prev != self.head.hash {
            self.broken = Some(broken(
                "its previous hash does not link to the event before",
                hex::encode(self.head.hash),
                hex::encode(prev),
            ));
            return false;
        }
        let recomputed = chain::link(&self.head.hash, seq, event);
        if stored != recomputed {
            self.broken = Some(broken(
                "the stored event does not hash to its stored hash",
                hex::encode(recomputed),
                hex::encode(stored),
            ));
            return false;
        }
        self.tallier.add(event);
        self.head = ChainHead {
            seq,
            hash: recomputed,
        };
        if self.checkpoint_seq == Some(seq) {
            self.at_checkpoint = Some(recomputed);
        }
        self.verified += 1;
        if self.verified.is_multiple_of(100_000) {
            (self.progress)(self.verified);
        }
        true
    }
}

impl Store {
    /// Walks the whole chain in order, streaming, recomputing every hash; stops at the first
    /// break: a gap or an inserted row in the sequence, a previous-hash link that does not match,
    /// or a stored hash that is not the hash of the stored event (an edited field, a swap).
    /// `progress` is called every 100,000 events with the count so far.
    pub async fn verify(&self, progress: impl FnMut(u64) + Send + 'static) -> Result<Verification> {
        let checkpoint = self.latest_checkpoint().await?;
        let walk = Walk {
            head: ChainHead {
                seq: 0,
                hash: GENESIS,
            },
            verified: 0,
            broken: None,
            tallier: Tallier::default(),
            checkpoint_seq: checkpoint.as_ref().map(|c| c.seq),
            at_checkpoint: None,
            progress: Box::new(progress),
        };
        let walk = match &self.native {
            Native::Sqlite(path) => {
                let path = path.clone();
                super::joined(tokio::task::spawn_blocking(move || walk_sqlite(&path, walk)).await)?
            }
            Native::Postgres(pool) => walk_postgres(pool, walk).await?,
        };
        let Walk {
            head,
            verified,
            broken,
            tallier,
            at_checkpoint,
            ..
        } = walk;
        // The chain alone cannot show a cut-off tail or a rewrite from some point on; the newest
        // signed checkpoint can.
        let broken = broken.or_else(|| {
            checkpoint.and_then(|c| {
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
            })
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

/// The walk over a SQLite file, on a blocking thread: rusqlite lends each row's text and bytes in
/// place, where sqlx-sqlite would copy every value and hand every row across threads.
fn walk_sqlite(path: &std::path::Path, walk: Walk) -> Result<Walk> {
    Ok(walk_rows(&super::open_sqlite(path)?, walk)?)
}

fn walk_rows(conn: &rusqlite::Connection, mut walk: Walk) -> rusqlite::Result<Walk> {
    let mut statement = conn.prepare(WALK)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let event = Fields {
            id: row.get_ref(1)?.as_str()?,
            occurred_at: row.get(2)?,
            event_type: row.get_ref(3)?.as_str()?,
            actor: row.get_ref(4)?.as_str_or_null()?,
            outcome: row.get_ref(5)?.as_str_or_null()?,
            resource: row.get_ref(6)?.as_str_or_null()?,
            attributes: row.get_ref(7)?.as_str_or_null()?,
        };
        let (prev, hash) = (row.get_ref(8)?.as_blob()?, row.get_ref(9)?.as_blob()?);
        if !walk.step(row.get(0)?, event, prev, hash) {
            break;
        }
    }
    Ok(walk)
}

/// The walk over PostgreSQL through the native driver, decoding each value in place.
async fn walk_postgres(pool: &sqlx::PgPool, mut walk: Walk) -> Result<Walk> {
    use futures::TryStreamExt;
    let mut rows = sqlx::query(WALK).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let event = Fields {
            id: row.try_get(1)?,
            occurred_at: row.try_get(2)?,
            event_type: row.try_get(3)?,
            actor: row.try_get(4)?,
            outcome: row.try_get(5)?,
            resource: row.try_get(6)?,
            attributes: row.try_get(7)?,
        };
        let (prev, hash): (&[u8], &[u8]) = (row.try_get(8)?, row.try_get(9)?);
        if !walk.step(row.try_get(0)?, event, prev, hash) {
            break;
        }
    }
    Ok(walk)
}
