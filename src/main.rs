use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use soc2_operator::crd::State;
use soc2_operator::evidence::{self, OpenMode, Store};
use soc2_operator::export::pdf::Paper;
use soc2_operator::{controller, crd, demo, export, manifests, offline, posture};

/// Live SOC 2 evidence from an AI-agent audit trail.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Plain, env = "SOC2_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the usual kubeconfig (in-cluster, KUBECONFIG, ~/.kube/config).
    Run(RunArgs),
    /// Serve the compliance API locally over the embedded store, for requirements from files
    /// (loopback only: no authentication).
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// Files or directories of YAML resources.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// Loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        ingest: IngestArgs,
    },
    /// Walk the evidence hash chain and report the first broken link (exit 1 when broken); or,
    /// with --bundle, check a signed JSON export offline.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Require the latest checkpoint (or the bundle) to be signed by this Ed25519 public key
        /// (SPKI PEM, `openssl pkey -pubout`).
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Check this JSON export instead of a store: its signature, checkpoint and events.
        #[arg(long, requires = "public_key", conflicts_with = "record")]
        bundle: Option<PathBuf>,
        /// Record the outcome in the store as an `integrity.chain.verified` event (what the
        /// operator does on its schedule), for a store checked outside a cluster.
        #[arg(long)]
        record: bool,
    },
    /// Sign the current chain head with an Ed25519 key (PKCS#8 PEM) and store the checkpoint.
    Checkpoint {
        #[command(flatten)]
        store: StoreArgs,
        /// Private key, e.g. from `openssl genpkey -algorithm ed25519`.
        #[arg(long)]
        key: PathBuf,
    },
    /// Print both CustomResourceDefinitions as YAML.
    Crd,
    /// Append JSON Lines audit events to the evidence store (all or nothing).
    Ingest {
        #[command(flatten)]
        store: StoreArgs,
        /// A JSON Lines file, or - for standard input.
        file: PathBuf,
    },
    /// Evaluate Soc2Requirements from files against the evidence store, no cluster needed.
    Evaluate {
        #[command(flatten)]
        store: StoreArgs,
        /// Files or directories of YAML resources (multi-document allowed).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// Evaluate as of this instant (RFC 3339), ignoring later events.
        #[arg(long)]
        at: Option<Timestamp>,
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Exit with status 3 when any requirement is this state or worse.
        #[arg(long, value_enum)]
        fail_on: Option<FailOn>,
        /// Write each requirement's state to the daily posture history (greenSince and the trend
        /// come from it), as the operator does on every evaluation.
        #[arg(long)]
        record_history: bool,
    },
    /// Export the posture of requirements from files as PDF, CSV or JSON, no cluster needed.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum)]
        format: ExportFormatArg,
        /// Files or directories of YAML resources; the first PostureReport names the organisation
        /// and selects the requirements (all of them when there is none).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// Export as of this instant (RFC 3339); default now.
        #[arg(long)]
        at: Option<Timestamp>,
        /// Output file (written whole, then renamed into place).
        #[arg(short, long)]
        output: PathBuf,
        /// Paper size of the PDF.
        #[arg(long, value_enum, default_value_t = Paper::A4)]
        paper: Paper,
        #[command(flatten)]
        signing: SigningArgs,
    },
    /// Print the JSON Schema of the JSON export (schemas/posture-export.v1.json).
    ExportSchema,
    /// Write realistic demo audit events as JSON Lines, ending now (or at --at).
    DemoData {
        #[arg(long, default_value_t = 60)]
        days: u32,
        #[arg(long, default_value_t = 300)]
        events_per_day: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// End of the generated history (RFC 3339); default now.
        #[arg(long)]
        at: Option<Timestamp>,
        /// Output file; default standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// How soon a requirement is re-evaluated when nothing else triggers it (time passing and new
    /// evidence show within this).
    #[arg(long, env = "SOC2_REQUEUE_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration)]
    requeue_interval: std::time::Duration,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "SOC2_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "SOC2_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: std::net::SocketAddr,
    /// Reconcile without taking the leader Lease (a single replica only).
    #[arg(long)]
    disable_leader_election: bool,
    #[arg(long, env = "SOC2_LEASE_NAME", default_value = "soc2-operator")]
    lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, else the watched one, else default).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Seconds a leader's claim lasts without renewal.
    #[arg(long, default_value_t = 15)]
    lease_duration: u64,
    /// Seconds before expiry that the leader renews.
    #[arg(long, default_value_t = 5)]
    lease_grace: u64,
    /// This replica's name in Events and the Lease (default: host name and process id).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// How often the leader verifies the whole evidence chain, records the outcome as an
    /// `integrity.chain.verified` event, and (with a signing key) signs a checkpoint.
    #[arg(long, env = "SOC2_INTEGRITY_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    integrity_interval: std::time::Duration,
    #[command(flatten)]
    signing: SigningArgs,
    #[command(flatten)]
    ingest: IngestArgs,
    /// Read the signing key from this Secret (key `signing-key.pem`) in the Lease's namespace,
    /// instead of a file.
    #[arg(long, env = "SOC2_SIGNING_KEY_SECRET", conflicts_with = "signing_key")]
    signing_key_secret: Option<String>,
}

