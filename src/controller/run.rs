//! Wiring of one operator process: HTTP plumbing, leader election, both controllers, shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;

use super::{Context, Metrics, integrity, report, requirement};
use crate::crd::{PostureReport, Soc2Requirement};
use crate::http::Health;
use crate::posture::selects;

/// Reconciles in flight per controller (the store serves 4 connections at a time anyway).
const RECONCILE_CONCURRENCY: u16 = 4;
/// Requirement changes buffered per subscriber of the shared watch (each an `Arc`).
const SHARED_STREAM_BUFFER: usize = 256;
/// The annotation `kubectl apply` keeps a whole copy of the applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Leader election on a coordination.k8s.io Lease.
#[derive(Clone, Debug)]
pub struct Leadership {
    pub lease_name: String,
    pub namespace: String,
    /// Seconds a leader's claim lasts without renewal.
    pub duration: u64,
    /// Seconds before expiry that the leader renews.
    pub grace: u64,
}

/// Why the operator stopped other than by a shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("serving HTTP on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    #[error("lost leadership of the Lease; exiting so that a fresh process competes again")]
    LostLeadership,
}

/// Runs until `shutdown` is cancelled (SIGTERM) or leadership is lost.
pub async fn run(
    client: Client,
    config: super::Config,
    http_addr: SocketAddr,
    leadership: Option<Leadership>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let (requirements, reports): (Api<Soc2Requirement>, Api<PostureReport>) =
        match &config.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
    // Bounded concurrency: a thousand requirements at start-up queue rather than all holding an
    // evaluation (and a store connection wait) in memory at once.
    let reconcile_config =
        kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY);
    // One watch of the requirements feeds their cache, their controller and the reports'
    // controller, each object pruned of what no reconcile reads (managedFields, kubectl's
    // last-applied copy of the spec): with a thousand requirements the cache is most of the memory.
    let (requirement_cache, writer) = reflector::store_shared(SHARED_STREAM_BUFFER);
    let subscribe = || {
        writer
            .subscribe()
            .expect("a shared store's writer makes subscribers")
    };
    let (requirement_changes, requirement_triggers) = (subscribe(), subscribe());
    let requirement_watch = watcher(requirements, watcher::Config::default())
        .default_backoff()
        .modify(|r: &mut Soc2Requirement| {
            r.managed_fields_mut().clear();
            r.annotations_mut().remove(LAST_APPLIED);
        })
        .reflect_shared(writer);
    let requirement_controller =
        Controller::for_shared_stream(requirement_changes, requirement_cache.clone())
            .with_config(reconcile_config.clone());
    let report_controller =
        Controller::new(reports, watcher::Config::default()).with_config(reconcile_config);
    let report_cache = report_controller.store();
    let metrics = Arc::new(Metrics::new(
        requirement_cache.clone(),
        report_cache.clone(),
    ));
    let health = Arc::new(Health::default());

    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|source| RunError::Http {
            addr: http_addr,
            source,
        })?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(http_addr), "serving /healthz, /readyz and /metrics");
    let identity = config.identity.clone();
    let ctx = Arc::new(Context::new(
        client.clone(),
        config,
        metrics.clone(),
        requirement_cache.clone(),
    ));
    let api = crate::http::api::ApiState {
        source: crate::http::api::Source::Cluster {
            requirements: requirement_cache.clone(),
            reports: report_cache.clone(),
        },
        evidence: ctx.evidence.clone(),
        auth: Some(client.clone()),
        ready: Some(health.clone()),
        signing_key: ctx.config.signing_key.clone(),
        ingest: ctx.config.ingest.clone(),
    };
    let router =
        crate::http::router(metrics.clone(), health.clone()).merge(crate::http::api::router(api));
    let http = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future(),
    );

    // Only the leader reconciles; a standby waits here.
    let lost = CancellationToken::new();
    let mut lease = None;
    if let Some(l) = &leadership {
        let manager = LeaseManagerBuilder::new(client.clone(), &l.lease_name)
            .with_namespace(&l.namespace)
            .with_identity(&identity)
            .with_duration(l.duration)
            .with_grace(l.grace)
            .build()
            .await?;
        let (mut is_leader, task) = manager.watch().await;
        tracing::info!(lease = %l.lease_name, %identity, "waiting for leadership");
        while !*is_leader.borrow_and_update() {
            tokio::select! {
                changed = is_leader.changed() => if changed.is_err() { return Err(RunError::LostLeadership) },
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
        tracing::info!(lease = %l.lease_name, "leading");
        // Watch for a lost lease until shutdown; this receiver must go with it, since the lease
        // task releases the Lease only when every receiver is gone.
        let mut watcher = is_leader.clone();
        let (lost_tx, shutdown_rx) = (lost.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = watcher.changed() => {
                        if changed.is_err() || !*watcher.borrow() {
                            lost_tx.cancel();
                            break;
                        }
                    }
                    _ = shutdown_rx.cancelled() => break,
                }
            }
        });
        lease = Some((is_leader, task));
    }

    let stop = CancellationToken::new();
    {
        let (stop, shutdown, lost) = (stop.clone(), shutdown.clone(), lost.clone());
        tokio::spawn(async move {
            tokio::select! { _ = shutdown.cancelled() => {}, _ = lost.cancelled() => {} }
            stop.cancel();
        });
    }

    let reports_run = report_controller
        // A requirement's change (its status above all) re-runs the reports that select it.
        .watches_shared_stream(
            requirement_triggers,
            move |requirement: Arc<Soc2Requirement>| {
                report_cache
                    .state()
                    .into_iter()
                    .filter(|report| selects(report, &requirement))
                    .map(|report| ObjectRef::from_obj(report.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(report::reconcile, report::error_policy, ctx.clone())
        .for_each(|_| async {});
    let requirements_run = requirement_controller
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(
            requirement::reconcile,
            requirement::error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    {
        let health = health.clone();
        tokio::spawn(async move {
            // Re-poll: the store's readiness signal wakes only its latest waiter, which is the
            // controller's own.
            loop {
                match tokio::time::timeout(
                    Duration::from_millis(250),
                    requirement_cache.wait_until_ready(),
                )
                .await
                {
                    Ok(Ok(())) => {
                        health.set_ready();
                        tracing::info!("watches synced: ready");
                        break;
                    }
                    Ok(Err(_)) => break,
                    Err(_) => {}
                }
            }
        });
    }
    let integrity_run = integrity::run(ctx.clone(), stop.clone());
    let requirement_watch = requirement_watch
        .take_until(stop.clone().cancelled_owned())
        .for_each(|event| async {
            if let Err(error) = event {
                tracing::warn!(%error, "watching Soc2Requirements");
            }
        });
    futures::join!(
        requirement_watch,
        requirements_run,
        reports_run,
        integrity_run
    );

    // Dropping every receiver makes the lease task release the Lease for a fast hand-over.
    if let Some((is_leader, task)) = lease {
        drop(is_leader);
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), http).await;
    if lost.is_cancelled() && !shutdown.is_cancelled() {
        return Err(RunError::LostLeadership);
    }
    Ok(())
}
