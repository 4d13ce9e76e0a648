//! JSON Lines ingest: all-or-nothing per run, idempotent on event id, batched inserts.

use std::collections::HashSet;
use std::io::BufRead;

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::chain::{self, ChainHead};
use super::event::{Event, parse_line};
use super::query::placeholders;
use super::{Backend, Store, hash_of};
use crate::{Error, Result};

/// Rows per INSERT: 10 parameters each keeps a statement under SQLite's 32,766 bound parameters
/// (PostgreSQL allows 65,535).
const BATCH: usize = 2_000;
const COLUMNS: usize = 10;

/// What one ingest run did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    /// Events appended to the chain.
    pub accepted: u64,
    /// Events skipped because their id was already stored (or repeated in this run).
    pub duplicates: u64,
    pub head: ChainHead,
}

impl Store {
    /// Appends the events of a JSON Lines stream (blank lines are skipped).
    ///
    /// One transaction for the whole run: a malformed line fails it with the line number and the
    /// reason, and nothing of the run is stored. An id already stored, or seen earlier in the run,
    /// is skipped and counted; the first stored version stays.
    pub async fn ingest(&self, input: impl BufRead) -> Result<IngestReport> {
        let events = input.lines().enumerate().filter_map(|(index, line)| {
            let line_no = index as u64 + 1;
            match line {
                Err(e) => Some(Err(Error::ReadEvents(e))),
                Ok(line) if line.trim().is_empty() => None,
                Ok(line) => Some(parse_line(&line).map_err(|reason| Error::InvalidEvent {
                    line: line_no,
                    reason,
                })),
            }
        });
        self.append_all(events).await
    }

    /// Appends events the operator itself observed (integrity checks), idempotent on id.
    pub async fn record(&self, event: Event) -> Result<IngestReport> {
        self.append_all(std::iter::once(Ok(event))).await
    }

    /// Chains and stores `events` in one transaction; the first error rolls all of them back.
    async fn append_all(
        &self,
        events: impl Iterator<Item = Result<Event>>,
    ) -> Result<IngestReport> {
        // Writers take turns from before the head is read to the commit, so concurrent runs
        // (other processes included) extend one chain, never fork it. SQLite: IMMEDIATE takes
        // the database's write lock now. PostgreSQL: a table lock that conflicts only with
        // itself and writes; readers carry on.
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        let mut head = head_in(&mut tx).await?;
        let mut seen = HashSet::new();
        let mut report = IngestReport {
            accepted: 0,
            duplicates: 0,
            head: head.clone(),
        };
        let mut batch = Vec::with_capacity(BATCH);
        for event in events {
            let event = event?;
            if !seen.insert(event.id.clone()) {
                report.duplicates += 1;
                continue;
            }
            batch.push(event);
            if batch.len() == BATCH {
                append(self.backend, &mut tx, &mut head, &mut batch, &mut report).await?;
            }
        }
        append(self.backend, &mut tx, &mut head, &mut batch, &mut report).await?;
        tx.commit().await?;
        report.head = head;
        Ok(report)
    }
}

pub(super) async fn head_in(conn: &mut AnyConnection) -> Result<ChainHead> {
    let row = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(row) => ChainHead {
            seq: row.try_get(0)?,
            hash: hash_of(row.try_get(1)?)?,
        },
        None => ChainHead {
            seq: 0,
            hash: chain::GENESIS,
        },
    })
}

/// Drops already-stored ids from `batch`, chains the rest after `head` and inserts them.
async fn append(
    backend: Backend,
    conn: &mut AnyConnection,
    head: &mut ChainHead,
    batch: &mut Vec<Event>,
    report: &mut IngestReport,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let lookup = format!(
        "SELECT event_id FROM audit_events WHERE event_id IN ({})",
        placeholders(backend, 1, batch.len())
    );
    let mut lookup = sqlx::query(AssertSqlSafe(lookup));
    for event in batch.iter() {
        lookup = lookup.bind(event.id.as_str());
    }
    let stored: HashSet<String> = lookup
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let before = batch.len();
    batch.retain(|e| !stored.contains(&e.id));
    report.duplicates += (before - batch.len()) as u64;
    if batch.is_empty() {
        return Ok(());
    }

    let mut rows = Vec::with_capacity(batch.len());
    for event in batch.drain(..) {
        let seq = head.seq + 1;
        let hash = chain::link(&head.hash, seq, &event);
        rows.push((seq, head.hash, hash, event));
        *head = ChainHead { seq, hash };
    }
    let values: Vec<String> = (0..rows.len())
        .map(|i| format!("({})", placeholders(backend, i * COLUMNS + 1, COLUMNS)))
        .collect();
    let insert = format!(
        "INSERT INTO audit_events (seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash, hash) VALUES {}",
        values.join(", ")
    );
    let mut insert = sqlx::query(AssertSqlSafe(insert));
    for (seq, prev, hash, e) in &rows {
        insert = insert
            .bind(*seq)
            .bind(e.id.as_str())
            .bind(e.occurred_at)
            .bind(e.event_type.as_str())
            .bind(e.actor.as_deref())
            .bind(e.outcome.as_deref())
            .bind(e.resource.as_deref())
            .bind(e.attributes.as_deref())
            .bind(prev.as_slice())
            .bind(hash.as_slice());
    }
    insert.execute(&mut *conn).await?;
    let mut tallier = super::rollup::Tallier::default();
    for (.., event) in &rows {
        tallier.add(event);
    }
    super::rollup::add(backend, conn, &tallier.into_tally()).await?;
    report.accepted += rows.len() as u64;
    Ok(())
}