#[derive(clap::Args)]
struct IngestArgs {
    /// Bearer token that may POST events to /api/v1/events (set it from a Secret). In a
    /// cluster, service accounts allowed to `create` auditevents.compliance.behavry.io may too.
    #[arg(long, env = "SOC2_INGEST_TOKEN", hide_env_values = true)]
    ingest_token: Option<String>,
    /// Largest accepted POST /api/v1/events body, in bytes (larger: 413).
    #[arg(long, env = "SOC2_MAX_INGEST_BYTES", default_value_t = soc2_operator::http::ingest::DEFAULT_MAX_BYTES)]
    max_ingest_bytes: usize,
}

impl IngestArgs {
    fn config(self) -> soc2_operator::http::ingest::IngestConfig {
        soc2_operator::http::ingest::IngestConfig {
            token: self.ingest_token.filter(|t| !t.is_empty()),
            max_bytes: self.max_ingest_bytes,
        }
    }
}

#[derive(clap::Args)]
struct SigningArgs {
    /// Ed25519 private key (PKCS#8 PEM, `openssl genpkey -algorithm ed25519`) that signs chain
    /// checkpoints and JSON exports.
    #[arg(long, env = "SOC2_SIGNING_KEY")]
    signing_key: Option<PathBuf>,
}

impl SigningArgs {
    fn load(&self) -> Result<Option<ed25519_dalek::SigningKey>> {
        let Some(path) = &self.signing_key else {
            return Ok(None);
        };
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("reading the signing key {}", path.display()))?;
        Ok(Some(
            evidence::checkpoint::signing_key_from_pem(&pem)
                .with_context(|| format!("reading the signing key {}", path.display()))?,
        ))
    }
}

