//! The Helm chart: it lints, renders, its CRDs are the generated ones, the real apiserver accepts
//! every rendered object, and the operator works under exactly the chart's RBAC (its own
//! ServiceAccount token), so a missing rule fails here.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::ListParams;
use soc2_operator::crd::{PostureReport, Soc2Requirement, State};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/soc2-operator");
const WAIT: Duration = Duration::from_secs(90);

fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let o = Command::new(Path::new(ROOT).join("scripts/helm.sh"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        PathBuf::from(
            String::from_utf8(o.stdout)
                .unwrap()
                .lines()
                .last()
                .unwrap()
                .trim(),
        )
    })
}

fn render(release: &str, namespace: &str, values: &[&str]) -> String {
    let mut args = vec!["template", release, CHART, "--namespace", namespace];
    for v in values {
        args.extend(["--set", v]);
    }
    let o = Command::new(helm()).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_chart_lints_and_carries_the_generated_crds() {
    let o = Command::new(helm())
        .args(["lint", "--strict", CHART])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let in_chart = std::fs::read_to_string(Path::new(CHART).join("crds/crds.yaml")).unwrap();
    assert!(
        in_chart == soc2_operator::crd::crds_yaml(),
        "charts/soc2-operator/crds/crds.yaml is stale: run `cargo run -- crd > charts/soc2-operator/crds/crds.yaml`"
    );
    // Optional objects render when asked for, with the alert's threshold.
    let all = render(
        "soc2",
        "compliance",
        &[
            "serviceMonitor.enabled=true",
            "prometheusRule.enabled=true",
            "prometheusRule.notGreenFor=6h",
        ],
    );
    assert!(all.contains("kind: ServiceMonitor"));
    assert!(all.contains("kind: PrometheusRule") && all.contains("for: 6h"));
    // The test apiserver has no monitoring.coreos.com CRDs: these two are checked against
    // prometheus-operator's own schemas instead (tests/browser/validate-monitoring.mjs).
    let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(&all).unwrap();
    let objects: Vec<serde_json::Value> = objects.into_iter().filter(|o| !o.is_null()).collect();
    let mut node = Command::new("node");
    node.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
        .arg("validate-monitoring.mjs");
    let o = pipe(&mut node, &serde_json::to_string(&objects).unwrap());
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        said.contains("valid ServiceMonitor") && said.contains("valid PrometheusRule"),
        "{said}"
    );
    // The PostgreSQL backend needs its Secret named, and says so.
    let o = Command::new(helm())
        .args([
            "template",
            "soc2",
            CHART,
            "--set",
            "evidence.backend=postgres",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("evidence.postgres.secretName is required")
    );
}

/// The ServiceAccount token the token controller minted for `account`.
async fn service_account_token(ns: &str, account: &str) -> String {
    let secrets: Api<Secret> = Api::namespaced(client().await, ns);
    eventually("the ServiceAccount's token", WAIT, || async {
        let list = secrets.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find_map(|s| {
            let annotations = s.metadata.annotations.as_ref()?;
            (s.type_.as_deref() == Some("kubernetes.io/service-account-token")
                && annotations
                    .get("kubernetes.io/service-account.name")
                    .map(String::as_str)
                    == Some(account))
            .then(|| String::from_utf8(s.data?.get("token")?.0.clone()).ok())
            .flatten()
        })
    })
    .await
}

/// A kubeconfig for the same apiserver as the admin's, but as `token`.
fn kubeconfig_with_token(dir: &Path, token: &str) -> PathBuf {
    let admin = std::fs::read_to_string(kubeconfig()).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&admin).unwrap();
    config["users"][0]["user"] = serde_json::json!({ "token": token });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn the_operator_works_under_exactly_the_charts_rbac() {
    let ns = Namespace::new("chart");
    let release = ns.0.clone(); // cluster-scoped names (ClusterRole) stay unique per test run
    let rendered = render(
        &release,
        &ns.0,
        &[
            "operator.objectStoreSecrets={s3-credentials}",
            "operator.signingKeySecret=signing",
        ],
    );
    // The real apiserver accepts every rendered object (server-side validation included).
    let o = ns.apply(&rendered);
    assert!(o.status.success(), "{}", stderr(&o));
    for kind in [
        "serviceaccount",
        "clusterrole",
        "clusterrolebinding",
        "role",
        "rolebinding",
        "deployment",
        "service",
        "persistentvolumeclaim",
    ] {
        let o = kubectl(&[
            "get",
            kind,
            "-n",
            &ns.0,
            "-l",
            &format!("app.kubernetes.io/instance={release}"),
            "-o",
            "name",
        ]);
        assert!(
            !stdout(&o).trim().is_empty(),
            "no {kind} applied: {}",
            stderr(&o)
        );
    }

    // The operator with the chart's ServiceAccount token, nothing else.
    let token = service_account_token(&ns.0, &release).await;
    let evidence = Evidence::new();
    evidence.demo();
    let config = kubeconfig_with_token(evidence.dir.path(), &token);
    let o = kubectl_at(
        &config,
        &["auth", "can-i", "delete", "soc2requirements", "-n", &ns.0],
    );
    assert_eq!(
        stdout(&o).trim(),
        "no",
        "the chart grants no more than it needs"
    );
    let operator = Operator::start_as(&config, &ns, &evidence.url(), &format!("{release}-op"), &[]);

    for file in std::fs::read_dir(format!("{ROOT}/examples/requirements")).unwrap() {
        assert!(
            ns.apply(&std::fs::read_to_string(file.unwrap().path()).unwrap())
                .status
                .success()
        );
    }
    let report = std::fs::read_to_string(format!("{ROOT}/examples/posture-report.yaml")).unwrap();
    assert!(ns.apply(&report).status.success());

    // Statuses written (status subresource), Events published, the Lease held, exports written
    // to a ConfigMap, and the API's TokenReview and SubjectAccessReview made: each needs a rule.
    let client = client().await;
    let requirements: Api<Soc2Requirement> = Api::namespaced(client.clone(), &ns.0);
    eventually(
        "every requirement evaluated under the chart's RBAC",
        WAIT,
        || async {
            let all = requirements.list(&ListParams::default()).await.ok()?.items;
            (all.len() == 8
                && all.iter().all(|r| {
                    r.status
                        .as_ref()
                        .is_some_and(|s| s.state.is_some_and(|s| s != State::Unknown))
                }))
            .then_some(())
        },
    )
    .await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns.0);
    eventually("a Warning Event from the operator", WAIT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reporting_controller.as_deref() == Some("soc2-operator")
                    && e.type_.as_deref() == Some("Warning")
            })
            .then_some(())
    })
    .await;
    let reports: Api<PostureReport> = Api::namespaced(client.clone(), &ns.0);
    let name = "soc2";
    let published = eventually("the posture job's exports", WAIT, || async {
        let r = reports.get(name).await.ok()?;
        let status = r.status?;
        (!status.artifacts.is_empty()).then_some(status)
    })
    .await;
    assert_eq!(published.artifacts.len(), 3, "{:?}", published.artifacts);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.0);
    let exports = config_maps.get("soc2-posture-export").await.unwrap();
    assert!(exports.binary_data.unwrap().contains_key("posture.pdf"));
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), &ns.0);
    let lease = leases.get("soc2-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(operator.identity.as_str())
    );
    let r = tokio::task::spawn_blocking({
        let port = operator.port;
        let path = format!("/api/v1/compliance/soc2/requirements?namespace={}", ns.0);
        move || http_get(port, &path, Some(ADMIN_TOKEN))
    })
    .await
    .unwrap()
    .expect("the API answers");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
