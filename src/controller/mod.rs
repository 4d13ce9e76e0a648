//! The in-cluster operator: Soc2Requirement and PostureReport reconcilers, gated on a leader
//! Lease. Each reconciler reads as fetch → evaluate → write status → publish events → requeue.

mod integrity;
mod metrics;
mod report;
mod requirement;

pub use metrics::Metrics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::Store as Cache;
use kube::{Client, ResourceExt};
use tokio::sync::Mutex;

use crate::crd::Soc2Requirement;
use crate::evidence::{LazyStore, OpenMode};

/// Reconciler failures (a store outage is not one: it is a status).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("serialising status: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Serialize(_) => "serialize",
        }
    }
}

/// Settings of one operator process.
#[derive(Clone, Debug)]
pub struct Config {
    /// Evidence store URL.
    pub evidence: String,
    /// How soon a requirement is re-evaluated when nothing else triggers it.
    pub requeue: Duration,
    /// Watch only this namespace (all when `None`).
    pub namespace: Option<String>,
    /// Name of this replica in Events and the Lease.
    pub identity: String,
    /// How often the leader verifies the whole chain (and then signs a checkpoint).
    pub integrity_interval: Duration,
    /// Ed25519 key for checkpoints and signed exports; none: nothing is signed.
    pub signing_key: Option<ed25519_dalek::SigningKey>,
    /// Who may POST events, and how much at once.
    pub ingest: crate::http::ingest::IngestConfig,
}

/// Shared state of the reconcilers.
pub struct Context {
    pub client: Client,
    pub evidence: Arc<LazyStore>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    /// Cached requirements (the requirement controller's reflector), read by the report reconciler.
    pub requirements: Cache<Soc2Requirement>,
    /// Consecutive store failures per requirement, for the retry backoff.
    failures: Mutex<HashMap<ObjectRef<Soc2Requirement>, u32>>,
    /// For PostureReport webhooks.
    pub http: reqwest::Client,
}

impl Context {
    pub fn new(
        client: Client,
        config: Config,
        metrics: Arc<Metrics>,
        requirements: Cache<Soc2Requirement>,
    ) -> Self {
        let reporter = Reporter {
            controller: crate::crd::FIELD_MANAGER.into(),
            instance: Some(config.identity.clone()),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            evidence: Arc::new(LazyStore::new(config.evidence.clone(), OpenMode::Create)),
            client,
            metrics,
            config,
            requirements,
            failures: Mutex::new(HashMap::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Next retry after a store failure: 2 s doubling, at most the requeue interval.
    async fn backoff(&self, requirement: &Soc2Requirement) -> Duration {
        let mut failures = self.failures.lock().await;
        let n = failures
            .entry(ObjectRef::from_obj(requirement))
            .or_default();
        *n = n.saturating_add(1);
        Duration::from_secs(2u64.saturating_pow(*n).min(u64::MAX / 2)).min(self.config.requeue)
    }

    async fn recovered(&self, requirement: &Soc2Requirement) {
        self.failures
            .lock()
            .await
            .remove(&ObjectRef::from_obj(requirement));
    }
}

/// Writes `status` onto `obj` with one server-side apply (field manager `soc2-operator`), and
/// counts the write for `controller`.
async fn apply_status<K>(
    ctx: &Context,
    obj: &K,
    status: &impl serde::Serialize,
    controller: &str,
) -> Result<(), Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let patch = serde_json::json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status});
    let params = kube::api::PatchParams::apply(crate::crd::FIELD_MANAGER).force();
    api::<K>(&ctx.client, obj)
        .patch_status(&obj.name_any(), &params, &kube::api::Patch::Apply(&patch))
        .await?;
    ctx.metrics
        .status_writes
        .get_or_create(&metrics::ControllerLabels {
            controller: controller.into(),
        })
        .inc();
    Ok(())
}

/// Namespaced API for a resource (the object's namespace).
fn api<K>(client: &Client, obj: &impl ResourceExt) -> kube::Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    kube::Api::namespaced(
        client.clone(),
        &obj.namespace().unwrap_or_else(|| "default".into()),
    )
}

pub use run::{Leadership, RunError, run};

mod run;
