//! The evidence store: an append-only, hash-chained audit log in SQLite (embedded, the default)
//! or PostgreSQL, behind one set of queries: placeholders are `$N`, which both accept.
//!
//! Reconcilers and the CLI ask it for an [`Observation`] of a requirement; they never build SQL.

pub mod chain;
pub mod checkpoint;
pub mod event;
pub mod history;
mod ingest;
pub mod integrity;
pub mod query;
pub mod rollup;
pub mod verify;

pub use chain::ChainHead;
pub use ingest::IngestReport;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, ConnectOptions, Executor, Row};

use crate::crd::{EventSummary, Soc2RequirementSpec};
use crate::posture::{ControlCounts, Observation, Window, timestamp};
use crate::{Error, Result};
use query::{CompiledQuery, Param};

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

/// Which database holds the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a store URL names: `sqlite://PATH` or `postgres://…` (`postgresql://…`).
    pub fn of(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::StoreUrl(url.into()))
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    native: Native,
}

/// What the bulk paths (ingest, the chain walk) use instead of the `Any` pool, whose per-value
/// copies and per-row thread hand-offs cost more than the work itself at a million rows.
#[derive(Clone, Debug)]
enum Native {
    /// The database file: each run opens it with rusqlite on a blocking thread.
    Sqlite(std::path::PathBuf),
    Postgres(sqlx::PgPool),
}

