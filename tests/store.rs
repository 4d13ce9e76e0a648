//! The evidence store, on SQLite and on PostgreSQL alike: ingest, the chain, concurrent writers,
//! and the evaluation query against the pure rule. Every case runs on both backends.

mod common;

use std::collections::BTreeMap;

use jiff::Timestamp;
use soc2_operator::Error;
use soc2_operator::crd::Soc2RequirementSpec;
use soc2_operator::evidence::chain::{self, GENESIS};
use soc2_operator::evidence::{Backend, OpenMode, Store, stored_event};
use soc2_operator::posture::{ControlCounts, Window, interval_count, interval_of, timestamp};
use sqlx::{AnyPool, Row};

const DAY: i64 = 86_400_000_000;

/// Runs each named case as `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test]
            async fn sqlite() {
                super::$case(super::Fixture::new(super::Backend::Sqlite).await).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$case(super::Fixture::new(super::Backend::Postgres).await).await
            }
        }
    )*};
}

on_both_backends!(
    ingest_is_idempotent_by_id,
    a_bad_line_stores_nothing_of_the_run_even_after_full_batches,
    the_chain_links_every_stored_event,
    the_log_is_append_only,
    verify_finds_an_edited_event_and_a_gap,
    concurrent_writers_extend_one_chain,
    the_query_agrees_with_the_pure_interval_rule,
    the_rollup_fast_path_equals_the_raw_count,
);

/// An empty store of its own: a SQLite file in a temporary directory, or a fresh database on the
/// test PostgreSQL.
struct Fixture {
    url: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(backend: Backend) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("evidence.db").display()),
            Backend::Postgres => common::postgres_database().await,
        };
        Fixture { url, _dir: dir }
    }

    async fn store(&self) -> Store {
        Store::open(&self.url, OpenMode::Create).await.unwrap()
    }

    /// A plain connection pool beside the store, for looking behind its back.
    async fn pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPool::connect(&self.url).await.unwrap()
    }

    async fn count(&self) -> i64 {
        sqlx::query("SELECT COUNT(*) FROM audit_events")
            .fetch_one(&self.pool().await)
            .await
            .unwrap()
            .get(0)
    }
}

fn line(id: &str, t: i64, event_type: &str, outcome: &str) -> String {
    format!(
        r#"{{"id":"{id}","occurredAt":"{}","type":"{event_type}","outcome":"{outcome}","attributes":{{"n":1}}}}"#,
        timestamp(t)
    )
}

async fn ingest_is_idempotent_by_id(f: Fixture) {
    let s = f.store().await;
    let input: String = (0..5)
        .map(|i| line(&format!("e{i}"), i * DAY, "t", "ok") + "\n")
        .collect();
    let first = s.ingest(input.as_bytes()).await.unwrap();
    assert_eq!(
        (first.accepted, first.duplicates, first.head.seq),
        (5, 0, 5)
    );
    let again = format!(
        "{input}{}\n\n{}\n",
        line("e9", 9, "t", "ok"),
        line("e9", 9, "t", "ok")
    );
    let second = s.ingest(again.as_bytes()).await.unwrap();
    assert_eq!(
        (second.accepted, second.duplicates, second.head.seq),
        (1, 6, 6)
    );
    assert_eq!(f.count().await, 6);
    // A repeat one insert batch (5,000 events) after the first sight is a duplicate too.
    let third: String = (0..5_001)
        .map(|i| line(&format!("x{}", i % 5_000), i, "t", "ok") + "\n")
        .collect();
    let third = s.ingest(third.as_bytes()).await.unwrap();
    assert_eq!(
        (third.accepted, third.duplicates, third.head.seq),
        (5_000, 1, 5_006)
    );
}

