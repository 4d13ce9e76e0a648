//! Tamper-evidence: many random tamperings of each of the five kinds (edited field, deleted,
//! swapped, inserted event, truncated tail: the last against a signed checkpoint), each detected
//! at the right place.

use soc2_operator::evidence::chain;
use soc2_operator::evidence::event::Event;
use soc2_operator::evidence::{OpenMode, Store, stored_event};
use sqlx::{AnyPool, Row};

const EVENTS: i64 = 300;
const TRIALS: usize = 25;

async fn base(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("base.db");
    let store = Store::open(&format!("sqlite://{}", path.display()), OpenMode::Create)
        .await
        .unwrap();
    let lines: String = (0..EVENTS)
        .map(|i| {
            format!(
                "{{\"id\":\"e{i}\",\"occurredAt\":\"2026-12-01T00:{:02}:{:02}Z\",\"type\":\"t{}\",\"actor\":\"a{i}\",\"outcome\":\"ok\",\"attributes\":{{\"n\":{i}}}}}\n",
                i / 60,
                i % 60,
                i % 3
            )
        })
        .collect();
    store.ingest(lines.as_bytes()).await.unwrap();
    store.close().await;
    path
}

/// A copy of the base store with the append-only triggers dropped, as an attacker with file
/// access would.
async fn copy(base: &std::path::Path, dir: &std::path::Path, n: usize) -> (String, AnyPool) {
    let path = dir.join(format!("t{n}.db"));
    std::fs::copy(base, &path).unwrap();
    let url = format!("sqlite://{}", path.display());
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&url).await.unwrap();
    sqlx::query("DROP TRIGGER audit_events_append_only_update")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER audit_events_append_only_delete")
        .execute(&pool)
        .await
        .unwrap();
    (url, pool)
}

async fn broken_at(url: &str, pool: AnyPool) -> i64 {
    pool.close().await;
    let store = Store::open(url, OpenMode::Existing).await.unwrap();
    let v = store.verify(|_| {}).await.unwrap();
    store.close().await;
    v.broken
        .unwrap_or_else(|| panic!("tampering not detected ({} verified)", v.verified))
        .seq
}