/// A rusqlite connection to a store's (migrated) file, waiting for the writer as sqlx does.
fn open_sqlite(path: &std::path::Path) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// What a store task returned, or its panic carried on.
fn joined<T>(outcome: std::result::Result<T, tokio::task::JoinError>) -> T {
    outcome.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

impl Store {
    /// Opens (and migrates) the store at `url`: `sqlite://PATH` or a PostgreSQL URL.
    ///
    /// A PostgreSQL database must exist; `mode` only decides whether a missing SQLite file may be
    /// created.
    pub async fn open(url: &str, mode: OpenMode) -> Result<Store> {
        let backend = Backend::of(url)?;
        sqlx::any::install_default_drivers();
        let open_error = |source| Error::StoreOpen {
            url: url.into(),
            source,
        };
        let native = match backend {
            Backend::Sqlite => Native::Sqlite(
                sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .map_err(open_error)?
                    .get_filename()
                    .to_owned(),
            ),
            Backend::Postgres => Native::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .connect_lazy_with(
                        sqlx::postgres::PgConnectOptions::from_str(url)
                            .map_err(open_error)?
                            .log_statements(log::LevelFilter::Off)
                            .log_slow_statements(log::LevelFilter::Off, std::time::Duration::ZERO),
                    ),
            ),
        };
        let (connect_url, options) = match backend {
            Backend::Sqlite => {
                let access = match mode {
                    OpenMode::Create => "rwc",
                    OpenMode::Existing => "rw",
                };
                let separator = if url.contains('?') { '&' } else { '?' };
                // No after_connect: every statement reads the file, and a failing after_connect
                // makes sqlx retry until its acquire timeout instead of saying what is wrong.
                // sqlx's defaults stand: a 5 s busy timeout, synchronous FULL.
                let options = AnyPoolOptions::new().max_connections(4);
                (format!("{url}{separator}mode={access}"), options)
            }
            Backend::Postgres => (url.to_owned(), AnyPoolOptions::new().max_connections(8)),
        };
        // sqlx would log every statement, and a slow one in full: an ingest batch is 20,000
        // placeholders long. Our own logs say what ran.
        let connect_options = AnyConnectOptions::from_str(&connect_url)
            .map_err(open_error)?
            .log_statements(log::LevelFilter::Off)
            .log_slow_statements(log::LevelFilter::Off, std::time::Duration::ZERO);
        let pool = options
            .connect_with(connect_options)
            .await
            .map_err(open_error)?;
        match backend {
            Backend::Sqlite => {
                // WAL (readers never wait for the writer) is a property of the file: set once.
                pool.execute("PRAGMA journal_mode = WAL")
                    .await
                    .map_err(open_error)?;
                sqlx::migrate!("migrations/sqlite").run(&pool).await?
            }
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await?,
        }
        Ok(Store { pool, native })
    }

    pub fn backend(&self) -> Backend {
        match self.native {
            Native::Sqlite(_) => Backend::Sqlite,
            Native::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection; the last one to close checkpoints SQLite's write-ahead log into
    /// the database file, so the file alone holds everything (a copy or rename loses nothing).
    pub async fn close(&self) {
        if let Native::Postgres(pool) = &self.native {
            pool.close().await;
        }
        self.pool.close().await;
    }

    /// The newest link of the chain.
    pub async fn head(&self) -> Result<ChainHead> {
        let newest = sqlx::query_as(ingest::HEAD)
            .fetch_optional(&self.pool)
            .await?;
        ingest::head_of(newest)
    }

    /// What the store holds for `spec` over `window`: counts per control and interval, the
    /// newest supporting events, and the query that produced the counts.
    pub async fn observe(
        &self,
        spec: &Soc2RequirementSpec,
        window: &Window,
    ) -> Result<Observation> {
        let counting = query::interval_counts_fast(spec, window);
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
        let recent = query::recent_events(spec, window, RECENT_EVENTS);
        let recent_events = self
            .fetch_all(&recent)
            .await?
            .iter()
            .map(summary)
            .collect::<Result<_>>()?;
        let selects_verifications = spec.controls.iter().any(|c| {
            c.evidence
                .event_types
                .iter()
                .any(|t| t == integrity::CHAIN_VERIFIED)
        });
        let chain_broken = if selects_verifications {
            self.chain_broken(window.end).await?
        } else {
            None
        };
        Ok(Observation {
            controls,
            recent_events,
            // The status shows the definition over raw events: the same rows, runnable by anyone.
            query: query::interval_counts(spec, window).to_status(),
            chain_broken,
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
        let compiled = query::supporting_set(spec, window);
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

    async fn fetch_all(&self, compiled: &CompiledQuery) -> Result<Vec<AnyRow>> {
        Ok(bind(compiled).fetch_all(&self.pool).await?)
    }
}

fn bind(
    compiled: &CompiledQuery,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    let mut q = sqlx::query(AssertSqlSafe(compiled.sql.clone()));
    for param in &compiled.params {
        q = match param {
            Param::Int(v) => q.bind(*v),
            Param::Text(v) => q.bind(v.clone()),
        };
    }
    q
}

/// A stored event with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainedEvent {
    pub seq: i64,
    pub event: event::Event,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl Store {
    /// The stored events with these ids (unknown ids are left out), in chain order.
    pub async fn events_by_id(&self, ids: &[String]) -> Result<Vec<ChainedEvent>> {
        let ids: std::collections::BTreeSet<&String> = ids.iter().collect();
        let ids: Vec<&String> = ids.into_iter().collect();
        let mut found = Vec::with_capacity(ids.len());
        // Chunks stay far below either database's bound-parameter limit.
        for chunk in ids.chunks(1_000) {
            let sql = format!(
                "SELECT seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash, hash \
                 FROM audit_events WHERE event_id IN ({})",
                query::placeholders(self.backend(), 1, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                found.push(ChainedEvent {
                    seq: row.try_get(0)?,
                    event: stored_event(&row)?,
                    prev_hash: hash_of(row.try_get(8)?)?,
                    hash: hash_of(row.try_get(9)?)?,
                });
            }
        }
        found.sort_by_key(|e| e.seq);
        Ok(found)
    }
}

/// The stored event of a row whose columns 1 to 7 are `event_id, occurred_at, event_type, actor,
/// outcome, resource, attributes` (column 0 is `seq`), as the chain hashes it.
pub fn stored_event(row: &AnyRow) -> Result<event::Event> {
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
fn summary(row: &AnyRow) -> Result<EventSummary> {
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
