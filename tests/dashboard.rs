//! The Compliance → SOC 2 page in a real browser: Debian's chromium, driven by playwright-core
//! (tests/browser; no browser download), against `soc2-operator serve` over demo evidence.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

const BROWSER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

fn bin(args: &[&str]) -> std::process::Output {
    let o = Command::new(env!("CARGO_BIN_EXE_soc2-operator"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn the_page_shows_eight_requirements_a_drawer_and_downloads() {
    assert!(
        Path::new(BROWSER)
            .join("node_modules/playwright-core")
            .exists()
            && Path::new("/usr/bin/chromium").exists(),
        "run scripts/test.sh (it installs chromium and tests/browser's playwright-core)"
    );
    let dir = tempfile::tempdir().unwrap();
    let evidence = dir.path().join("demo.jsonl");
    let url = format!("sqlite://{}", dir.path().join("evidence.db").display());
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    bin(&["demo-data", "-o", evidence.to_str().unwrap()]);
    bin(&["ingest", "--evidence", &url, evidence.to_str().unwrap()]);
    // A week of daily history, so that the trend has something to show.
    for days_ago in (1..=7).rev() {
        let at = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days_ago);
        let at = jiff::Timestamp::from_second(at.as_second())
            .unwrap()
            .to_string();
        bin(&[
            "evaluate",
            "--evidence",
            &url,
            "-f",
            examples,
            "--at",
            &at,
            "--record-history",
            "-o",
            "json",
        ]);
    }
    let port = common::free_port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_soc2-operator"))
        .args([
            "serve",
            "--evidence",
            &url,
            "-f",
            examples,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if common::http_get(port, "/compliance/soc2", None).is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let page = common::http_get(port, "/", None).unwrap();
    assert_eq!(page.status, 307, "/ redirects to the page");

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard");
    std::fs::create_dir_all(&out).unwrap();
    let o = Command::new("node")
        .current_dir(BROWSER)
        .arg("dashboard.mjs")
        .arg(format!("http://127.0.0.1:{port}/compliance/soc2"))
        .arg(&out)
        .output()
        .unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seen: Value = serde_json::from_slice(&o.stdout).unwrap();

    // Eight rows, each state in words.
    let rows: Vec<(String, String)> = seen["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into()))
        .collect();
    let want = [
        ("CC2.1", "Green"),
        ("CC5.2", "Green"),
        ("CC6.1", "Green"),
        ("CC6.6", "Green"),
        ("CC7.2", "Green"),
        ("CC7.3", "Amber"),
        ("CC7.4", "Red"),
        ("CC8.1", "Green"),
    ];
    assert_eq!(rows, want.map(|(a, b)| (a.to_string(), b.to_string())));

    // The drawer, opened with the keyboard: the exact query and the last 10 events.
    let drawer = &seen["drawer"];
    assert!(drawer["title"].as_str().unwrap().starts_with("CC6.6"));
    assert!(
        drawer["query"]
            .as_str()
            .unwrap()
            .starts_with("SELECT control, slot"),
        "{drawer}"
    );
    assert!(
        drawer["parameters"]
            .as_str()
            .unwrap()
            .contains("policy.decision")
    );
    let events = drawer["events"].as_array().unwrap();
    assert_eq!(events.len(), 10);
    assert!(events.iter().all(|t| {
        [
            "policy.decision",
            "context_gate.tool_filtered",
            "restricted_mode.changed",
        ]
        .contains(&t.as_str().unwrap())
    }));
    assert_eq!(
        drawer["focused"], "drawer-close",
        "focus moves into the drawer"
    );
    assert_eq!(
        (&seen["closed"], &seen["refocused"]),
        (&Value::from(true), &Value::from("CC6.6"))
    );

    // Downloads: the supporting set as CSV and JSON, and the exports.
    let csv = std::fs::read_to_string(seen["supportingCsv"].as_str().unwrap()).unwrap();
    assert!(
        seen["supportingCsv"]
            .as_str()
            .unwrap()
            .ends_with("CC6.6-supporting-set.csv")
    );
    assert!(csv.lines().count() > 100 && csv.contains("policy.decision"));
    let supporting: Value = serde_json::from_str(
        &std::fs::read_to_string(seen["supportingJson"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        supporting.as_array().unwrap().len(),
        csv.lines().count() - 1,
        "the same set"
    );
    let export: Value =
        serde_json::from_slice(&std::fs::read(seen["exportJson"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(export["schemaVersion"], "soc2-operator.posture-export/v1");
    assert_eq!(export["requirements"].as_array().unwrap().len(), 8);
    let pdf = std::fs::read(seen["exportPdf"].as_str().unwrap()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));

    // The trend chart: 8 rows over the report's 90 days; nothing fetched from elsewhere.
    assert_eq!(seen["trendCells"], 8 * 90);
    assert_eq!(seen["outside"], Value::Array(vec![]));
    assert_eq!(seen["errors"], Value::Array(vec![]));
    let png = std::fs::read(out.join("dashboard.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}
