//! Exports from the CLI, checked for content: CSV parses, JSON validates against the published
//! schema and is deterministic, and the PDF's text holds every requirement, the cover letter and
//! the signature block.

mod common;

use std::path::Path;
use std::process::Command;

const END: &str = "2026-12-01T00:00:00Z";

fn bin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_soc2-operator"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    url: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let url = format!("sqlite://{}", dir.path().join("evidence.db").display());
    assert!(
        bin(&["demo-data", "--at", END, "-o", events.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        bin(&["ingest", "--evidence", &url, events.to_str().unwrap()])
            .status
            .success()
    );
    Fixture { dir, url }
}

impl Fixture {
    fn export(&self, format: &str, name: &str, extra: &[&str]) -> Vec<u8> {
        let out = self.dir.path().join(name);
        let examples = format!("{}/examples", env!("CARGO_MANIFEST_DIR"));
        let mut args = vec![
            "export",
            "--evidence",
            &self.url,
            "-f",
            &examples,
            "--at",
            END,
            "--format",
            format,
        ];
        let out_str = out.to_str().unwrap().to_string();
        args.extend(["-o", &out_str]);
        args.extend(extra);
        let o = bin(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out).unwrap()
    }
}

const IDS: [&str; 8] = [
    "CC2.1", "CC5.2", "CC6.1", "CC6.6", "CC7.2", "CC7.3", "CC7.4", "CC8.1",
];

#[test]
fn csv_has_one_row_per_requirement() {
    let f = fixture();
    let bytes = f.export("csv", "posture.csv", &[]);
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    assert!(headers.iter().any(|h| h == "query"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let ids: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(ids, IDS);
    let cc74 = rows.iter().find(|r| &r[0] == "CC7.4").unwrap();
    assert_eq!((&cc74[2], &cc74[3]), ("Red", "0/10"));
    assert!(
        cc74[7].contains("change-requests: Red (0/5)"),
        "{}",
        &cc74[7]
    );
}

#[test]
fn json_validates_against_the_published_schema_and_is_deterministic() {
    let f = fixture();
    let bytes = f.export("json", "posture.json", &[]);
    assert_eq!(
        bytes,
        f.export("json", "again.json", &[]),
        "same data, same instant: same bytes"
    );
    let export: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/posture-export.v1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&export)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // And the schema has teeth: a record without its state fails.
    let mut broken = export.clone();
    broken["records"][0]
        .as_object_mut()
        .unwrap()
        .remove("controlState");
    assert!(!validator.is_valid(&broken));

    assert_eq!(export["schemaVersion"], "soc2-operator.posture-export/v1");
    assert_eq!(export["generatedAt"], END);
    assert_eq!(export["organization"]["name"], "Example Corp");
    assert_eq!(
        export["summary"],
        serde_json::json!({"total": 8, "green": 6, "amber": 1, "red": 1, "unknown": 0})
    );
    assert_eq!(export["chainHead"]["hash"].as_str().unwrap().len(), 64);
    let records = export["records"].as_array().unwrap();
    assert_eq!(records.len(), 20, "one flat record per control");
    assert!(records.iter().all(|r| {
        r.as_object()
            .unwrap()
            .values()
            .all(|v| !v.is_object() && !v.is_array())
    }));
    let cc66 = &export["requirements"].as_array().unwrap()[3];
    assert_eq!(cc66["id"], "CC6.6");
    assert_eq!(cc66["recentEvents"].as_array().unwrap().len(), 10);
    assert!(cc66["query"]["sql"].as_str().unwrap().starts_with("SELECT"));
}

fn pdf_text(pdf: &[u8], dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    std::fs::write(&path, pdf).unwrap();
    let text = Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    let info = Command::new("pdfinfo").arg(&path).output().unwrap();
    (
        String::from_utf8_lossy(&text.stdout).into_owned(),
        String::from_utf8_lossy(&info.stdout).into_owned(),
    )
}

#[test]
fn pdf_holds_cover_letter_requirements_and_signatures() {
    let f = fixture();
    let a4 = f.export("pdf", "posture.pdf", &[]);
    let (text, info) = pdf_text(&a4, f.dir.path(), "check.pdf");
    for id in IDS {
        assert!(text.contains(id), "{id} missing");
    }
    for needle in [
        "SOC 2 Type II — AI Agent Controls",
        "Example Corp",
        "Example AI Agent Platform",
        "Prepared for",
        "Independent Auditor LLP",
        "Audit period",
        "2026-11-01 to 2026-12-01",
        "To Independent Auditor LLP,",
        "Summary",
        "Logical access — least privilege",
        "Last 10 supporting events",
        "SELECT control, slot",
        "Signatures",
        "Jane Doe",
        "Chief Information Security Officer",
        "John Roe",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} missing from the PDF text"
        );
    }
    assert!(
        info.contains("Page size:       595.28 x 841.89 pts (A4)"),
        "{info}"
    );
    assert!(
        info.contains("CreationDate:    Tue Dec  1 00:00:00 2026 UTC"),
        "{info}"
    );
    let letter = f.export("pdf", "letter.pdf", &["--paper", "letter"]);
    let (_, info) = pdf_text(&letter, f.dir.path(), "letter-check.pdf");
    assert!(info.contains("612 x 792 pts (letter)"), "{info}");
}