#[tokio::test]
async fn every_random_tampering_is_detected_where_it_happened() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path()).await;
    let clean = Store::open(&format!("sqlite://{}", base.display()), OpenMode::Existing)
        .await
        .unwrap();
    let v = clean.verify(|_| {}).await.unwrap();
    assert_eq!((v.broken, v.verified), (None, EVENTS as u64));
    clean.close().await;

    let mut rng = fastrand::Rng::with_seed(7);
    let mut n = 0;
    // Edited field.
    for _ in 0..TRIALS {
        n += 1;
        let (url, pool) = copy(&base, dir.path(), n).await;
        let seq = rng.i64(1..=EVENTS);
        let edit = [
            "UPDATE audit_events SET outcome = 'deny' WHERE seq = ?",
            "UPDATE audit_events SET actor = NULL WHERE seq = ?",
            "UPDATE audit_events SET occurred_at = occurred_at + 1 WHERE seq = ?",
            "UPDATE audit_events SET event_type = 'other' WHERE seq = ?",
            "UPDATE audit_events SET attributes = '{\"n\":-1}' WHERE seq = ?",
            "UPDATE audit_events SET event_id = 'forged' WHERE seq = ?",
        ][rng.usize(0..6)];
        sqlx::query(edit).bind(seq).execute(&pool).await.unwrap();
        assert_eq!(broken_at(&url, pool).await, seq, "{edit} at #{seq}");
    }
    // Deleted event (not the last: that is a truncated tail).
    for _ in 0..TRIALS {
        n += 1;
        let (url, pool) = copy(&base, dir.path(), n).await;
        let seq = rng.i64(1..EVENTS);
        sqlx::query("DELETE FROM audit_events WHERE seq = ?")
            .bind(seq)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(broken_at(&url, pool).await, seq, "deleted #{seq}");
    }
    // Swapped pair: two events' contents (with their hashes) trade places.
    for _ in 0..TRIALS {
        n += 1;
        let (url, pool) = copy(&base, dir.path(), n).await;
        let a = rng.i64(1..EVENTS);
        let b = rng.i64(a + 1..=EVENTS);
        let columns = "event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash, hash";
        let mut tx = pool.begin().await.unwrap();
        let row_a = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM audit_events WHERE seq = ?"
        )))
        .bind(a)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let row_b = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM audit_events WHERE seq = ?"
        )))
        .bind(b)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        sqlx::query("UPDATE audit_events SET event_id = 'tmp-' || seq WHERE seq IN (?, ?)")
            .bind(a)
            .bind(b)
            .execute(&mut *tx)
            .await
            .unwrap();
        for (target, row) in [(a, &row_b), (b, &row_a)] {
            sqlx::query(
                "UPDATE audit_events SET event_id = ?, occurred_at = ?, event_type = ?, actor = ?, outcome = ?, resource = ?, attributes = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            )
            .bind(row.get::<String, _>(0))
            .bind(row.get::<i64, _>(1))
            .bind(row.get::<String, _>(2))
            .bind(row.get::<Option<String>, _>(3))
            .bind(row.get::<Option<String>, _>(4))
            .bind(row.get::<Option<String>, _>(5))
            .bind(row.get::<Option<String>, _>(6))
            .bind(row.get::<Vec<u8>, _>(7))
            .bind(row.get::<Vec<u8>, _>(8))
            .bind(target)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        assert_eq!(broken_at(&url, pool).await, a, "swapped #{a} and #{b}");
    }
    // Inserted event, forged with a correct link to the event before it.
    for _ in 0..TRIALS {
        n += 1;
        let (url, pool) = copy(&base, dir.path(), n).await;
        let k = rng.i64(2..=EVENTS);
        sqlx::query("UPDATE audit_events SET seq = -seq - 1 WHERE seq >= ?")
            .bind(k)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_events SET seq = -seq WHERE seq < 0")
            .execute(&pool)
            .await
            .unwrap();
        let prev: Vec<u8> = sqlx::query("SELECT hash FROM audit_events WHERE seq = ?")
            .bind(k - 1)
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        let prev: [u8; 32] = prev.try_into().unwrap();
        let forged = Event {
            id: "forged".into(),
            occurred_at: 1_796_083_200_000_000,
            event_type: "t0".into(),
            actor: None,
            outcome: Some("ok".into()),
            resource: None,
            attributes: None,
        };
        let hash = chain::link(&prev, k, &forged);
        sqlx::query("INSERT INTO audit_events (seq, event_id, occurred_at, event_type, outcome, prev_hash, hash) VALUES (?, 'forged', ?, 't0', 'ok', ?, ?)")
            .bind(k)
            .bind(forged.occurred_at)
            .bind(prev.as_slice())
            .bind(hash.as_slice())
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(broken_at(&url, pool).await, k + 1, "inserted at #{k}");
    }
}

/// A base store with a signed checkpoint of its head.
async fn checkpointed(dir: &std::path::Path) -> std::path::PathBuf {
    let path = base(dir).await;
    let store = Store::open(&format!("sqlite://{}", path.display()), OpenMode::Existing)
        .await
        .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let checkpoint = store.checkpoint(&key, 1_796_083_200_000_000).await.unwrap();
    assert_eq!(checkpoint.seq, EVENTS);
    assert!(checkpoint.signature_holds());
    store.close().await;
    path
}

async fn verification(url: &str, pool: AnyPool) -> soc2_operator::evidence::verify::Verification {
    pool.close().await;
    let store = Store::open(url, OpenMode::Existing).await.unwrap();
    let v = store.verify(|_| {}).await.unwrap();
    store.close().await;
    v
}

