//! The hourly roll-up of audit events (migrations `0004_audit_rollup`): per event type, outcome
//! and hour, how many events and the latest of them. Kept in the ingest transaction; read by the
//! evaluation query for whole hours.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, AssertSqlSafe};

use super::Backend;
use super::event::Event;
use super::query::placeholders;
use crate::Result;

/// One hour in microseconds: the roll-up's bucket.
pub const HOUR: i64 = 3_600_000_000;
/// The outcome stored for events without one: never a real outcome in a selector's list.
pub const NO_OUTCOME: &str = "\u{1}";

/// The bucket (hour since the epoch, rounded down) of an instant.
pub fn bucket_of(t: i64) -> i64 {
    t.div_euclid(HOUR)
}

/// Counts and latest time per (type, outcome, bucket) of some events.
pub type Tally = BTreeMap<(String, String, i64), (i64, i64)>;

/// Tallies events without allocating per event (types and outcomes are few and repeat): what
/// `verify` runs over every event of the chain.
#[derive(Default)]
pub struct Tallier {
    names: std::collections::HashMap<String, u32>,
    counts: std::collections::HashMap<(u32, u32, i64), (i64, i64)>,
}

impl Tallier {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.names.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.insert(name.to_owned(), id);
        id
    }

    pub fn add(&mut self, event: &Event) {
        let key = (
            self.id(&event.event_type),
            self.id(event.outcome.as_deref().unwrap_or(NO_OUTCOME)),
            bucket_of(event.occurred_at),
        );
        let entry = self.counts.entry(key).or_insert((0, i64::MIN));
        entry.0 += 1;
        entry.1 = entry.1.max(event.occurred_at);
    }

    pub fn into_tally(self) -> Tally {
        let mut names = vec![String::new(); self.names.len()];
        for (name, id) in self.names {
            names[id as usize] = name;
        }
        self.counts
            .into_iter()
            .map(|((t, o, b), v)| ((names[t as usize].clone(), names[o as usize].clone(), b), v))
            .collect()
    }
}

/// Adds a tally to the roll-up table (inside the caller's transaction).
pub async fn add(backend: Backend, conn: &mut AnyConnection, tally: &Tally) -> Result<()> {
    let rows: Vec<_> = tally.iter().collect();
    for chunk in rows.chunks(2_000) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(backend, i * 5 + 1, 5)))
            .collect();
        let sql = format!(
            "INSERT INTO audit_rollup (event_type, outcome, bucket, events, last_at) VALUES {} \
             ON CONFLICT (event_type, outcome, bucket) DO UPDATE SET \
             events = audit_rollup.events + excluded.events, \
             last_at = CASE WHEN excluded.last_at > audit_rollup.last_at \
               THEN excluded.last_at ELSE audit_rollup.last_at END",
            values.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for ((event_type, outcome, bucket), (events, last_at)) in chunk {
            query = query
                .bind(event_type.as_str())
                .bind(outcome.as_str())
                .bind(*bucket)
                .bind(*events)
                .bind(*last_at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