#[derive(clap::Args)]
struct StoreArgs {
    /// Evidence store URL: `sqlite://PATH` (embedded) or `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
    #[arg(long, env = "SOC2_EVIDENCE", default_value = evidence::DEFAULT_URL)]
    evidence: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormatArg {
    Pdf,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOn {
    Amber,
    Red,
}

fn main() -> ExitCode {
    one_malloc_arena();
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("starting the async runtime");
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// glibc gives every thread that allocates an arena of its own, each holding on to its freed
/// memory: with the runtime's threads, ~6 MiB of a 1,000-requirement operator's 56 MiB peak
/// (scripts/bench/scale.py). One arena, behind glibc's per-thread caches, cost no measurable speed.
fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// The error and its causes, each cause left out when the message before already says it (our
/// errors name their cause in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run(args) => run_operator(args).await?,
        Command::Serve {
            store,
            paths,
            listen,
            signing,
            ingest,
        } => {
            anyhow::ensure!(
                listen.ip().is_loopback(),
                "serve answers without authentication, so it listens on loopback only, not {listen}"
            );
            manifests::load(&paths)?;
            let state = soc2_operator::http::api::ApiState {
                source: soc2_operator::http::api::Source::Files(paths),
                evidence: std::sync::Arc::new(evidence::LazyStore::new(
                    store.evidence,
                    OpenMode::Existing,
                )),
                auth: None,
                ready: None,
                signing_key: signing.load()?,
                ingest: ingest.config(),
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            tracing::info!(%listen, "serving the compliance API on http://{listen}/api/v1/compliance/soc2/requirements");
            axum::serve(listener, soc2_operator::http::api::router(state))
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
        }
        Command::Checkpoint { store, key } => {
            let pem = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let key = evidence::checkpoint::signing_key_from_pem(&pem)?;
            let store = Store::open(&store.evidence, OpenMode::Existing).await?;
            let checkpoint = store
                .checkpoint(&key, Timestamp::now().as_microsecond())
                .await;
            store.close().await;
            println!("{}", serde_json::to_string_pretty(&checkpoint?)?);
        }
        Command::Verify {
            store,
            public_key,
            bundle,
            record,
        } => {
            let public_key = match &public_key {
                Some(path) => {
                    let pem = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let key = evidence::checkpoint::verifying_key_from_pem(&pem)
                        .with_context(|| format!("reading {}", path.display()))?;
                    Some((key, path.clone()))
                }
                None => None,
            };
            match (bundle, public_key) {
                (Some(bundle), Some((key, _))) => verify_bundle(&bundle, &key)?,
                (_, key) => verify_store(&store.evidence, key, record).await?,
            }
        }
        Command::Crd => print!("{}", crd::crds_yaml()),
        Command::Ingest { store, file } => {
            let store = Store::open(&store.evidence, OpenMode::Create).await?;
            let report = if file.as_os_str() == "-" {
                store.ingest(std::io::stdin().lock()).await
            } else {
                let reader = std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?;
                store.ingest(BufReader::new(reader)).await
            }
            .with_context(|| format!("ingesting {}: nothing was stored", source_name(&file)));
            store.close().await;
            let report = report?;
            println!(
                "ingested {} events ({} duplicates skipped); chain head #{} {}",
                report.accepted,
                report.duplicates,
                report.head.seq,
                hex::encode(report.head.hash)
            );
        }
        Command::Evaluate {
            store,
            paths,
            at,
            output,
            fail_on,
            record_history,
        } => {
            let found = manifests::load(&paths)?;
            let at = at.unwrap_or_else(Timestamp::now);
            let opened = Store::open(&store.evidence, OpenMode::Existing)
                .await
                .map_err(|e| e.to_string());
            let evaluated = offline::evaluate(
                opened.as_ref().map_err(Clone::clone),
                found,
                at,
                record_history,
            )
            .await;
            if let Ok(store) = &opened {
                store.close().await;
            }
            print_evaluated(&evaluated, output, at)?;
            if let Some(reason) = evaluated.outage {
                anyhow::bail!("{reason}: every requirement is Unknown");
            }
            let worst_allowed = match fail_on {
                Some(FailOn::Amber) => State::Green,
                Some(FailOn::Red) => State::Amber,
                None => State::Unknown,
            };
            let failing = evaluated.requirements.iter().any(|r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.state)
                    .is_some_and(|s| s > worst_allowed && s != State::Unknown)
            });
            if failing {
                return Ok(ExitCode::from(3));
            }
        }
        Command::Export {
            store,
            format,
            paths,
            at,
            output,
            paper,
            signing,
        } => {
            let key = signing.load()?;
            let found = manifests::load(&paths)?;
            let at = at.unwrap_or_else(Timestamp::now);
            let report = found.reports.first().cloned();
            let store = Store::open(&store.evidence, OpenMode::Existing).await?;
            let mut evaluated = offline::evaluate(Ok(&store), found, at, false).await;
            if let Some(reason) = evaluated.outage {
                store.close().await;
                anyhow::bail!("{reason}: nothing exported");
            }
            if let Some(report) = &report {
                evaluated
                    .requirements
                    .retain(|r| posture::selects(report, r));
            }
            let organization = report.as_ref().and_then(|r| r.spec.organization.as_ref());
            let document = export::gather(
                &store,
                &evaluated.requirements,
                organization,
                at,
                report.as_ref().map_or(90, |r| r.spec.history_days),
                key.as_ref(),
            )
            .await;
            store.close().await;
            let document = document?;
            let bytes = match format {
                ExportFormatArg::Pdf => export::pdf::render(&document, paper),
                ExportFormatArg::Csv => export::csv::requirements(&document).into_bytes(),
                ExportFormatArg::Json => export::json::render(&document, key.as_ref()).into_bytes(),
            };
            write_whole(&output, &bytes)?;
        }
        Command::ExportSchema => print!("{}", export::json::schema()),
        Command::DemoData {
            days,
            events_per_day,
            seed,
            at,
            output,
        } => {
            let options = demo::DemoOptions {
                days,
                events_per_day,
                seed,
                end: at.unwrap_or_else(Timestamp::now),
            };
            let written = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    demo::write_events(&options, &mut BufWriter::new(file))?
                }
                None => {
                    demo::write_events(&options, &mut BufWriter::new(std::io::stdout().lock()))?
                }
            };
            tracing::info!(events = written, days, "demo evidence written");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_operator(args: RunArgs) -> Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster, KUBECONFIG or ~/.kube/config)")?;
    let identity = args.identity.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let own_namespace = args
        .lease_namespace
        .or(args.watch_namespace.clone())
        .unwrap_or_else(|| "default".into());
    let signing_key = match &args.signing_key_secret {
        Some(name) => Some(signing_key_from_secret(&client, &own_namespace, name).await?),
        None => args.signing.load()?,
    };
    let leadership = (!args.disable_leader_election).then_some(controller::Leadership {
        lease_name: args.lease_name,
        namespace: own_namespace,
        duration: args.lease_duration,
        grace: args.lease_grace,
    });
    let config = controller::Config {
        evidence: args.store.evidence,
        requeue: args.requeue_interval,
        namespace: args.watch_namespace,
        identity,
        integrity_interval: args.integrity_interval,
        signing_key,
        ingest: args.ingest.config(),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
            tracing::info!("shutting down");
            shutdown.cancel();
        });
    }
    controller::run(client, config, args.http_addr, leadership, shutdown).await?;
    Ok(())
}

