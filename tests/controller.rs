//! The operator against a real kube-apiserver (etcd + kube-apiserver + kube-controller-manager on
//! loopback, started by scripts/kube-env.sh).

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use sha2::{Digest, Sha256};
use soc2_operator::crd::{PostureReport, Soc2Requirement, State};

const WAIT: Duration = Duration::from_secs(60);

async fn state_of(api: &Api<Soc2Requirement>, name: &str) -> Option<State> {
    api.get(name).await.ok()?.status?.state
}

async fn wait_state(api: &Api<Soc2Requirement>, name: &str, want: State) -> Soc2Requirement {
    eventually(&format!("{name} to be {want}"), WAIT, || async {
        let r = api.get(name).await.ok()?;
        (r.status.as_ref()?.state == Some(want)).then_some(r)
    })
    .await
}

async fn events_for(client: &kube::Client, ns: &str, name: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut found: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    found.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
    found
}

#[tokio::test]
async fn the_schema_rejects_invalid_requirements_readably() {
    let ns = Namespace::new("schema");
    let good = std::fs::read_to_string(format!("{ROOT}/examples/requirements/cc6-6.yaml")).unwrap();
    let no_controls = good[..good.find("  controls:").unwrap()].to_string() + "  controls: []\n";
    let cases = [
        (
            good.replace("id: CC6.6", "id: CC66"),
            "spec.id in body should match",
        ),
        (
            good.replace("window: 30d", "window: 30days"),
            "spec.window in body should match '^[1-9][0-9]{0,5}[smhdw]$'",
        ),
        (
            no_controls,
            "spec.controls in body should have at least 1 items",
        ),
        (
            good.replace("name: context-gate", "name: policy-engine"),
            "spec.controls[1]: Duplicate value",
        ),
        (
            good.replace("eventTypes: [policy.decision]", "eventTypes: []"),
            "spec.controls.evidence.eventTypes in body should have at least 1 items",
        ),
        (
            good.replace("  window: 30d", "  windw: 30d"),
            "unknown field \"windw\"",
        ),
    ];
    for (yaml, want) in cases {
        let o = ns.apply(&yaml);
        assert!(!o.status.success(), "accepted: {yaml}");
        assert!(
            stderr(&o).contains(want),
            "want {want:?} in: {}",
            stderr(&o)
        );
    }
    assert!(
        ns.apply(&good).status.success(),
        "{}",
        "the valid one is accepted"
    );
}

