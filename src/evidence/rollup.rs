//! The hourly roll-up of audit events (migrations `0004_audit_rollup`): per event type, outcome
//! and hour, how many events and the latest of them. Kept in the ingest transaction; read by the
//! evaluation query for whole hours.

use std::collections::BTreeMap;

use sqlx::AssertSqlSafe;

use super::chain::Fields;
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

    pub fn add<'a>(&mut self, event: impl Into<Fields<'a>>) {
        let event = event.into();
        let key = (
            self.id(event.event_type),
            self.id(event.outcome.unwrap_or(NO_OUTCOME)),
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

/// Adds each row of a tally to the stored one.
const UPSERT: &str = "ON CONFLICT (event_type, outcome, bucket) DO UPDATE SET \
     events = audit_rollup.events + excluded.events, \
     last_at = CASE WHEN excluded.last_at > audit_rollup.last_at \
       THEN excluded.last_at ELSE audit_rollup.last_at END";

/// Adds a tally to the roll-up table inside the caller's SQLite transaction.
pub fn add_sqlite(tx: &rusqlite::Transaction<'_>, tally: &Tally) -> Result<()> {
    let mut upsert = tx.prepare(&format!(
        "INSERT INTO audit_rollup (event_type, outcome, bucket, events, last_at) VALUES (?1, ?2, ?3, ?4, ?5) {UPSERT}"
    ))?;
    for ((event_type, outcome, bucket), (events, last_at)) in tally {
        upsert.execute(rusqlite::params![
            event_type, outcome, bucket, events, last_at
        ])?;
    }
    Ok(())
}

/// Adds a tally to the roll-up table inside the caller's PostgreSQL transaction, in one statement.
pub async fn add_postgres(conn: &mut sqlx::PgConnection, tally: &Tally) -> Result<()> {
    let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((event_type, outcome, bucket), (events, last_at)) in tally {
        columns.0.push(event_type.as_str());
        columns.1.push(outcome.as_str());
        columns.2.push(*bucket);
        columns.3.push(*events);
        columns.4.push(*last_at);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO audit_rollup (event_type, outcome, bucket, events, last_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) {UPSERT}"
    )))
    .bind(columns.0)
    .bind(columns.1)
    .bind(columns.2)
    .bind(columns.3)
    .bind(columns.4)
    .execute(conn)
    .await?;
    Ok(())
}