#[tokio::test]
async fn a_signed_checkpoint_reveals_a_cut_tail_and_a_recomputed_chain() {
    let dir = tempfile::tempdir().unwrap();
    let base = checkpointed(dir.path()).await;
    let mut rng = fastrand::Rng::with_seed(11);
    let mut n = 0;
    // Truncated tail: the last k events deleted.
    for _ in 0..TRIALS {
        n += 1;
        let (url, pool) = copy(&base, dir.path(), n).await;
        let k = rng.i64(1..=50);
        sqlx::query("DELETE FROM audit_events WHERE seq > ?")
            .bind(EVENTS - k)
            .execute(&pool)
            .await
            .unwrap();
        let broken = verification(&url, pool)
            .await
            .broken
            .expect("truncation detected");
        assert_eq!(broken.seq, EVENTS - k + 1);
        assert!(broken.reason.contains("tail was cut off"), "{broken}");
    }
    // A rewrite from event j on, with every later hash recomputed so the chain itself holds.
    for _ in 0..TRIALS {
        n += 1;
        let (url, pool) = copy(&base, dir.path(), n).await;
        let j = rng.i64(1..=EVENTS);
        sqlx::query("UPDATE audit_events SET outcome = 'deny' WHERE seq = ?")
            .bind(j)
            .execute(&pool)
            .await
            .unwrap();
        let rows = sqlx::query("SELECT seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash FROM audit_events WHERE seq >= ? ORDER BY seq")
            .bind(j)
            .fetch_all(&pool)
            .await
            .unwrap();
        let mut prev: [u8; 32] = rows[0].get::<Vec<u8>, _>(8).try_into().unwrap();
        for row in &rows {
            let seq: i64 = row.get(0);
            let event = stored_event(row).unwrap();
            let hash = chain::link(&prev, seq, &event);
            sqlx::query("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?")
                .bind(prev.as_slice())
                .bind(hash.as_slice())
                .bind(seq)
                .execute(&pool)
                .await
                .unwrap();
            prev = hash;
        }
        let v = verification(&url, pool).await;
        assert_eq!(
            v.verified, EVENTS as u64,
            "the recomputed chain holds link by link"
        );
        let broken = v.broken.expect("rewrite detected");
        assert_eq!(broken.seq, EVENTS);
        assert!(
            broken
                .reason
                .contains("differs from its latest signed checkpoint"),
            "{broken}"
        );
    }
    // A forged checkpoint (its hash moved to match a rewrite) fails its signature.
    n += 1;
    let (url, pool) = copy(&base, dir.path(), n).await;
    sqlx::query("DROP TRIGGER checkpoints_append_only_update")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE checkpoints SET chain_hash = zeroblob(32)")
        .execute(&pool)
        .await
        .unwrap();
    let broken = verification(&url, pool)
        .await
        .broken
        .expect("forgery detected");
    assert!(
        broken.reason.contains("signature does not verify"),
        "{broken}"
    );
}

/// The hourly roll-up is derived data outside the chain: verify recomputes it from the events, so
/// an edited roll-up (which would change what evaluation says) is reported too.
#[tokio::test]
async fn an_edited_rollup_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path()).await;
    let url = format!("sqlite://{}", base.display());
    let clean = Store::open(&url, OpenMode::Existing).await.unwrap();
    let v = clean.verify(|_| {}).await.unwrap();
    assert!(v.intact(), "{:?}", v.problem());
    clean.close().await;
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_rollup SET events = events + 5 WHERE event_type = 't1'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = Store::open(&url, OpenMode::Existing).await.unwrap();
    let v = store.verify(|_| {}).await.unwrap();
    store.close().await;
    assert_eq!(v.broken, None, "the chain itself holds");
    let rollup = v.rollup.clone().expect("the edited roll-up is reported");
    assert!(
        rollup.contains("t1 in hour 2026-12-01T00:00:00Z"),
        "{rollup}"
    );
    assert!(!v.intact());
    assert_eq!(
        v.to_event("test", "2026-12-02T00:00:00Z".parse().unwrap())
            .outcome
            .as_deref(),
        Some("failure")
    );
}
