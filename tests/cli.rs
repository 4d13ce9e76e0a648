//! The binary as a user runs it: demo data → ingest → evaluate, and every kind of bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const END: &str = "2026-12-01T00:00:00Z";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_soc2-operator"));
    c.env_remove("SOC2_EVIDENCE").env("RUST_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `soc2-operator serve` on a free loopback port over `url`, with extra arguments and
/// environment: the child and its port.
fn serve(url: &str, extra: &[&str], env: &[(&str, &str)]) -> (std::process::Child, u16) {
    let port = common::free_port();
    let child = bin()
        .args([
            "serve",
            "--evidence",
            url,
            "-f",
            examples().to_str().unwrap(),
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

struct Demo {
    _dir: tempfile::TempDir,
    url: String,
    db: PathBuf,
}

/// 60 days of demo evidence ending at END, ingested into a fresh store.
fn demo() -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let db = dir.path().join("evidence.db");
    let url = format!("sqlite://{}", db.display());
    let o = run(&[
        "demo-data",
        "--days",
        "60",
        "--at",
        END,
        "-o",
        events.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["ingest", "--evidence", &url, events.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ingested "), "{}", stdout(&o));
    let wal = dir.path().join("evidence.db-wal");
    assert!(
        !wal.exists(),
        "ingest leaves everything in the database file itself"
    );
    Demo { _dir: dir, url, db }
}

fn evaluate_json(url: &str, at: &str) -> Value {
    let o = run(&[
        "evaluate",
        "--evidence",
        url,
        "-f",
        examples().to_str().unwrap(),
        "--at",
        at,
        "-o",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn states(list: &Value) -> Vec<(String, String)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "Soc2Requirement")
        .map(|i| {
            (
                i["spec"]["id"].as_str().unwrap().to_string(),
                i["status"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Runs SQL on a store file behind the operator's back, as someone with file access could.
fn sqlite(db: &Path, statement: &str) {
    assert!(
        Command::new("sqlite3")
            .arg(db)
            .arg(statement)
            .status()
            .unwrap()
            .success()
    );
}

fn event_count(db: &Path) -> String {
    let o = Command::new("sqlite3")
        .arg(db)
        .arg("SELECT COUNT(*) FROM audit_events")
        .output()
        .unwrap();
    stdout(&o).trim().to_string()
}

#[test]
fn the_demo_shows_green_amber_and_red() {
    let demo = demo();
    let list = evaluate_json(&demo.url, END);
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["kind"], "List");
    let want: Vec<(String, String)> = [
        ("CC2.1", "Green"),
        ("CC5.2", "Green"),
        ("CC6.1", "Green"),
        ("CC6.6", "Green"),
        ("CC7.2", "Green"),
        ("CC7.3", "Amber"),
        ("CC7.4", "Red"),
        ("CC8.1", "Green"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(states(&list), want);

    let cc66 = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["spec"]["id"] == "CC6.6")
        .unwrap();
    let status = &cc66["status"];
    assert_eq!(status["coverage"], "65/65");
    assert_eq!(status["evaluatedAt"], END);
    assert_eq!(status["recentEvents"].as_array().unwrap().len(), 10);
    assert!(
        status["query"]["sql"]
            .as_str()
            .unwrap()
            .contains("event_type = $3")
    );
    assert!(
        status["query"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "policy.decision")
    );
    let conditions: Vec<_> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].clone(), c["reason"].clone()))
        .collect();
    assert!(conditions.contains(&("Ready".into(), "Evaluated".into())));
    assert!(conditions.contains(&("Compliant".into(), "EvidenceCurrent".into())));

    let report = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "PostureReport")
        .unwrap();
    assert_eq!(report["status"]["state"], "Amber");
    assert_eq!(
        report["status"]["summary"],
        serde_json::json!({"total": 8, "green": 6, "amber": 1, "red": 1, "unknown": 0})
    );
}

#[test]
fn the_table_has_the_printer_columns() {
    let demo = demo();
    let o = run(&[
        "evaluate",
        "--evidence",
        &demo.url,
        "-f",
        examples().join("requirements").to_str().unwrap(),
        "--at",
        END,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{text}");
    let header: Vec<&str> = lines[0]
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "ID",
            "STATE",
            "COVERAGE",
            "EVENTS",
            "LAST EVIDENCE",
            "GREEN SINCE",
            "AGE"
        ]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cc7-4") && l.contains("Red") && l.contains("0/10")),
        "{text}"
    );

    let o = run(&[
        "evaluate",
        "--evidence",
        &demo.url,
        "-f",
        examples().to_str().unwrap(),
        "--at",
        END,
        "-o",
        "yaml",
    ]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("kind: List"));
}

#[test]
fn at_evaluates_the_past_and_ignores_later_events() {
    let demo = demo();
    // 45 days before the end, change management still had evidence (it stopped 40 days before).
    let past = evaluate_json(&demo.url, "2026-10-17T00:00:00Z");
    let cc74 = states(&past)
        .into_iter()
        .find(|(id, _)| id == "CC7.4")
        .unwrap();
    assert_ne!(cc74.1, "Red");
    let items = past["items"].as_array().unwrap();
    for item in items.iter().filter(|i| i["kind"] == "Soc2Requirement") {
        if let Some(last) = item["status"]["lastEvidenceAt"].as_str() {
            assert!(last < "2026-10-17T00:00:00Z", "{last}");
        }
    }
    // Before any evidence at all: every requirement is Red (the store was read, nothing was there).
    let before = evaluate_json(&demo.url, "2026-01-01T00:00:00Z");
    assert!(states(&before).iter().all(|(_, s)| s == "Red"));
}

#[test]
fn fail_on_gates_a_pipeline() {
    let demo = demo();
    let f = examples().join("requirements");
    let o = run(&[
        "evaluate",
        "--evidence",
        &demo.url,
        "-f",
        f.to_str().unwrap(),
        "--at",
        END,
        "--fail-on",
        "red",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let green = f.join("cc6-6.yaml");
    let o = run(&[
        "evaluate",
        "--evidence",
        &demo.url,
        "-f",
        green.to_str().unwrap(),
        "--at",
        END,
        "--fail-on",
        "amber",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_malformed_event_file_fails_whole_and_changes_nothing() {
    let demo = demo();
    let before = event_count(&demo.db);
    let cases = [
        (
            "{\"id\":\"n1\",\"occurredAt\":\"2026-12-01T00:00:00Z\",\"type\":\"x\"}\nnot json\n",
            "line 2",
            "expected",
        ),
        (
            "{\"id\":\"n1\",\"occurredAt\":\"2026-12-01T00:00:00Z\",\"type\":\"x\"}\n\n{\"id\":\"n2\",\"occurredAt\":\"2026-12-01T00:00:00Z\"}\n",
            "line 3",
            "missing field `type`",
        ),
    ];
    for (input, line, reason) in cases {
        let o = common::pipe(bin().args(["ingest", "--evidence", &demo.url, "-"]), input);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(
            err.contains(line) && err.contains(reason) && err.contains("nothing was stored"),
            "{err}"
        );
        assert_eq!(event_count(&demo.db), before);
    }
    let o = run(&[
        "ingest",
        "--evidence",
        &demo.url,
        "/nonexistent/events.jsonl",
    ]);
    assert!(!o.status.success() && stderr(&o).contains("/nonexistent/events.jsonl"));
}

#[test]
fn bad_requirement_files_are_rejected_with_the_field() {
    let demo = demo();
    let good = std::fs::read_to_string(examples().join("requirements/cc6-6.yaml")).unwrap();
    let cases = [
        (
            good.replace("  window: 30d", "  window: 30d\n  windw: 30d"),
            "unknown field `windw`",
        ),
        (
            good.replace("window: 30d", "window: 30 days"),
            "spec.window: invalid duration \"30 days\"",
        ),
        (
            good.replace("    cadence: 7d", "    cadence: 31d"),
            "cadence 31d is longer than the window 30d",
        ),
        (
            good[..good.find("  controls:").unwrap()].to_string() + "  controls: []\n",
            "at least one control",
        ),
        (good.replace("id: CC6.6", "id: CC66"), "spec.id"),
    ];
    for (text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, text).unwrap();
        let o = run(&[
            "evaluate",
            "--evidence",
            &demo.url,
            "-f",
            path.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(
            err.contains("bad.yaml") && err.contains(want),
            "want {want:?} in {err}"
        );
        assert!(stdout(&o).is_empty(), "nothing printed for invalid input");
    }
}

#[test]
fn an_unreadable_store_is_unknown_not_red() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("typo.db").display());
    let o = run(&[
        "evaluate",
        "--evidence",
        &missing,
        "-f",
        examples().to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("typo.db"), "{}", stderr(&o));
    assert!(!dir.path().join("typo.db").exists());
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    for (_, state) in states(&list) {
        assert_eq!(state, "Unknown");
    }
    let first = &list["items"][0]["status"]["conditions"];
    assert!(
        first.to_string().contains("EvidenceStoreUnavailable"),
        "{first}"
    );

    let o = run(&[
        "ingest",
        "--evidence",
        "sqlite:///nonexistent-dir/e.db",
        "-",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("/nonexistent-dir/e.db"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn crd_prints_the_checked_in_crds() {
    let o = run(&["crd"]);
    let on_disk =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/crds.yaml"))
            .unwrap();
    assert_eq!(
        stdout(&o),
        on_disk,
        "crds/ is stale: cargo run -- crd > crds/crds.yaml"
    );
}

#[test]
fn the_documented_python_verifier_accepts_the_store() {
    let demo = demo();
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/evidence-chain.md"),
    )
    .unwrap();
    let start = doc.find("```python\n").unwrap() + "```python\n".len();
    let script = doc[start..][..doc[start..].find("```").unwrap()]
        .replace("\"soc2-evidence.db\"", &format!("{:?}", demo.db));
    let o = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let head = stdout(&o);
    let ingest = run(&["ingest", "--evidence", &demo.url, "/dev/null"]);
    let ours = stdout(&ingest);
    let ours_hash = ours.trim().rsplit(' ').next().unwrap();
    assert_eq!(head.trim(), format!("chain ok, head {ours_hash}"));
}

#[test]
fn serve_answers_locally_and_only_on_loopback() {
    // Evidence ending now: serve evaluates at the time of each request.
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let db = dir.path().join("evidence.db");
    assert!(
        run(&["demo-data", "-o", events.to_str().unwrap()])
            .status
            .success()
    );
    let url = format!("sqlite://{}", db.display());
    assert!(
        run(&["ingest", "--evidence", &url, events.to_str().unwrap()])
            .status
            .success()
    );
    let demo = Demo { _dir: dir, url, db };
    let o = run(&[
        "serve",
        "--evidence",
        &demo.url,
        "-f",
        examples().to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("loopback only"),
        "{}",
        stderr(&o)
    );

    let (mut child, port) = serve(&demo.url, &[], &[]);
    let get = |path: &str| -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    };
    let mut list = None;
    for _ in 0..100 {
        list = get("/api/v1/compliance/soc2/requirements");
        if list.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let list = list.expect("serve listens");
    let body: Value = serde_json::from_str(list.split_once("\r\n\r\n").unwrap().1).unwrap();
    let states: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.len(), 8);
    assert!(
        states.contains(&"Green") && states.contains(&"Amber") && states.contains(&"Red"),
        "{states:?}"
    );
    let csv = get("/api/v1/compliance/soc2/requirements/CC7.3/evidence?format=csv").unwrap();
    assert!(
        csv.starts_with("HTTP/1.0 200") && csv.contains("hitl.escalation.resolved"),
        "{}",
        &csv[..200.min(csv.len())]
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn verify_reports_the_first_broken_link() {
    let demo = demo();
    let o = run(&["verify", "--evidence", &demo.url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("chain ok: "), "{}", stdout(&o));
    let tamper = "DROP TRIGGER audit_events_append_only_update; UPDATE audit_events SET outcome = 'deny' WHERE seq = 42;";
    sqlite(&demo.db, tamper);
    let o = run(&["verify", "--evidence", &demo.url]);
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .contains("chain broken at #42: the stored event does not hash to its stored hash"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("41 events verified before it"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn checkpoints_are_signed_with_an_openssl_key_and_checked_against_its_public_key() {
    let demo = demo();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = common::keypair(dir.path(), "key");
    let (other, _) = common::keypair(dir.path(), "other");
    let verify_with_public_key = || {
        run(&[
            "verify",
            "--evidence",
            &demo.url,
            "--public-key",
            public.to_str().unwrap(),
        ])
    };
    let checkpoint_with = |key: &Path| {
        run(&[
            "checkpoint",
            "--evidence",
            &demo.url,
            "--key",
            key.to_str().unwrap(),
        ])
    };

    let o = verify_with_public_key();
    assert!(
        !o.status.success() && stderr(&o).contains("no signed checkpoint"),
        "{}",
        stderr(&o)
    );
    let o = checkpoint_with(&key);
    assert!(o.status.success(), "{}", stderr(&o));
    let checkpoint: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(checkpoint["signature"].as_str().unwrap().len(), 128);
    let o = verify_with_public_key();
    assert!(o.status.success(), "{}", stderr(&o));

    let o = checkpoint_with(&public);
    assert!(
        !o.status.success() && stderr(&o).contains("not an Ed25519 private key"),
        "{}",
        stderr(&o)
    );
    let o = checkpoint_with(&other);
    assert!(o.status.success());
    let o = verify_with_public_key();
    assert!(
        !o.status.success() && stderr(&o).contains("not by the key in"),
        "{}",
        stderr(&o)
    );

    // A cut tail: the last events deleted behind the store's back.
    let cut = "DROP TRIGGER audit_events_append_only_delete; DELETE FROM audit_events WHERE seq > (SELECT MAX(seq) - 3 FROM audit_events);";
    sqlite(&demo.db, cut);
    let o = run(&["verify", "--evidence", &demo.url]);
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .contains("the chain ends before its latest signed checkpoint: its tail was cut off"),
        "{}",
        stderr(&o)
    );
}

/// The same events in PostgreSQL give the same statuses, chain and verification as in SQLite.
#[tokio::test]
async fn postgres_holds_the_same_evidence_and_posture_as_sqlite() {
    let demo = demo();
    let pg = common::postgres_database().await;
    let events = demo._dir.path().join("events.jsonl");
    let o = run(&["ingest", "--evidence", &pg, events.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (on_sqlite, on_postgres) = (evaluate_json(&demo.url, END), evaluate_json(&pg, END));
    assert_eq!(on_postgres["items"], on_sqlite["items"]);
    let verified = |url: &str| {
        let o = run(&["verify", "--evidence", url]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(verified(&pg), verified(&demo.url));
}

#[test]
fn serve_ingests_json_lines_over_http_all_or_nothing() {
    let demo = demo();
    let (mut child, port) = serve(
        &demo.url,
        &["--max-ingest-bytes", "4096"],
        &[("SOC2_INGEST_TOKEN", "s3cret-ingest-token")],
    );
    let post = |token: Option<&str>, body: &str| {
        for _ in 0..100 {
            if let Some(r) = common::http_post(port, "/api/v1/events", token, body.as_bytes()) {
                let json: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                return (r.status, json);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("serve does not listen");
    };
    let before = event_count(&demo.db);
    let good = |id: &str| {
        format!(
            r#"{{"id":"{id}","occurredAt":"2026-12-02T10:00:00Z","type":"policy.decision","outcome":"allow"}}"#
        )
    };

    let (status, body) = post(None, &good("h1"));
    assert_eq!(status, 401, "{body}");
    let (status, _) = post(Some("wrong-token-of-same-len"), &good("h1"));
    assert_eq!(status, 401);

    let bad = format!(
        "{}\n{}\n{{\"id\":\"h3\",\"type\":\"x\"}}\n",
        good("h1"),
        good("h2")
    );
    let (status, body) = post(Some("s3cret-ingest-token"), &bad);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["line"], 3);
    assert!(
        body["reason"].as_str().unwrap().contains("occurredAt"),
        "{body}"
    );
    assert_eq!(
        event_count(&demo.db),
        before,
        "nothing of a bad request is stored"
    );

    let big = (0..60)
        .map(|i| good(&format!("big-{i}")) + "\n")
        .collect::<String>();
    let (status, body) = post(Some("s3cret-ingest-token"), &big);
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("4096 bytes"),
        "{body}"
    );
    assert_eq!(event_count(&demo.db), before);

    let two = format!("{}\n{}\n", good("h1"), good("h2"));
    let (status, body) = post(Some("s3cret-ingest-token"), &two);
    assert_eq!(
        (status, &body["accepted"], &body["duplicates"]),
        (200, &Value::from(2), &Value::from(0)),
        "{body}"
    );
    let (status, body) = post(Some("s3cret-ingest-token"), &two);
    assert_eq!(
        (status, &body["accepted"], &body["duplicates"]),
        (200, &Value::from(0), &Value::from(2)),
        "idempotent: {body}"
    );
    let _ = child.kill();
    let _ = child.wait();

    let count: u64 = event_count(&demo.db).parse().unwrap();
    assert_eq!(count, before.parse::<u64>().unwrap() + 2);
    let o = run(&["verify", "--evidence", &demo.url]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Evaluations on successive days build the history; greenSince comes from it (offline there is
/// no previous status to carry it), and the report's status.history counts each day.
#[test]
fn history_over_simulated_days_dates_green_since() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("evidence.db").display());
    // Evidence on days 1, 3 and 4 (at noon), none on day 2.
    let events: String = [1, 3, 4]
        .iter()
        .map(|d| {
            format!(r#"{{"id":"e{d}","occurredAt":"2026-12-0{d}T12:00:00Z","type":"drill.done","outcome":"success"}}"#) + "\n"
        })
        .collect();
    let o = common::pipe(bin().args(["ingest", "--evidence", &url, "-"]), &events);
    assert!(o.status.success(), "{}", stderr(&o));
    let resources = dir.path().join("resources.yaml");
    std::fs::write(
        &resources,
        "apiVersion: compliance.behavry.io/v1alpha1\nkind: Soc2Requirement\nmetadata: {name: drill, labels: {framework: soc2}}\n\
         spec: {id: CC7.3, title: Drills, window: 1d, cadence: 1d, controls: [{name: drill, evidence: {eventTypes: [drill.done]}}]}\n\
         ---\napiVersion: compliance.behavry.io/v1alpha1\nkind: PostureReport\nmetadata: {name: r}\n\
         spec: {selector: {matchLabels: {framework: soc2}}, historyDays: 3}\n",
    )
    .unwrap();
    let evaluate = |day: u32, record: bool| -> Value {
        let at = format!("2026-12-0{day}T18:00:00Z");
        let mut args = vec![
            "evaluate",
            "--evidence",
            &url,
            "-f",
            resources.to_str().unwrap(),
            "--at",
            &at,
            "-o",
            "json",
        ];
        if record {
            args.push("--record-history");
        }
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let drill = |list: &Value| list["items"][0]["status"].clone();
    let day = |d: u32| Value::from(format!("2026-12-0{d}T18:00:00Z"));

    let d1 = drill(&evaluate(1, true));
    assert_eq!(
        (&d1["state"], &d1["greenSince"]),
        (&Value::from("Green"), &day(1)),
        "green since records began"
    );
    let d2 = drill(&evaluate(2, true));
    assert_eq!(d2["state"], "Red");
    assert!(d2.get("greenSince").is_none(), "{d2}");
    let d3 = drill(&evaluate(3, true));
    assert_eq!(
        (&d3["state"], &d3["greenSince"]),
        (&Value::from("Green"), &day(3))
    );
    let d4 = evaluate(4, true);
    assert_eq!(
        drill(&d4)["greenSince"],
        day(3),
        "the streak began on day 3, as the history shows"
    );
    // Reading without recording sees the same; a later evaluation of a day replaces its row.
    assert_eq!(drill(&evaluate(4, false))["greenSince"], day(3));

    // The report's history: the last 3 days, one requirement each.
    let report = &d4["items"][1]["status"];
    let history: Vec<(String, u64, u64)> = report["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["date"].as_str().unwrap().to_string(),
                h["green"].as_u64().unwrap(),
                h["red"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("2026-12-02".to_string(), 0, 1),
            ("2026-12-03".to_string(), 1, 0),
            ("2026-12-04".to_string(), 1, 0)
        ]
    );
}