#[tokio::test]
async fn examples_reach_their_states_and_show_in_kubectl() {
    let ns = Namespace::new("examples");
    let evidence = Evidence::new();
    evidence.demo();
    let operator = Operator::start(&ns, &evidence.url(), &format!("{}-op", ns.0));
    for file in std::fs::read_dir(format!("{ROOT}/examples/requirements")).unwrap() {
        let o = ns.apply(&std::fs::read_to_string(file.unwrap().path()).unwrap());
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(
        ns.apply(&std::fs::read_to_string(format!("{ROOT}/examples/posture-report.yaml")).unwrap())
            .status
            .success()
    );

    let client = client().await;
    let api: Api<Soc2Requirement> = Api::namespaced(client.clone(), &ns.0);
    let expected = [
        ("cc2-1", State::Green),
        ("cc5-2", State::Green),
        ("cc6-1", State::Green),
        ("cc6-6", State::Green),
        ("cc7-2", State::Green),
        ("cc7-3", State::Amber),
        ("cc7-4", State::Red),
        ("cc8-1", State::Green),
    ];
    for (name, state) in expected {
        let r = wait_state(&api, name, state).await;
        let status = r.status.unwrap();
        let ready = condition(&status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Evaluated")
        );
        assert_eq!(status.observed_generation, r.metadata.generation);
        if state != State::Red {
            assert_eq!(status.recent_events.len(), 10, "{name}");
            assert!(status.last_evidence_at.is_some());
        }
        assert!(status.query.unwrap().sql.contains("FROM audit_events"));
    }

    // The report follows the requirements through its watch.
    let reports: Api<PostureReport> = Api::namespaced(client.clone(), &ns.0);
    let summary = eventually("the report summary", WAIT, || async {
        let s = reports.get("soc2").await.ok()?.status?.summary?;
        (s.total == 8).then_some(s)
    })
    .await;
    assert_eq!(
        (summary.green, summary.amber, summary.red, summary.unknown),
        (6, 1, 1, 0)
    );

    // kubectl shows the printer columns.
    let o = kubectl(&["get", "soc2requirements", "-n", &ns.0]);
    let table = stdout(&o);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("  ")
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
    let cc66 = table.lines().find(|l| l.starts_with("cc6-6")).unwrap();
    for value in ["CC6.6", "Green", "65/65"] {
        assert!(cc66.contains(value), "{cc66}");
    }
    let o = kubectl(&["get", "posture", "-n", &ns.0]);
    assert!(stdout(&o).contains("Amber"), "{}", stdout(&o));

    // The posture job ran at once (a new report) and published all three exports to its
    // ConfigMap, with digests in the status.
    let report = eventually("the exports", WAIT, || async {
        let r = reports.get("soc2").await.ok()?;
        (r.status.as_ref()?.artifacts.len() == 3).then_some(r)
    })
    .await;
    let status = report.status.clone().unwrap();
    assert!(status.last_run_at.is_some() && status.next_run_at > status.last_run_at);
    assert_eq!(
        status.next_run_at.unwrap().strftime("%H:%M:%S").to_string(),
        "06:00:00",
        "daily at 06:00 UTC"
    );
    let published = status
        .conditions
        .iter()
        .find(|c| c.type_ == "ExportsPublished")
        .unwrap();
    assert_eq!(
        (published.status.as_str(), published.reason.as_str()),
        ("True", "Published")
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.0);
    let cm = config_maps.get("soc2-posture-export").await.unwrap();
    let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("PostureReport", "soc2")
    );
    for artifact in &status.artifacts {
        let key = artifact.location.rsplit('/').next().unwrap();
        let bytes = match cm.binary_data.as_ref().and_then(|d| d.get(key)) {
            Some(b) => b.0.clone(),
            None => cm.data.as_ref().unwrap()[key].clone().into_bytes(),
        };
        assert_eq!(artifact.bytes, bytes.len() as u64, "{key}");
        assert_eq!(
            artifact.sha256,
            hex::encode(Sha256::digest(&bytes)),
            "{key}"
        );
        assert!(
            artifact
                .location
                .starts_with(&format!("configmap://{}/soc2-posture-export/", ns.0))
        );
    }
    assert!(
        cm.binary_data.unwrap()["posture.pdf"]
            .0
            .starts_with(b"%PDF-")
    );
    let csv = &cm.data.as_ref().unwrap()["posture.csv"];
    assert_eq!(csv.lines().count(), 9, "a header and eight requirements");
    assert!(
        !csv.contains(",Unknown,"),
        "the job waits for every requirement's first evaluation:\n{csv}"
    );

    // Owned by its report: deleting the report collects the ConfigMap.
    assert!(
        kubectl(&["delete", "posturereport", "soc2", "-n", &ns.0])
            .status
            .success()
    );
    eventually(
        "the ConfigMap to be collected",
        Duration::from_secs(120),
        || async {
            config_maps
                .get_opt("soc2-posture-export")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;

    // Plumbing: health, readiness after the first sync, and the state gauge.
    assert_eq!(operator.get("/healthz").unwrap().0, 200);
    assert_eq!(operator.get("/readyz").unwrap().0, 200);
    let gauge = format!(
        "soc2_requirement_state{{namespace=\"{}\",name=\"cc7-4\",id=\"CC7.4\",state=",
        ns.0
    );
    assert_eq!(operator.metric(&format!("{gauge}\"Red\"}}")), 1.0);
    assert_eq!(operator.metric(&format!("{gauge}\"Green\"}}")), 0.0);
    assert!(operator.metric("soc2_reconcile_total{controller=\"requirement\"}") >= 8.0);
    assert!(operator.metric("soc2_reconcile_duration_seconds_count") > 0.0);
}

#[tokio::test]
async fn new_evidence_flips_red_to_green_with_one_event_each_way() {
    let ns = Namespace::new("flip");
    let evidence = Evidence::new();
    evidence.ingest(&event_now("unrelated", "other.type"));
    let operator = Operator::start(&ns, &evidence.url(), &format!("{}-op", ns.0));
    assert!(
        ns.apply(&hourly_requirement("drill", "kill_switch.drill"))
            .status
            .success()
    );

    let client = client().await;
    let api: Api<Soc2Requirement> = Api::namespaced(client.clone(), &ns.0);
    wait_state(&api, "drill", State::Red).await;
    let events = eventually("the Warning event", WAIT, || async {
        let e = events_for(&client, &ns.0, "drill").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(
        (events[0].type_.as_deref(), events[0].reason.as_deref()),
        (Some("Warning"), Some("DippedToRed"))
    );

    // Nothing changes: no status write and no new Event over several requeues (2 s each).
    let version = api.get("drill").await.unwrap().metadata.resource_version;
    let writes = operator.metric("soc2_status_writes_total{controller=\"requirement\"}");
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        api.get("drill").await.unwrap().metadata.resource_version,
        version,
        "no write when nothing changed"
    );
    assert_eq!(
        operator.metric("soc2_status_writes_total{controller=\"requirement\"}"),
        writes
    );
    assert!(
        operator.metric("soc2_reconcile_total{controller=\"requirement\"}") >= 3.0,
        "it did re-evaluate"
    );
    assert_eq!(events_for(&client, &ns.0, "drill").await.len(), 1);

    evidence.ingest(&event_now("drill-1", "kill_switch.drill"));
    let green = wait_state(&api, "drill", State::Green).await;
    let status = green.status.unwrap();
    assert!(
        status.green_since.is_some(),
        "turning green sets greenSince"
    );
    assert_eq!(status.recent_events[0].id, "drill-1");
    let compliant = condition(&status, "Compliant");
    assert_eq!(
        (compliant.status.as_str(), compliant.reason.as_str()),
        ("True", "EvidenceCurrent")
    );
    let events = eventually("the Normal event", WAIT, || async {
        let e = events_for(&client, &ns.0, "drill").await;
        (e.len() >= 2).then_some(e)
    })
    .await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        (events[1].type_.as_deref(), events[1].reason.as_deref()),
        (Some("Normal"), Some("Recovered"))
    );
    assert_eq!(
        events[1].reporting_controller.as_deref(),
        Some("soc2-operator")
    );

    // Every printer column has a value now.
    let o = kubectl(&["get", "soc2req", "drill", "-n", &ns.0, "--no-headers"]);
    let row = stdout(&o);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.len(), 8, "{cells:?}");
    assert!(!cells.contains(&"<none>"), "{cells:?}");
    assert_eq!(&cells[1..5], ["CC7.3", "Green", "1/1", "1"]);
}

#[tokio::test]
async fn an_unreadable_store_is_unknown_never_red_and_recovers() {
    let ns = Namespace::new("outage");
    let evidence = Evidence::new();
    std::fs::write(
        evidence.path(),
        b"this is not a SQLite database, but the operator must not say Red",
    )
    .unwrap();
    let _operator = Operator::start(&ns, &evidence.url(), &format!("{}-op", ns.0));
    assert!(
        ns.apply(&hourly_requirement("drill", "kill_switch.drill"))
            .status
            .success()
    );

    let client = client().await;
    let api: Api<Soc2Requirement> = Api::namespaced(client.clone(), &ns.0);
    let unknown = wait_state(&api, "drill", State::Unknown).await;
    let status = unknown.status.unwrap();
    let ready = condition(&status, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "EvidenceStoreUnavailable")
    );
    assert!(
        ready.message.contains("not a database"),
        "{}",
        ready.message
    );
    let compliant = condition(&status, "Compliant");
    assert_eq!(compliant.status, "Unknown");
    // While the store stays unreadable, it stays Unknown (retried with backoff), never Red.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(state_of(&api, "drill").await, Some(State::Unknown));
    }

    // The store comes back (a good file replaces the bad one): the real state shows.
    let good = Evidence::new();
    good.ingest(&event_now("drill-1", "kill_switch.drill"));
    std::fs::rename(good.path(), evidence.path()).unwrap();
    let recovered = eventually("drill to leave Unknown", WAIT, || async {
        let r = api.get("drill").await.ok()?;
        (r.status.as_ref()?.state != Some(State::Unknown)).then_some(r)
    })
    .await;
    let status = recovered.status.unwrap();
    assert_eq!(status.state, Some(State::Green), "{:?}", status.conditions);
}

