//! Helpers for the tests against the real kube-apiserver that `scripts/kube-env.sh` runs.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Brings up the test control plane once per test binary (a running one is reused) and applies
/// the CRDs; returns the kubeconfig path.
pub fn kubeconfig() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = Command::new(Path::new(ROOT).join("scripts/kube-env.sh"))
            .arg("up")
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/kube-env.sh");
        assert!(out.status.success(), "scripts/kube-env.sh up failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let path = PathBuf::from(text.lines().last().expect("kubeconfig path").trim());
        let crds = Path::new(ROOT).join("crds/crds.yaml");
        let o = kubectl_at(
            &path,
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                crds.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "applying CRDs: {}", stderr(&o));
        let o = kubectl_at(
            &path,
            &[
                "wait",
                "--for=condition=established",
                "--timeout=60s",
                "crd/soc2requirements.compliance.behavry.io",
                "crd/posturereports.compliance.behavry.io",
            ],
        );
        assert!(o.status.success(), "waiting for CRDs: {}", stderr(&o));
        path
    })
}

pub async fn client() -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

pub fn kubectl_at(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .expect("kubectl")
}

pub fn kubectl(args: &[&str]) -> Output {
    kubectl_at(kubeconfig(), args)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr without kubectl's version-skew warning.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.contains("version difference"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A namespace of its own for one test, deleted afterwards.
pub struct Namespace(pub String);

impl Namespace {
    pub fn new(prefix: &str) -> Self {
        let name = format!("{prefix}-{:06x}", fastrand::u32(..0xffffff));
        let o = kubectl(&["create", "namespace", &name]);
        assert!(o.status.success(), "{}", stderr(&o));
        Namespace(name)
    }

    pub fn apply(&self, yaml: &str) -> Output {
        let mut kubectl = Command::new("kubectl");
        kubectl
            .env("KUBECONFIG", kubeconfig())
            .args(["apply", "-n", &self.0, "-f", "-"]);
        pipe(&mut kubectl, yaml)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"]);
    }
}

/// Runs `command` with `input` on its standard input; its output.
pub fn pipe(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// An evidence store file of its own.
pub struct Evidence {
    pub dir: tempfile::TempDir,
}

impl Evidence {
    pub fn new() -> Self {
        Evidence {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("evidence.db")
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }

    /// Ingests JSON Lines with the binary.
    pub fn ingest(&self, lines: &str) {
        let mut ingest = Command::new(env!("CARGO_BIN_EXE_soc2-operator"));
        ingest.args(["ingest", "--evidence", &self.url(), "-"]);
        let o = pipe(&mut ingest, lines);
        assert!(
            o.status.success(),
            "ingest: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// 60 days of demo evidence ending now.
    pub fn demo(&self) {
        let events = self.dir.path().join("demo.jsonl");
        let o = Command::new(env!("CARGO_BIN_EXE_soc2-operator"))
            .args(["demo-data", "--days", "60", "-o", events.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success());
        self.ingest(&std::fs::read_to_string(events).unwrap());
    }
}

/// One audit event, now.
pub fn event_now(id: &str, event_type: &str) -> String {
    let now = jiff::Timestamp::from_microsecond(jiff::Timestamp::now().as_microsecond()).unwrap();
    format!(r#"{{"id":"{id}","occurredAt":"{now}","type":"{event_type}","outcome":"success"}}"#)
}

/// An operator process, killed when dropped.
pub struct Operator {
    pub child: Child,
    pub port: u16,
    pub identity: String,
}

impl Operator {
    pub fn start(ns: &Namespace, evidence: &str, identity: &str) -> Self {
        Self::start_with(ns, evidence, identity, &[])
    }

    /// Starts with extra arguments to `run`.
    pub fn start_with(ns: &Namespace, evidence: &str, identity: &str, extra: &[&str]) -> Self {
        Self::start_as(kubeconfig(), ns, evidence, identity, extra)
    }

    /// Starts with the identity (and so the RBAC) of another kubeconfig.
    pub fn start_as(
        kubeconfig: &Path,
        ns: &Namespace,
        evidence: &str,
        identity: &str,
        extra: &[&str],
    ) -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("{identity}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_soc2-operator"))
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,soc2_operator=debug")
            .args([
                "run",
                "--evidence",
                evidence,
                "--watch-namespace",
                &ns.0,
                "--lease-namespace",
                &ns.0,
                "--lease-duration",
                "10",
                "--lease-grace",
                "2",
                "--http-addr",
                &format!("127.0.0.1:{port}"),
                "--requeue-interval",
                "2s",
                "--identity",
                identity,
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Operator {
            child,
            port,
            identity: identity.into(),
        }
    }

    /// GET a path on the operator's HTTP port: (status code, body), or None when not listening.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request(path, None)
            .map(|r| (r.status, String::from_utf8_lossy(&r.body).into_owned()))
    }

    /// GET with an optional bearer token.
    pub fn request(&self, path: &str, token: Option<&str>) -> Option<Response> {
        http_get(self.port, path, token)
    }

    /// The value of a metric line starting with `prefix`, or 0 when absent.
    pub fn metric(&self, prefix: &str) -> f64 {
        let (_, body) = self.get("/metrics").unwrap_or_default();
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns Some, failing the test with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A requirement with one control over `event_type`, window 1h at cadence 1h: one event in the
/// last hour makes it Green.
pub fn hourly_requirement(name: &str, event_type: &str) -> String {
    format!(
        "apiVersion: compliance.behavry.io/v1alpha1\nkind: Soc2Requirement\nmetadata:\n  name: {name}\n  labels: {{compliance.behavry.io/framework: soc2}}\n\
         spec:\n  id: CC7.3\n  title: Incident handling\n  window: 1h\n  cadence: 1h\n  controls:\n  - name: kill-switch\n    title: Global Kill Switch\n    evidence: {{eventTypes: [{event_type}]}}\n"
    )
}

/// A condition of a requirement's status, by type.
pub fn condition<'a>(
    status: &'a soc2_operator::crd::Soc2RequirementStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"))
}

/// A plain HTTP/1.0 response.
pub struct Response {
    pub status: u16,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0: the server closes when done).
pub fn http_get(port: u16, path: &str, token: Option<&str>) -> Option<Response> {
    http_request(port, "GET", path, token, None)
}

/// POST `body` (JSON Lines) with an optional bearer token.
pub fn http_post(port: u16, path: &str, token: Option<&str>, body: &[u8]) -> Option<Response> {
    http_request(port, "POST", path, token, Some(body))
}

fn http_request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Option<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let length = body
        .map(|b| {
            format!(
                "Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n",
                b.len()
            )
        })
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\n{auth}{length}\r\n"
    )
    .ok()?;
    // A server may answer (413) and close before reading all of a large body.
    let _ = stream.write_all(body.unwrap_or_default());
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// Tokens of the test control plane's users (scripts/kube-env.sh).
pub const ADMIN_TOKEN: &str = "soc2-operator-test-admin-token";
pub const NOBODY_TOKEN: &str = "soc2-operator-test-nobody-token";

/// Brings up the test S3 server (scripts/s3-env.sh; a running one is reused): its endpoint.
pub fn s3_endpoint() -> String {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| script_up("s3-env.sh")).clone()
}

/// Brings up the test PostgreSQL (scripts/pg-env.sh; a running one is reused) and creates an
/// empty database of its own for the caller: that database's URL.
pub async fn postgres_database() -> String {
    static ADMIN: OnceLock<String> = OnceLock::new();
    let admin = ADMIN.get_or_init(|| script_up("pg-env.sh"));
    sqlx::any::install_default_drivers();
    let name = format!("soc2_test_{:016x}", fastrand::u64(..));
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin)
        .await
        .expect("the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

/// Runs `scripts/NAME up` once per test binary: the last line it prints.
fn script_up(name: &str) -> String {
    let out = Command::new(Path::new(ROOT).join("scripts").join(name))
        .arg("up")
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("scripts/{name}: {e}"));
    assert!(out.status.success(), "scripts/{name} up failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

/// A free TCP port on loopback (free when asked; good enough for a test's server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An Ed25519 key pair made by openssl in `dir`: (private key PEM, public key PEM) paths.
pub fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, public) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub.pem")),
    );
    let openssl = |args: &[&str]| {
        assert!(
            Command::new("openssl")
                .args(args)
                .status()
                .unwrap()
                .success()
        );
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (key, public)
}