#[test]
fn an_unreadable_store_exports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.pdf");
    let o = bin(&[
        "export",
        "--evidence",
        &format!("sqlite://{}", dir.path().join("missing.db").display()),
        "-f",
        &format!("{}/examples", env!("CARGO_MANIFEST_DIR")),
        "--format",
        "pdf",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.db"));
    assert!(!out.exists());
}

#[test]
fn json_exports_carry_the_latest_signed_checkpoint() {
    use ed25519_dalek::Verifier;
    let f = fixture();
    let without: serde_json::Value =
        serde_json::from_slice(&f.export("json", "before.json", &[])).unwrap();
    assert!(
        without.get("checkpoint").is_none(),
        "no checkpoint, no field"
    );

    let key = f.dir.path().join("key.pem");
    assert!(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "ed25519",
                "-out",
                key.to_str().unwrap()
            ])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        bin(&[
            "checkpoint",
            "--evidence",
            &f.url,
            "--key",
            key.to_str().unwrap()
        ])
        .status
        .success()
    );
    let export: serde_json::Value =
        serde_json::from_slice(&f.export("json", "after.json", &[])).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/posture-export.v1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        jsonschema::validator_for(&schema)
            .unwrap()
            .is_valid(&export)
    );

    let c = &export["checkpoint"];
    assert_eq!(c["seq"], export["chainHead"]["seq"]);
    assert_eq!(c["hash"], export["chainHead"]["hash"]);
    // Anyone with the export alone can check the signature over the documented message.
    let hash: [u8; 32] = hex::decode(c["hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signed_at: jiff::Timestamp = c["signedAt"].as_str().unwrap().parse().unwrap();
    let message = soc2_operator::evidence::checkpoint::message(
        c["seq"].as_i64().unwrap(),
        &hash,
        signed_at.as_microsecond(),
    );
    let key: [u8; 32] = hex::decode(c["publicKey"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signature: [u8; 64] = hex::decode(c["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
    assert!(
        key.verify(&message, &ed25519_dalek::Signature::from_bytes(&signature))
            .is_ok()
    );
    let mut forged = message.clone();
    forged[40] ^= 1;
    assert!(
        key.verify(&forged, &ed25519_dalek::Signature::from_bytes(&signature))
            .is_err()
    );
}

fn keypair(dir: &Path) -> (String, String) {
    let (key, public) = common::keypair(dir, "signing");
    (key.display().to_string(), public.display().to_string())
}

/// The documented verifier (Python's standard library and openssl only) on a bundle file.
fn python_verifies(bundle: &Path, public: &str) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/verify-bundle.py");
    Command::new("python3")
        .arg(script)
        .arg(bundle)
        .arg(public)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_signed_export_is_a_bundle_anyone_can_verify_and_no_byte_can_change() {
    let f = fixture();
    let (key, public) = keypair(f.dir.path());
    let bundle = f.export("json", "bundle.json", &["--signing-key", &key]);
    let path = f.dir.path().join("bundle.json");

    // Our binary, and the independent script, both accept it.
    let o = bin(&[
        "verify",
        "--bundle",
        path.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .starts_with("bundle ok: signed export of 8 requirements, ")
    );
    assert!(python_verifies(&path, &public));

    // It carries every cited event in full, and a checkpoint of its own head made at export.
    let doc: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    let evidence = doc["evidence"].as_array().unwrap();
    assert!(evidence.len() >= 60, "{} events", evidence.len());
    assert_eq!(doc["checkpoint"]["seq"], doc["chainHead"]["seq"]);

    // Exporting again from an unchanged chain reuses that checkpoint: the same bytes.
    assert_eq!(
        f.export("json", "again.json", &["--signing-key", &key]),
        bundle
    );

    let public_key = soc2_operator::evidence::checkpoint::verifying_key_from_pem(
        &std::fs::read_to_string(&public).unwrap(),
    )
    .unwrap();
    assert!(soc2_operator::export::bundle::verify(&bundle, &public_key).is_ok());

    // Every changed byte is caught: a sample of positions across the whole file, each set to
    // another random value.
    let mut rng = fastrand::Rng::with_seed(7);
    let mut positions: Vec<usize> = (0..bundle.len()).step_by(23).collect();
    positions.extend((0..1_000).map(|_| rng.usize(..bundle.len())));
    let mut python_checked = 0;
    for (n, i) in positions.into_iter().enumerate() {
        let mut changed = bundle.clone();
        changed[i] = loop {
            let b = rng.u8(..);
            if b != bundle[i] {
                break b;
            }
        };
        assert!(
            soc2_operator::export::bundle::verify(&changed, &public_key).is_err(),
            "byte {i} changed from {:?} to {:?} went unnoticed",
            bundle[i] as char,
            changed[i] as char
        );
        // The script too, on a few that still parse as JSON (the interesting ones).
        if n % 500 == 0
            || (python_checked < 12
                && serde_json::from_slice::<serde_json::Value>(&changed).is_ok())
        {
            let file = f.dir.path().join("changed.json");
            std::fs::write(&file, &changed).unwrap();
            assert!(!python_verifies(&file, &public), "script missed byte {i}");
            python_checked += 1;
        }
    }
    assert!(python_checked >= 12);

    // Another key, an unsigned export, a missing event: each refused with its reason.
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
    let err = soc2_operator::export::bundle::verify(&bundle, &other).unwrap_err();
    assert!(
        err.to_string().contains("not by the given public key"),
        "{err}"
    );
    let unsigned = f.export("json", "unsigned.json", &[]);
    assert_eq!(
        soc2_operator::export::bundle::verify(&unsigned, &public_key).unwrap_err(),
        soc2_operator::export::bundle::BundleError::Unsigned
    );
    let o = bin(&[
        "verify",
        "--bundle",
        f.dir.path().join("unsigned.json").to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not signed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