#[tokio::test]
async fn of_two_operators_one_leads_and_the_other_takes_over() {
    let ns = Namespace::new("leader");
    let evidence = Evidence::new();
    evidence.ingest(&event_now("unrelated", "other.type"));
    let mut first = Operator::start(&ns, &evidence.url(), "first");
    let client = client().await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.0);
    let holder = || async {
        leases
            .get("soc2-operator")
            .await
            .ok()?
            .spec?
            .holder_identity
    };
    eventually("first to lead", WAIT, || async {
        (holder().await.as_deref() == Some("first")).then_some(())
    })
    .await;
    let mut second = Operator::start(&ns, &evidence.url(), "second");
    assert!(
        ns.apply(&hourly_requirement("drill", "kill_switch.drill"))
            .status
            .success()
    );

    let api: Api<Soc2Requirement> = Api::namespaced(client.clone(), &ns.0);
    wait_state(&api, "drill", State::Red).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(first.metric("soc2_reconcile_total{controller=\"requirement\"}") > 0.0);
    assert_eq!(
        second.metric("soc2_reconcile_total"),
        0.0,
        "the standby does not reconcile"
    );
    assert_eq!(
        second.metric("soc2_status_writes_total"),
        0.0,
        "the standby does not write"
    );
    assert_eq!(second.get("/readyz").unwrap().0, 503);
    assert_eq!(second.get("/healthz").unwrap().0, 200);
    assert_eq!(holder().await.as_deref(), Some("first"));

    // The leader dies without releasing the Lease; the standby takes over when it expires.
    first.kill();
    eventually("second to lead", WAIT, || async {
        (holder().await.as_deref() == Some("second")).then_some(())
    })
    .await;
    evidence.ingest(&event_now("drill-1", "kill_switch.drill"));
    wait_state(&api, "drill", State::Green).await;
    assert!(
        second.metric("soc2_status_writes_total{controller=\"requirement\"}") > 0.0,
        "the new leader wrote"
    );

    // SIGTERM: the leader shuts down cleanly and releases the Lease.
    let third = Operator::start(&ns, &evidence.url(), "third");
    eventually("third to listen", WAIT, || async {
        third.get("/healthz").map(|_| ())
    })
    .await;
    let o = std::process::Command::new("kill")
        .args(["-TERM", &second.child.id().to_string()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let exit = {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = second.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "second did not exit on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(exit.success(), "a SIGTERM shutdown exits 0: {exit:?}");
    // Released, not left to expire: no holder right after the exit (the Lease lasts 10 s).
    let lease = leases.get("soc2-operator").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity, None, "{lease:?}");
    eventually("third to lead", WAIT, || async {
        (holder().await.as_deref() == Some("third")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_api_serves_exports_and_supporting_sets_to_whom_rbac_allows() {
    let ns = Namespace::new("api");
    let evidence = Evidence::new();
    evidence.demo();
    let operator = Operator::start(&ns, &evidence.url(), &format!("{}-op", ns.0));
    for file in std::fs::read_dir(format!("{ROOT}/examples/requirements")).unwrap() {
        assert!(
            ns.apply(&std::fs::read_to_string(file.unwrap().path()).unwrap())
                .status
                .success()
        );
    }
    assert!(
        ns.apply(&std::fs::read_to_string(format!("{ROOT}/examples/posture-report.yaml")).unwrap())
            .status
            .success()
    );
    let api: Api<Soc2Requirement> = Api::namespaced(client().await, &ns.0);
    let cc66 = wait_state(&api, "cc6-6", State::Green).await;
    wait_state(&api, "cc7-4", State::Red).await;
    eventually("every requirement evaluated", WAIT, || async {
        let all = api.list(&ListParams::default()).await.ok()?.items;
        (all.len() == 8
            && all
                .iter()
                .all(|r| r.status.as_ref().is_some_and(|s| s.state.is_some())))
        .then_some(())
    })
    .await;
    let base = "/api/v1/compliance/soc2";
    let scoped = |path: &str| {
        format!(
            "{base}{path}{}namespace={}",
            if path.contains('?') { "&" } else { "?" },
            ns.0
        )
    };

    // Who asks: no token or a bad one is 401, a user without RBAC is 403, and neither sees data.
    for (token, status) in [
        (None, 401),
        (Some("not-a-token"), 401),
        (Some(NOBODY_TOKEN), 403),
    ] {
        for path in [
            "/export?format=pdf",
            "/requirements",
            "/requirements/CC6.6/evidence?format=csv",
        ] {
            let r = operator.request(&scoped(path), token).unwrap();
            assert_eq!(r.status, status, "{path} with {token:?}: {}", r.text());
            assert!(
                !r.text().contains("CC6.6") && !r.text().contains("policy.decision"),
                "{}",
                r.text()
            );
            assert!(r.text().contains("\"error\""));
        }
    }
    let get = |path: &str| operator.request(&scoped(path), Some(ADMIN_TOKEN)).unwrap();

    // Gauges: greenSince of a Green requirement, and the report's summary.
    let since = cc66
        .status
        .as_ref()
        .unwrap()
        .green_since
        .expect("dated from the history");
    let series = format!(
        "soc2_requirement_green_since_timestamp_seconds{{namespace=\"{}\",name=\"cc6-6\",id=\"CC6.6\"}}",
        ns.0
    );
    assert_eq!(operator.metric(&series), since.as_second() as f64);
    let red = format!(
        "soc2_posture_requirements{{namespace=\"{}\",report=\"soc2\",state=\"Red\"}}",
        ns.0
    );
    eventually("the report summary gauge", WAIT, || async {
        (operator.metric(&red) == 1.0).then_some(())
    })
    .await;

    // The page is a static shell anyone may load: it holds no data; its API calls carry the token.
    let page = operator.request("/compliance/soc2", None).unwrap();
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Compliance") && !page.text().contains("CC6.6"));

    // The trend, as SVG: today's cell of each requirement, its state in words.
    let svg = get("/trend.svg");
    assert_eq!(svg.status, 200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    assert!(
        svg.text().contains(&format!("CC6.6 {today}: Green")),
        "{}",
        svg.text()
    );
    assert!(svg.text().contains(&format!("CC7.4 {today}: Red")));

    // Exports.
    let pdf = get("/export?format=pdf");
    assert_eq!(pdf.status, 200);
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert!(
        pdf.header("content-disposition")
            .unwrap()
            .starts_with("attachment; filename=\"soc2-posture-")
    );
    assert!(pdf.body.starts_with(b"%PDF-"));
    let csv = get("/export?format=csv");
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(csv.text().lines().count(), 9);
    let json = get("/export?format=json");
    assert_eq!(json.header("content-type"), Some("application/json"));
    let export: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(export["summary"]["total"], 8);
    let bad = get("/export?format=xml");
    assert_eq!(bad.status, 400);
    assert!(
        bad.text()
            .contains("unsupported format \\\"xml\\\": use format=pdf, csv or json"),
        "{}",
        bad.text()
    );

    // Requirements.
    let list: serde_json::Value = serde_json::from_slice(&get("/requirements").body).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 8);
    let cc74: serde_json::Value = serde_json::from_slice(&get("/requirements/CC7.4").body).unwrap();
    assert_eq!(cc74["status"]["state"], "Red");
    assert_eq!(get("/requirements/CC9.9").status, 404);

    // The supporting set, streamed: every event in the window that a control selects.
    let expected = cc66.status.unwrap().events_in_window.unwrap() as i64;
    let set = get("/requirements/CC6.6/evidence?format=csv");
    assert_eq!(set.status, 200);
    assert!(
        set.header("content-disposition")
            .unwrap()
            .contains("CC6.6-supporting-set.csv")
    );
    let mut reader = csv::Reader::from_reader(set.body.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(
        (rows.len() as i64 - expected).abs() <= 5,
        "{} rows, {expected} in the status",
        rows.len()
    );
    let types = [
        "policy.decision",
        "context_gate.tool_filtered",
        "restricted_mode.changed",
    ];
    assert!(rows.iter().all(|r| types.contains(&&r[2])));
    assert!(
        rows.iter()
            .filter(|r| &r[2] == "policy.decision")
            .all(|r| &r[4] == "allow" || &r[4] == "deny")
    );
    let set: serde_json::Value =
        serde_json::from_slice(&get("/requirements/CC6.6/evidence?format=json").body).unwrap();
    assert_eq!(set.as_array().unwrap().len(), rows.len());
    let empty: serde_json::Value =
        serde_json::from_slice(&get("/requirements/CC7.4/evidence?format=json").body).unwrap();
    assert_eq!(empty, serde_json::json!([]));
    assert_eq!(get("/requirements/CC6.6/evidence?format=xml").status, 400);
}

#[tokio::test]
async fn exports_are_published_to_a_real_s3_server_with_their_digests() {
    use object_store::{ObjectStore, ObjectStoreExt};
    let endpoint = s3_endpoint();
    let ns = Namespace::new("s3");
    let evidence = Evidence::new();
    evidence.ingest(&event_now("drill-1", "kill_switch.drill"));
    let _operator = Operator::start(&ns, &evidence.url(), &format!("{}-op", ns.0));
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: s3-creds}}\nstringData:\n  AWS_ACCESS_KEY_ID: soc2-test-access\n  AWS_SECRET_ACCESS_KEY: soc2-test-secret\n  AWS_ENDPOINT_URL: {endpoint}\n"
    );
    assert!(ns.apply(&secret).status.success());
    assert!(
        ns.apply(&hourly_requirement("drill", "kill_switch.drill"))
            .status
            .success()
    );
    let prefix = format!("reports/{}", ns.0);
    let report = format!(
        "apiVersion: compliance.behavry.io/v1alpha1\nkind: PostureReport\nmetadata: {{name: daily}}\nspec:\n  formats: [pdf, csv, json]\n  destination:\n    objectStore: {{url: \"s3://soc2-exports/{prefix}\", credentialsSecret: s3-creds}}\n  organization: {{name: Example Corp}}\n"
    );
    assert!(ns.apply(&report).status.success());

    let reports: Api<PostureReport> = Api::namespaced(client().await, &ns.0);
    let status = eventually("the S3 artifacts", WAIT, || async {
        let s = reports.get("daily").await.ok()?.status?;
        (s.artifacts.len() == 3).then_some(s)
    })
    .await;
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("soc2-exports")
        .with_region("us-east-1")
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_access_key_id("soc2-test-access")
        .with_secret_access_key("soc2-test-secret")
        .build()
        .unwrap();
    for artifact in &status.artifacts {
        let key = artifact
            .location
            .strip_prefix("s3://soc2-exports/")
            .expect("an s3 location");
        assert!(key.starts_with(&prefix), "{key}");
        let bytes = s3
            .get(&object_store::path::Path::from(key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(artifact.bytes, bytes.len() as u64);
        assert_eq!(
            artifact.sha256,
            hex::encode(Sha256::digest(&bytes)),
            "{key}"
        );
    }
    let listed: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(
        s3.list(Some(&object_store::path::Path::from(prefix.as_str()))),
    )
    .await
    .unwrap();
    assert_eq!(listed.len(), 3, "nothing but the three whole objects");
    let published = status
        .conditions
        .iter()
        .find(|c| c.type_ == "ExportsPublished")
        .unwrap();
    assert_eq!(published.reason, "Published");

    // A wrong secret is a condition with the reason, not a crash loop.
    let bad = secret
        .replace("soc2-test-secret", "wrong")
        .replace("s3-creds", "bad-creds");
    assert!(ns.apply(&bad).status.success());
    assert!(
        ns.apply(&report.replace("name: daily", "name: wrong").replace(
            "credentialsSecret: s3-creds",
            "credentialsSecret: bad-creds"
        ))
        .status
        .success()
    );
    let failed = eventually("the failed condition", WAIT, || async {
        let s = reports.get("wrong").await.ok()?.status?;
        let c = s
            .conditions
            .into_iter()
            .find(|c| c.type_ == "ExportsPublished")?;
        (c.status == "False").then_some(c)
    })
    .await;
    assert_eq!(
        failed.reason, "ObjectStoreWriteFailed",
        "{}",
        failed.message
    );
}

#[tokio::test]
async fn a_tampered_chain_turns_integrity_red_with_chain_broken() {
    let ns = Namespace::new("integrity");
    let evidence = Evidence::new();
    evidence.ingest(&event_now("first", "policy.decision"));
    let key = evidence.dir.path().join("signing.pem");
    assert!(
        std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let _operator = Operator::start_with(
        &ns,
        &evidence.url(),
        &format!("{}-op", ns.0),
        &[
            "--integrity-interval",
            "2s",
            "--signing-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        ns.apply(&hourly_requirement("chain", "integrity.chain.verified"))
            .status
            .success()
    );
    let client = client().await;
    let api: Api<Soc2Requirement> = Api::namespaced(client.clone(), &ns.0);
    // The operator's own verifications are the evidence.
    let green = wait_state(&api, "chain", State::Green).await;
    let recent = &green.status.unwrap().recent_events[0];
    assert_eq!(recent.event_type, "integrity.chain.verified");
    assert_eq!(recent.outcome.as_deref(), Some("success"));
    let signed = || {
        let o = std::process::Command::new("sqlite3")
            .arg(evidence.path())
            .arg("SELECT COUNT(*) FROM checkpoints; SELECT COUNT(*) FROM audit_events WHERE event_type = 'integrity.checkpoint.signed'")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(|n| n.parse::<u32>().unwrap())
            .collect::<Vec<_>>()
    };
    let counts = signed();
    assert!(
        counts[0] >= 1 && counts[1] >= 1,
        "checkpoints signed and recorded: {counts:?}"
    );

    // Someone with file access edits the first event behind the operator's back.
    let o = std::process::Command::new("sqlite3")
        .arg(evidence.path())
        .arg("DROP TRIGGER audit_events_append_only_update; UPDATE audit_events SET outcome = 'allow' WHERE seq = 1;")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let red = wait_state(&api, "chain", State::Red).await;
    let status = red.status.unwrap();
    let compliant = condition(&status, "Compliant");
    assert_eq!(
        (compliant.status.as_str(), compliant.reason.as_str()),
        ("False", "ChainBroken")
    );
    assert!(compliant.message.contains("#1"), "{}", compliant.message);
    let events = eventually("the ChainBroken event", WAIT, || async {
        let e = events_for(&client, &ns.0, "chain").await;
        e.into_iter()
            .find(|e| e.reason.as_deref() == Some("ChainBroken"))
    })
    .await;
    assert_eq!(events.type_.as_deref(), Some("Warning"));
    // A broken chain is not signed again.
    let before = signed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(signed()[0], before[0], "no checkpoint of a broken chain");
}

#[tokio::test]
async fn http_ingest_is_authorised_by_token_review_and_rbac() {
    let ns = Namespace::new("ingest");
    let evidence = Evidence::new();
    evidence.ingest(&event_now("first", "policy.decision"));
    let operator = Operator::start(&ns, &evidence.url(), &format!("{}-op", ns.0));
    let line = event_now("over-http", "kill_switch.drill");
    let post = |token: Option<&'static str>| {
        let (port, body) = (operator.port, line.clone());
        async move {
            eventually("the operator to lead and answer", WAIT, || {
                let body = body.clone();
                async move {
                    let r = tokio::task::spawn_blocking(move || {
                        http_post(port, "/api/v1/events", token, body.as_bytes())
                    })
                    .await
                    .ok()??;
                    (r.status != 503).then_some(r)
                }
            })
            .await
        }
    };
    // No token, a bad token, a user whom RBAC does not allow to create auditevents: refused.
    for (token, status) in [
        (None, 401),
        (Some("not-a-token"), 401),
        (Some(NOBODY_TOKEN), 403),
    ] {
        let r = post(token).await;
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = post(Some(NOBODY_TOKEN)).await;
    assert!(
        String::from_utf8_lossy(&r.body)
            .contains("may not create auditevents.compliance.behavry.io"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // An authorised caller's events land on the chain.
    let r = post(Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let report: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(report["accepted"], 1);
    let o = std::process::Command::new("sqlite3")
        .arg(evidence.path())
        .arg("SELECT COUNT(*) FROM audit_events WHERE event_id = 'over-http'")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1");
}

/// A local Alertmanager-style receiver: the JSON bodies POSTed to it.
async fn webhook_receiver() -> (
    u16,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use axum::{Json, Router, extract::State as AxState, routing::post};
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let app = Router::new()
        .route(
            "/hook",
            post(
                |AxState(store): AxState<
                    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
                >,
                 Json(body): Json<serde_json::Value>| async move {
                    store.lock().unwrap().push(body);
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, received)
}

#[tokio::test]
async fn a_webhook_hears_the_dip_and_the_recovery() {
    let ns = Namespace::new("webhook");
    let (port, received) = webhook_receiver().await;
    let evidence = Evidence::new();
    // Evidence that leaves the 1-hour window in about 15 seconds: Green now, Red soon.
    let soon_stale = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600 - 15);
    let soon_stale = jiff::Timestamp::from_microsecond(soon_stale.as_microsecond()).unwrap();
    evidence.ingest(&format!(
        r#"{{"id":"old","occurredAt":"{soon_stale}","type":"kill_switch.drill","outcome":"success"}}"#
    ));
    let _operator = Operator::start(&ns, &evidence.url(), &format!("{}-op", ns.0));
    assert!(
        ns.apply(&hourly_requirement("drill", "kill_switch.drill"))
            .status
            .success()
    );
    let report = format!(
        "apiVersion: compliance.behavry.io/v1alpha1\nkind: PostureReport\nmetadata: {{name: alerts}}\n\
         spec: {{selector: {{matchLabels: {{compliance.behavry.io/framework: soc2}}}}, webhook: {{url: 'http://127.0.0.1:{port}/hook'}}}}\n"
    );
    assert!(ns.apply(&report).status.success());
    let api: Api<Soc2Requirement> = Api::namespaced(client().await, &ns.0);
    wait_state(&api, "drill", State::Green).await;
    assert!(
        received.lock().unwrap().is_empty(),
        "no notice without a change"
    );

    // The evidence ages out: a dip, one firing alert.
    wait_state(&api, "drill", State::Red).await;
    let firing = eventually("the firing notice", WAIT, || async {
        received.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["status"], "firing");
    let alert = &firing["alerts"][0];
    assert_eq!(
        (
            &alert["labels"]["requirement"],
            &alert["annotations"]["previousState"],
            &alert["annotations"]["state"]
        ),
        (
            &serde_json::Value::from("CC7.3"),
            &serde_json::Value::from("Green"),
            &serde_json::Value::from("Red")
        )
    );

    // New evidence: the recovery, resolved.
    evidence.ingest(&event_now("fresh", "kill_switch.drill"));
    wait_state(&api, "drill", State::Green).await;
    let resolved = eventually("the resolved notice", WAIT, || async {
        received.lock().unwrap().get(1).cloned()
    })
    .await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_eq!(received.lock().unwrap().len(), 2, "one notice per change");
}