async fn a_bad_line_stores_nothing_of_the_run_even_after_full_batches(f: Fixture) {
    let s = f.store().await;
    s.ingest(line("before", 1, "t", "ok").as_bytes())
        .await
        .unwrap();
    let head = s.head().await.unwrap();
    // 12,000 good lines (more than two insert batches), then one without a type.
    let mut input: String = (0..12_000)
        .map(|i| line(&format!("g{i}"), i, "t", "ok") + "\n")
        .collect();
    input.push_str(r#"{"id":"bad","occurredAt":"2026-12-01T00:00:00Z"}"#);
    input.push('\n');
    let err = s.ingest(input.as_bytes()).await.unwrap_err();
    match &err {
        Error::InvalidEvent { line, reason } => {
            assert_eq!(*line, 12_001);
            assert!(reason.contains("missing field `type`"), "{reason}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(
        err.to_string(),
        "line 12001: missing field `type` (column 48)"
    );
    assert_eq!(f.count().await, 1);
    assert_eq!(s.head().await.unwrap(), head);
}

async fn the_chain_links_every_stored_event(f: Fixture) {
    let s = f.store().await;
    let input: String = (0..3_000)
        .map(|i| line(&format!("e{i}"), i * 1000, "t", "ok") + "\n")
        .collect();
    let report = s.ingest(input.as_bytes()).await.unwrap();
    let pool = f.pool().await;
    let rows = sqlx::query(
        "SELECT seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash, hash FROM audit_events ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut prev = GENESIS;
    for (i, row) in rows.iter().enumerate() {
        let seq: i64 = row.get(0);
        assert_eq!(seq, i as i64 + 1);
        let event = stored_event(row).unwrap();
        assert_eq!(event.attributes.as_deref(), Some(r#"{"n":1}"#));
        let stored_prev: Vec<u8> = row.get(8);
        assert_eq!(stored_prev, prev);
        let hash = chain::link(&prev, seq, &event);
        let stored: Vec<u8> = row.get(9);
        assert_eq!(stored, hash, "seq {seq}");
        prev = hash;
    }
    assert_eq!(report.head.hash, prev);
}

async fn the_log_is_append_only(f: Fixture) {
    let s = f.store().await;
    s.ingest(line("e1", 1, "t", "ok").as_bytes()).await.unwrap();
    let pool = f.pool().await;
    let update = sqlx::query("UPDATE audit_events SET outcome = 'x'")
        .execute(&pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit_events").execute(&pool).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

/// Each store's own walk (rusqlite, PostgreSQL's native driver) finds what someone with write
/// access to the database changed behind the store's back.
async fn verify_finds_an_edited_event_and_a_gap(f: Fixture) {
    let s = f.store().await;
    let input: String = (0..50)
        .map(|i| line(&format!("e{i}"), i * 1000, "t", "ok") + "\n")
        .collect();
    s.ingest(input.as_bytes()).await.unwrap();
    let v = s.verify(|_| {}).await.unwrap();
    assert!(v.intact(), "{:?}", v.problem());
    assert_eq!(v.verified, 50);
    let pool = f.pool().await;
    let lift_append_only: &[&'static str] = match s.backend() {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_events_append_only_update",
            "DROP TRIGGER audit_events_append_only_delete",
        ],
        Backend::Postgres => &["ALTER TABLE audit_events DISABLE TRIGGER USER"],
    };
    for &statement in lift_append_only {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE seq = 17")
        .execute(&pool)
        .await
        .unwrap();
    let broken = s.verify(|_| {}).await.unwrap().broken.unwrap();
    assert_eq!(
        (broken.seq, broken.reason),
        (17, "the stored event does not hash to its stored hash")
    );
    sqlx::query("UPDATE audit_events SET actor = NULL WHERE seq = 17")
        .execute(&pool)
        .await
        .unwrap();
    assert!(s.verify(|_| {}).await.unwrap().intact(), "restored");
    sqlx::query("DELETE FROM audit_events WHERE seq = 30")
        .execute(&pool)
        .await
        .unwrap();
    let v = s.verify(|_| {}).await.unwrap();
    let broken = v.broken.unwrap();
    assert_eq!(
        (v.verified, broken.seq, broken.reason),
        (29, 30, "events missing from the sequence")
    );
}

#[tokio::test]
async fn a_missing_store_is_an_error_for_readers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("evidence.db").display());
    let err = Store::open(&url, OpenMode::Existing)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("evidence.db"), "{err}");
    assert!(
        !dir.path().join("evidence.db").exists(),
        "a reader must not create an empty store"
    );
    let err = Store::open("sqlite:///nonexistent-dir/x.db", OpenMode::Create)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent-dir/x.db"), "{err}");
    let err = Store::open("mysql://x", OpenMode::Create)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unsupported evidence store URL"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_an_error_naming_it() {
    let url = "postgres://nobody@127.0.0.1:1/evidence";
    let err = Store::open(url, OpenMode::Existing).await.unwrap_err();
    assert!(err.to_string().contains(url), "{err}");
}

/// Several writers, each with a store (a pool) of its own as separate processes would have,
/// ingest at once: one chain comes out, every event on it once, no fork and no gap.
async fn concurrent_writers_extend_one_chain(f: Fixture) {
    const WRITERS: usize = 4;
    const RUNS: usize = 5;
    const PER_RUN: usize = 300;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = f.store().await;
        tasks.push(tokio::spawn(async move {
            for r in 0..RUNS {
                // Every run repeats an id of the writer before it: idempotence under contention.
                let input: String = (0..PER_RUN)
                    .map(|i| line(&format!("w{w}-r{r}-e{i}"), i as i64, "t", "ok") + "\n")
                    .chain([line(&format!("w{}-r0-e0", (w + 1) % WRITERS), 0, "t", "ok")])
                    .collect();
                store.ingest(input.as_bytes()).await.unwrap();
            }
            store.close().await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = (WRITERS * RUNS * PER_RUN) as i64;
    assert_eq!(f.count().await, total);
    let store = f.store().await;
    let v = store.verify(|_| {}).await.unwrap();
    assert_eq!(v.broken, None);
    assert_eq!((v.verified, v.head.seq), (total as u64, total));
    assert_eq!(v.head, store.head().await.unwrap());
}

fn spec(window: &str, cadences: &[&str]) -> Soc2RequirementSpec {
    let mut yaml = format!("id: CC7.3\ntitle: t\nwindow: {window}\ncontrols:\n");
    for (i, cadence) in cadences.iter().enumerate() {
        yaml.push_str(&format!(
            "- {{name: c{i}, cadence: {cadence}, evidence: {{eventTypes: [t{i}, shared], outcomes: [ok]}}}}\n"
        ));
    }
    serde_saphyr::from_str(&yaml).unwrap()
}

/// The straightforward answer: every event's interval by the pure rule.
fn expected(
    spec: &Soc2RequirementSpec,
    window: &Window,
    events: &[(i64, String, String)],
) -> Vec<ControlCounts> {
    spec.controls
        .iter()
        .map(|control| {
            let cadence = spec.cadence_of(control).micros();
            let mut counts = ControlCounts {
                per_interval: BTreeMap::new(),
                last_at: None,
            };
            for (t, event_type, outcome) in events {
                let selected = control.evidence.event_types.contains(event_type)
                    && control.evidence.outcomes.contains(outcome);
                if let (true, Some(i)) = (selected, interval_of(window, cadence, *t)) {
                    assert!(i < interval_count(window, cadence));
                    *counts.per_interval.entry(i).or_default() += 1;
                    counts.last_at = counts.last_at.max(Some(*t));
                }
            }
            counts
        })
        .collect()
}

async fn the_query_agrees_with_the_pure_interval_rule(f: Fixture) {
    let s = f.store().await;
    let now: i64 = "2026-12-01T00:00:00Z"
        .parse::<Timestamp>()
        .unwrap()
        .as_microsecond();
    let mut rng = fastrand::Rng::with_seed(42);
    // Edges first (interval starts and ends, the window's start, now, the future), then noise.
    let mut times: Vec<i64> = Vec::new();
    for k in 0..=31 {
        times.extend([now - k * DAY, now - k * DAY - 1, now - k * DAY + 1]);
    }
    times.extend([
        now - 7 * DAY,
        now - 28 * DAY,
        now - 30 * DAY,
        now - 30 * DAY - 1,
        now + DAY,
    ]);
    times.extend((0..3_000).map(|_| now - rng.i64(-DAY..35 * DAY)));
    let types = ["t0", "t1", "t2", "shared", "other"];
    let outcomes = ["ok", "ok", "fail"];
    let events: Vec<(i64, String, String)> = times
        .iter()
        .map(|t| {
            (
                *t,
                types[rng.usize(0..types.len())].to_string(),
                outcomes[rng.usize(0..3)].to_string(),
            )
        })
        .collect();
    let input: String = events
        .iter()
        .enumerate()
        .map(|(i, (t, ty, out))| line(&format!("e{i}"), *t, ty, out) + "\n")
        .collect();
    s.ingest(input.as_bytes()).await.unwrap();

    for (window, cadences) in [
        ("30d", vec!["1d", "7d", "30d"]),
        ("30d", vec!["12h", "4d"]),
        ("10d", vec!["3d"]),
        ("1w", vec!["1w", "5h"]),
    ] {
        let spec = spec(window, &cadences);
        for at in [now, now - DAY / 3, now - 7 * DAY - 1] {
            let w = Window::ending_at(timestamp(at), &spec.window);
            let observed = s.observe(&spec, &w).await.unwrap();
            assert_eq!(
                observed.controls,
                expected(&spec, &w, &events),
                "window {window} cadences {cadences:?} at {at}"
            );
            // Recent events: newest first, at most 10, each selected and before `at`.
            assert!(observed.recent_events.len() == 10);
            assert!(
                observed
                    .recent_events
                    .windows(2)
                    .all(|p| p[0].occurred_at >= p[1].occurred_at)
            );
            let newest = events
                .iter()
                .filter(|(t, _, out)| *t < at && *t >= w.start && out == "ok")
                .filter(|(_, ty, _)| {
                    spec.controls
                        .iter()
                        .any(|c| c.evidence.event_types.contains(ty))
                })
                .map(|(t, ..)| *t)
                .max();
            assert_eq!(
                observed.recent_events[0].occurred_at.as_microsecond(),
                newest.unwrap()
            );
            assert!(
                observed
                    .recent_events
                    .iter()
                    .all(|e| e.outcome.as_deref() == Some("ok") && e.hash.len() == 64)
            );
        }
    }
}

/// Property: on random events (some without an outcome, ingested over several runs so the hourly
/// roll-up is built up by upserts), random specs (cadences that read the roll-up and cadences
/// that read raw events, with and without an outcome filter) and random evaluation instants off
/// any hour, the store's counts equal the straightforward count of raw events by the pure rule.
async fn the_rollup_fast_path_equals_the_raw_count(f: Fixture) {
    let s = f.store().await;
    let mut rng = fastrand::Rng::with_seed(8);
    let now: i64 = "2026-12-01T00:00:00Z"
        .parse::<Timestamp>()
        .unwrap()
        .as_microsecond();
    let types = ["a", "b", "c"];
    let outcomes = [Some("ok"), Some("ok"), Some("fail"), None];
    let mut events: Vec<(i64, String, Option<String>)> = Vec::new();
    for run in 0..4 {
        let batch: Vec<(i64, String, Option<String>)> = (0..1_500)
            .map(|_| {
                (
                    now - rng.i64(-DAY..100 * DAY),
                    types[rng.usize(..types.len())].to_string(),
                    outcomes[rng.usize(..outcomes.len())].map(String::from),
                )
            })
            .collect();
        let input: String = batch
            .iter()
            .enumerate()
            .map(|(i, (t, ty, out))| {
                let outcome = out
                    .as_ref()
                    .map(|o| format!(r#","outcome":"{o}""#))
                    .unwrap_or_default();
                format!(
                    r#"{{"id":"r{run}-{i}","occurredAt":"{}","type":"{ty}"{outcome}}}"#,
                    timestamp(*t)
                ) + "\n"
            })
            .collect();
        s.ingest(input.as_bytes()).await.unwrap();
        events.extend(batch);
    }
    let cadences = [
        "6h", "8h", "12h", "1d", "2d", "3d", "7d", "30d", "1h", "5h", "90m",
    ];
    let windows = ["1w", "10d", "30d", "90d"];
    for case in 0..40 {
        let window = windows[rng.usize(..windows.len())];
        let mut yaml = format!("id: CC7.3\ntitle: t\nwindow: {window}\ncontrols:\n");
        for c in 0..rng.usize(1..4) {
            let cadence = cadences[rng.usize(..cadences.len())];
            let filter = if rng.bool() { ", outcomes: [ok]" } else { "" };
            yaml.push_str(&format!(
                "- {{name: c{c}, cadence: {cadence}, evidence: {{eventTypes: [{}]{filter}}}}}\n",
                types[c % types.len()]
            ));
        }
        let spec: Soc2RequirementSpec = serde_saphyr::from_str(&yaml).unwrap();
        if spec.validate().is_err() {
            continue; // a cadence longer than the window
        }
        let at = now - rng.i64(0..10 * DAY);
        let w = Window::ending_at(timestamp(at), &spec.window);
        let observed = s.observe(&spec, &w).await.unwrap();
        let want: Vec<ControlCounts> = spec
            .controls
            .iter()
            .map(|control| {
                let cadence = spec.cadence_of(control).micros();
                let mut counts = ControlCounts::default();
                for (t, ty, out) in &events {
                    let selected = control.evidence.event_types.contains(ty)
                        && (control.evidence.outcomes.is_empty()
                            || out
                                .as_ref()
                                .is_some_and(|o| control.evidence.outcomes.contains(o)));
                    if let (true, Some(i)) = (selected, interval_of(&w, cadence, *t)) {
                        *counts.per_interval.entry(i).or_default() += 1;
                        counts.last_at = counts.last_at.max(Some(*t));
                    }
                }
                counts
            })
            .collect();
        assert_eq!(observed.controls, want, "case {case}: {yaml} at {at}");
    }
}
