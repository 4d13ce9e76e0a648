//! soc2-operator: live SOC 2 evidence from an AI-agent audit trail.
//!
//! - [`crd`]: the custom resource types.
//! - [`evidence`]: the hash-chained evidence store (SQLite or PostgreSQL), ingest and the selector compiler.
//! - [`posture`]: pure evaluation from interval counts to states, and its presentation.
//! - [`manifests`]: reading resources from YAML files, as a GitOps repository holds them.
//! - [`demo`]: realistic demo evidence.

pub mod controller;
pub mod crd;
pub mod demo;
pub mod evidence;
pub mod export;
pub mod http;
pub mod manifests;
pub mod offline;
pub mod posture;

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("evidence store {url}: {source}")]
    StoreOpen { url: String, source: sqlx::Error },
    #[error("evidence store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("evidence store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("evidence store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "unsupported evidence store URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE"
    )]
    StoreUrl(String),
    #[error("{0}")]
    Key(String),
    #[error("line {line}: {reason}")]
    InvalidEvent { line: u64, reason: String },
    #[error("reading events: {0}")]
    ReadEvents(#[source] std::io::Error),
    #[error("{path}: {reason}")]
    Manifest { path: String, reason: String },
    #[error("{resource}: invalid spec:\n  {}", problems.join("\n  "))]
    InvalidSpec {
        resource: String,
        problems: Vec<String>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