fn verify_bundle(path: &std::path::Path, key: &ed25519_dalek::VerifyingKey) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let verified = export::bundle::verify(&bytes, key)
        .with_context(|| format!("{} is not a genuine signed export", path.display()))?;
    println!(
        "bundle ok: signed export of {} requirements, {} events recomputed, chain head #{} {} under a valid checkpoint",
        verified.requirements, verified.events, verified.head_seq, verified.head_hash
    );
    Ok(())
}

async fn verify_store(
    url: &str,
    key: Option<(ed25519_dalek::VerifyingKey, PathBuf)>,
    record: bool,
) -> Result<()> {
    let store = Store::open(url, OpenMode::Existing).await?;
    let result = async {
        if let Some((key, key_path)) = key {
            let latest = store
                .latest_checkpoint()
                .await?
                .context("the store holds no signed checkpoint")?;
            anyhow::ensure!(
                latest.public_key == key.to_bytes(),
                "the latest checkpoint is signed by {}, not by the key in {}",
                hex::encode(latest.public_key),
                key_path.display(),
            );
        }
        let verification = store.verify(|n| eprintln!("verified {n} events…")).await?;
        if record {
            store
                .record(verification.to_event("system:soc2-operator/cli", Timestamp::now()))
                .await?;
        }
        Ok(verification)
    }
    .await;
    store.close().await;
    let verification = result?;
    if let Some(broken) = verification.broken {
        anyhow::bail!(
            "{broken} ({} events verified before it)",
            verification.verified
        );
    }
    if let Some(rollup) = verification.rollup {
        anyhow::bail!(
            "{rollup} (the chain itself holds: {} events)",
            verification.verified
        );
    }
    println!(
        "chain ok: {} events, head #{} {}",
        verification.verified,
        verification.head.seq,
        hex::encode(verification.head.hash)
    );
    Ok(())
}

async fn signing_key_from_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<ed25519_dalek::SigningKey> {
    let what = || format!("reading the signing key from Secret {namespace}/{name}");
    let secret =
        kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), namespace)
            .get(name)
            .await
            .with_context(what)?;
    let pem = secret
        .data
        .as_ref()
        .and_then(|d| d.get("signing-key.pem"))
        .with_context(|| format!("{}: it has no key signing-key.pem", what()))?;
    let pem = std::str::from_utf8(&pem.0).with_context(what)?;
    evidence::checkpoint::signing_key_from_pem(pem).with_context(what)
}

fn print_evaluated(evaluated: &offline::Evaluated, output: Output, at: Timestamp) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match output {
        Output::Table => {
            write!(
                stdout,
                "{}",
                posture::table::requirements_table(&evaluated.requirements, at)
            )?;
            if !evaluated.reports.is_empty() {
                write!(
                    stdout,
                    "\n{}",
                    posture::table::reports_table(&evaluated.reports, at)
                )?;
            }
        }
        Output::Json | Output::Yaml => {
            let mut items = Vec::new();
            for r in &evaluated.requirements {
                items.push(serde_json::to_value(r)?);
            }
            for r in &evaluated.reports {
                items.push(serde_json::to_value(r)?);
            }
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            if output == Output::Json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                write!(stdout, "{}", serde_saphyr::to_string(&list)?)?;
            }
        }
    }
    Ok(())
}

fn source_name(file: &std::path::Path) -> String {
    if file.as_os_str() == "-" {
        "standard input".into()
    } else {
        file.display().to_string()
    }
}

/// Writes a file under a temporary name beside it, then renames it into place, so no reader sees
/// half of it.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .context("the output needs a file name")?
        .to_string_lossy();
    let temporary = path.with_file_name(format!(".{file_name}.partial"));
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}
