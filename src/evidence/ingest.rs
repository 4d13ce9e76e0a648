//! JSON Lines ingest: all-or-nothing per run, idempotent on event id.
//!
//! The caller's task parses while a writer of the store's own driver chains and inserts: batches
//! cross a bounded channel, so parsing and writing overlap and memory stays flat.

use std::collections::HashSet;
use std::io::BufRead;

use rusqlite::OptionalExtension;
use tokio::sync::mpsc;

use super::chain::{self, ChainHead, GENESIS};
use super::event::{Event, parse_line};
use super::rollup::Tallier;
use super::{Native, Store};
use crate::{Error, Result};

/// Events per batch handed to the writer (and per INSERT on PostgreSQL).
const BATCH: usize = 5_000;

/// The newest link: `seq, hash` of the last event, if any.
pub(super) const HEAD: &str = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1";

/// The head from what [`HEAD`] returned: the newest event's `(seq, hash)`, or none at all.
pub(super) fn head_of(newest: Option<(i64, Vec<u8>)>) -> Result<ChainHead> {
    Ok(match newest {
        Some((seq, hash)) => ChainHead {
            seq,
            hash: super::hash_of(hash)?,
        },
        None => ChainHead {
            seq: 0,
            hash: GENESIS,
        },
    })
}

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

/// What the parsing side sends the writer.
enum Feed {
    Events(Vec<Event>),
    /// Everything is sent: commit. A writer whose channel closes without it rolls back.
    Commit,
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
        let (sender, receiver) = mpsc::channel(4);
        let feeding = async move {
            let mut batch = Vec::with_capacity(BATCH);
            for event in events {
                batch.push(event?);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if sender.send(Feed::Events(full)).await.is_err() {
                        return Ok(()); // the writer failed: its error says why
                    }
                }
            }
            if !batch.is_empty() {
                let _ = sender.send(Feed::Events(batch)).await;
            }
            let _ = sender.send(Feed::Commit).await;
            Ok::<_, Error>(())
        };
        let written = match &self.native {
            Native::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || append_sqlite(&path, receiver))
            }
            Native::Postgres(pool) => tokio::spawn(append_postgres(pool.clone(), receiver)),
        };
        let (fed, written) = tokio::join!(feeding, written);
        let written = super::joined(written);
        // A malformed line first: the writer saw no Commit and rolled back.
        fed?;
        Ok(written?.expect("the writer commits once everything is fed"))
    }
}

