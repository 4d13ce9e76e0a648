//! Prometheus metrics: reconcile counts, errors and durations, and the posture gauges (state,
//! green since, report summary), read from the caches at every scrape.

use std::time::Instant;

use kube::ResourceExt;
use kube::runtime::reflector::Store as Cache;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::Error;
use crate::crd::{PostureReport, Soc2Requirement, State};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    pub error: String,
}

pub struct Metrics {
    pub registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<ControllerLabels, Histogram>,
    pub status_writes: Family<ControllerLabels, Counter>,
}

impl Metrics {
    /// Metrics of one process; the state gauge reads the requirement cache at every scrape, so
    /// a deleted requirement's series disappear with it.
    pub fn new(requirements: Cache<Soc2Requirement>, reports: Cache<PostureReport>) -> Self {
        let mut registry = Registry::with_prefix("soc2");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        let status_writes = Family::<ControllerLabels, Counter>::default();
        registry.register("reconcile", "Reconciliations", reconciles.clone());
        registry.register("reconcile_errors", "Failed reconciliations", errors.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Reconciliation duration",
            duration.clone(),
        );
        registry.register(
            "status_writes",
            "Status writes (server-side applies)",
            status_writes.clone(),
        );
        registry.register_collector(Box::new(PostureGauges {
            requirements,
            reports,
        }));
        Metrics {
            registry,
            reconciles,
            errors,
            duration,
            status_writes,
        }
    }

    /// Counts a reconciliation and, when dropped, records its duration.
    pub fn reconcile_timer(&self, controller: &str) -> ReconcileTimer<'_> {
        let labels = ControllerLabels {
            controller: controller.into(),
        };
        self.reconciles.get_or_create(&labels).inc();
        ReconcileTimer {
            metrics: self,
            labels,
            start: Instant::now(),
        }
    }

    pub fn reconcile_error(&self, controller: &str, error: &Error) {
        let labels = ErrorLabels {
            controller: controller.into(),
            error: error.metric_label().into(),
        };
        self.errors.get_or_create(&labels).inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    labels: ControllerLabels,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .get_or_create(&self.labels)
            .observe(self.start.elapsed().as_secs_f64());
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    namespace: String,
    name: String,
    id: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequirementLabels {
    namespace: String,
    name: String,
    id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportLabels {
    namespace: String,
    report: String,
    state: String,
}

/// - `soc2_requirement_state{namespace,name,id,state}`: 1 for the current state, 0 for the others;
/// - `soc2_requirement_green_since_timestamp_seconds{namespace,name,id}`: when a Green
///   requirement's streak began (no series while it is not Green);
/// - `soc2_posture_requirements{namespace,report,state}`: a PostureReport's summary.
#[derive(Debug)]
struct PostureGauges {
    requirements: Cache<Soc2Requirement>,
    reports: Cache<PostureReport>,
}

impl Collector for PostureGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let requirements = self.requirements.state();
        let gauge = prometheus_client::metrics::MetricType::Gauge;
        let mut metric = encoder.encode_descriptor(
            "requirement_state",
            "Current posture of a Soc2Requirement: 1 for its state, 0 for the others",
            None,
            gauge,
        )?;
        for requirement in &requirements {
            let Some(current) = requirement.status.as_ref().and_then(|s| s.state) else {
                continue;
            };
            for state in State::ALL {
                let labels = StateLabels {
                    namespace: requirement.namespace().unwrap_or_default(),
                    name: requirement.name_any(),
                    id: requirement.spec.id.clone(),
                    state: state.to_string(),
                };
                ConstGauge::new(i64::from(state == current))
                    .encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "requirement_green_since_timestamp_seconds",
            "Start of a Green Soc2Requirement's current streak, Unix seconds",
            None,
            gauge,
        )?;
        for requirement in &requirements {
            let Some(status) = requirement.status.as_ref() else {
                continue;
            };
            if let (Some(State::Green), Some(since)) = (status.state, status.green_since) {
                let labels = RequirementLabels {
                    namespace: requirement.namespace().unwrap_or_default(),
                    name: requirement.name_any(),
                    id: requirement.spec.id.clone(),
                };
                ConstGauge::new(since.as_second()).encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "posture_requirements",
            "Requirements a PostureReport selects, by state",
            None,
            gauge,
        )?;
        for report in self.reports.state() {
            let Some(summary) = report.status.as_ref().and_then(|s| s.summary.as_ref()) else {
                continue;
            };
            for (state, count) in [
                (State::Green, summary.green),
                (State::Amber, summary.amber),
                (State::Red, summary.red),
                (State::Unknown, summary.unknown),
            ] {
                let labels = ReportLabels {
                    namespace: report.namespace().unwrap_or_default(),
                    report: report.name_any(),
                    state: state.to_string(),
                };
                ConstGauge::new(i64::from(count)).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
