//! The evidence store: an append-only, hash-chained audit log in SQLite.
//!
//! Reconcilers and the CLI ask it for an [`Observation`] of a requirement; they never build SQL.

pub mod chain;
pub mod checkpoint;
pub mod event;
mod ingest;
pub mod query;
pub mod verify;

pub use chain::ChainHead;
pub use ingest::IngestReport;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

use crate::crd::{EventSummary, Soc2RequirementSpec};
use crate::posture::{ControlCounts, Observation, Window, timestamp};
use crate::{Error, Result};
use query::{CompiledQuery, Dialect, Param};

/// The store used when no `--evidence` is given.
pub const DEFAULT_URL: &str = "sqlite://soc2-evidence.db";
/// How many supporting events a status and a drill-down show.
pub const RECENT_EVENTS: u32 = 10;

/// Whether opening may create an empty store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// For writers (ingest): a missing database file is created.
    Create,
    /// For readers (evaluate): a missing file is an error, never an empty store that reads as Red.
    Existing,
}

/// The evidence store, opened on first use and re-opened after a failure, so that an operator
/// started before its store (or across an outage) recovers on its own.
pub struct LazyStore {
    url: String,
    mode: OpenMode,
    store: tokio::sync::Mutex<Option<Store>>,
}

impl LazyStore {
    pub fn new(url: String, mode: OpenMode) -> Self {
        LazyStore {
            url,
            mode,
            store: tokio::sync::Mutex::new(None),
        }
    }

    /// The open store, or why it cannot be opened.
    pub async fn get(&self) -> Result<Store, String> {
        let mut slot = self.store.lock().await;
        if let Some(store) = slot.as_ref() {
            return Ok(store.clone());
        }
        let store = Store::open(&self.url, self.mode)
            .await
            .map_err(|e| e.to_string())?;
        *slot = Some(store.clone());
        Ok(store)
    }

    /// Forgets the open store after a failed read, so the next use re-opens it.
    pub async fn reset(&self) {
        self.store.lock().await.take();
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (and migrates) the store at `url` (`sqlite://PATH`).
    pub async fn open(url: &str, mode: OpenMode) -> Result<Store> {
        if !url.starts_with("sqlite:") {
            return Err(Error::StoreUrl(url.into()));
        }
        let open_error = |source| Error::StoreOpen {
            url: url.into(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_error)?
            .create_if_missing(mode == OpenMode::Create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Closes every connection; the last one to close checkpoints SQLite's write-ahead log into
    /// the database file, so the file alone holds everything (a copy or rename loses nothing).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The newest link of the chain.
    pub async fn head(&self) -> Result<ChainHead> {
        ingest::head_in(&mut *self.pool.acquire().await?).await
    }

    /// What the store holds for `spec` over `window`: counts per control and interval, the
    /// newest supporting events, and the query that produced the counts.
    pub async fn observe(
        &self,
        spec: &Soc2RequirementSpec,
        window: &Window,
    ) -> Result<Observation> {
        let counting = query::interval_counts(spec, window, Dialect::Sqlite);
        let mut controls = vec![ControlCounts::default(); spec.controls.len()];
        for row in self.fetch_all(&counting).await? {
            let control: i64 = row.try_get(0)?;
            let counts = usize::try_from(control)
                .ok()
                .and_then(|i| controls.get_mut(i));
            let Some(counts) = counts else { continue };
            let bucket: i64 = row.try_get(1)?;
            let events: i64 = row.try_get(2)?;
            let last_at: i64 = row.try_get(3)?;
            if let Ok(bucket) = u32::try_from(bucket) {
                counts.per_interval.insert(bucket, events.unsigned_abs());
            }
            counts.last_at = counts.last_at.max(Some(last_at));
        }
        let recent = query::recent_events(spec, window, RECENT_EVENTS, Dialect::Sqlite);
        let recent_events = self
            .fetch_all(&recent)
            .await?
            .iter()
            .map(summary)
            .collect::<Result<_>>()?;
        Ok(Observation {
            controls,
            recent_events,
            query: counting.to_status(),
        })
    }

    /// Streams the supporting set of `spec` over `window` (see [`query::supporting_set`]) from a
    /// task of its own, a bounded channel apart: memory stays flat however large the set, and the
    /// query stops when the receiver goes away.
    pub fn supporting_set(
        &self,
        spec: &Soc2RequirementSpec,
        window: &Window,
    ) -> futures::channel::mpsc::Receiver<Result<EventSummary>> {
        use futures::{SinkExt, StreamExt};
        let compiled = query::supporting_set(spec, window, Dialect::Sqlite);
        let pool = self.pool.clone();
        let (mut tx, rx) = futures::channel::mpsc::channel(256);
        tokio::spawn(async move {
            let mut rows = bind(&compiled).fetch(&pool);
            while let Some(row) = rows.next().await {
                let item = row.map_err(Error::from).and_then(|r| summary(&r));
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        rx
    }

    async fn fetch_all(&self, compiled: &CompiledQuery) -> Result<Vec<SqliteRow>> {
        Ok(bind(compiled).fetch_all(&self.pool).await?)
    }
}

fn bind(
    compiled: &CompiledQuery,
) -> sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    let mut q = sqlx::query(AssertSqlSafe(compiled.sql.clone()));
    for param in &compiled.params {
        q = match param {
            Param::Int(v) => q.bind(*v),
            Param::Text(v) => q.bind(v.clone()),
        };
    }
    q
}

/// The stored event of a row whose columns 1 to 7 are `event_id, occurred_at, event_type, actor,
/// outcome, resource, attributes` (column 0 is `seq`), as the chain hashes it.
pub fn stored_event(row: &SqliteRow) -> Result<event::Event> {
    Ok(event::Event {
        id: row.try_get(1)?,
        occurred_at: row.try_get(2)?,
        event_type: row.try_get(3)?,
        actor: row.try_get(4)?,
        outcome: row.try_get(5)?,
        resource: row.try_get(6)?,
        attributes: row.try_get(7)?,
    })
}

/// A row of `event_id, occurred_at, event_type, actor, outcome, resource, hash`.
fn summary(row: &SqliteRow) -> Result<EventSummary> {
    Ok(EventSummary {
        id: row.try_get(0)?,
        occurred_at: timestamp(row.try_get(1)?),
        event_type: row.try_get(2)?,
        actor: row.try_get(3)?,
        outcome: row.try_get(4)?,
        resource: row.try_get(5)?,
        hash: hex::encode(row.try_get::<Vec<u8>, _>(6)?),
    })
}

fn hash_of(bytes: Vec<u8>) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|b: Vec<u8>| {
        Error::Store(sqlx::Error::Decode(
            format!("a chain hash of {} bytes", b.len()).into(),
        ))
    })
}