/// The SQLite writer, on a blocking thread through rusqlite: one prepared INSERT per event, which
/// skips an id already stored (or earlier in this run) itself, so no lookup precedes it.
fn append_sqlite(
    path: &std::path::Path,
    mut feed: mpsc::Receiver<Feed>,
) -> Result<Option<IngestReport>> {
    let mut conn = super::open_sqlite(path)?;
    // Writers take turns from before the head is read to the commit, so concurrent runs (other
    // processes included) extend one chain, never fork it: IMMEDIATE takes the write lock now.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let newest = tx
        .query_row(HEAD, [], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    // `report.head` is the chain's head as the run extends it.
    let mut report = IngestReport {
        accepted: 0,
        duplicates: 0,
        head: head_of(newest)?,
    };
    let mut tallier = Tallier::default();
    {
        let mut insert = tx.prepare(
            "INSERT INTO audit_events (seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (event_id) DO NOTHING",
        )?;
        loop {
            let events = match feed.blocking_recv() {
                Some(Feed::Events(events)) => events,
                Some(Feed::Commit) => break,
                None => return Ok(None),
            };
            for event in &events {
                let seq = report.head.seq + 1;
                let hash = chain::link(&report.head.hash, seq, event);
                let inserted = insert.execute(rusqlite::params![
                    seq,
                    event.id,
                    event.occurred_at,
                    event.event_type,
                    event.actor,
                    event.outcome,
                    event.resource,
                    event.attributes,
                    report.head.hash,
                    hash,
                ])?;
                if inserted == 0 {
                    report.duplicates += 1;
                    continue;
                }
                tallier.add(event);
                report.head = ChainHead { seq, hash };
                report.accepted += 1;
            }
        }
    }
    super::rollup::add_sqlite(&tx, &tallier.into_tally())?;
    tx.commit()?;
    Ok(Some(report))
}

/// The PostgreSQL writer, through the native driver: per batch, one lookup of the stored ids and
/// one INSERT of column arrays (ten parameters however many rows).
async fn append_postgres(
    pool: sqlx::PgPool,
    mut feed: mpsc::Receiver<Feed>,
) -> Result<Option<IngestReport>> {
    let mut tx = pool.begin().await?;
    // Writers take turns from the head read to the commit (see append_sqlite): a table lock that
    // conflicts only with itself and writes; readers carry on.
    sqlx::query("LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let newest = sqlx::query_as(HEAD).fetch_optional(&mut *tx).await?;
    // `report.head` is the chain's head as the run extends it.
    let mut report = IngestReport {
        accepted: 0,
        duplicates: 0,
        head: head_of(newest)?,
    };
    let mut tallier = Tallier::default();
    loop {
        let mut events = match feed.recv().await {
            Some(Feed::Events(events)) => events,
            Some(Feed::Commit) => break,
            None => return Ok(None),
        };
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let stored: HashSet<String> =
            sqlx::query_scalar("SELECT event_id FROM audit_events WHERE event_id = ANY($1)")
                .bind(ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let mut seen = HashSet::new();
        let before = events.len();
        events.retain(|e| !stored.contains(&e.id) && seen.insert(e.id.clone()));
        report.duplicates += (before - events.len()) as u64;
        if events.is_empty() {
            continue;
        }
        let mut rows = Columns::default();
        for event in &events {
            let seq = report.head.seq + 1;
            let hash = chain::link(&report.head.hash, seq, event);
            rows.push(seq, event, report.head.hash, hash);
            tallier.add(event);
            report.head = ChainHead { seq, hash };
        }
        rows.insert(&mut tx).await?;
        report.accepted += events.len() as u64;
    }
    super::rollup::add_postgres(&mut tx, &tallier.into_tally()).await?;
    tx.commit().await?;
    Ok(Some(report))
}

/// A batch of chained events, column by column, for one `INSERT … SELECT FROM UNNEST`.
#[derive(Default)]
struct Columns<'a> {
    seq: Vec<i64>,
    id: Vec<&'a str>,
    occurred_at: Vec<i64>,
    event_type: Vec<&'a str>,
    actor: Vec<Option<&'a str>>,
    outcome: Vec<Option<&'a str>>,
    resource: Vec<Option<&'a str>>,
    attributes: Vec<Option<&'a str>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, seq: i64, event: &'a Event, prev_hash: [u8; 32], hash: [u8; 32]) {
        self.seq.push(seq);
        self.id.push(&event.id);
        self.occurred_at.push(event.occurred_at);
        self.event_type.push(&event.event_type);
        self.actor.push(event.actor.as_deref());
        self.outcome.push(event.outcome.as_deref());
        self.resource.push(event.resource.as_deref());
        self.attributes.push(event.attributes.as_deref());
        self.prev_hash.push(prev_hash.to_vec());
        self.hash.push(hash.to_vec());
    }

    async fn insert(self, conn: &mut sqlx::PgConnection) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_events (seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash, hash) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::bytea[])",
        )
        .bind(self.seq)
        .bind(self.id)
        .bind(self.occurred_at)
        .bind(self.event_type)
        .bind(self.actor)
        .bind(self.outcome)
        .bind(self.resource)
        .bind(self.attributes)
        .bind(self.prev_hash)
        .bind(self.hash)
        .execute(conn)
        .await?;
        Ok(())
    }
}
