//! Exports for auditors and GRC tools: one document model, rendered as CSV, JSON or PDF.
//! Rendering is pure (no I/O); sinks come separately.

pub mod bundle;
pub mod csv;
pub mod json;
pub mod pdf;
pub mod sink;
pub mod trend;

use jiff::Timestamp;
use kube::ResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::crd::{
    ControlStatus, EventSummary, Organization, QueryStatus, Soc2Requirement, State, Summary,
};
use crate::evidence::checkpoint::ChainState;
use crate::evidence::{ChainedEvent, Store};

/// Version of the JSON export's schema (`schemas/posture-export.v1.json`).
pub const SCHEMA_VERSION: &str = "soc2-operator.posture-export/v1";

/// The posture of a set of requirements at one instant, as every format shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "soc2-operator posture export, v1")]
pub struct PostureExport {
    /// Always `soc2-operator.posture-export/v1`.
    pub schema_version: String,
    /// The evaluation instant the export describes (not the wall clock: the same data at the
    /// same instant gives the same bytes).
    pub generated_at: Timestamp,
    pub organization: ExportOrganization,
    pub period: Period,
    pub summary: Summary,
    /// Head of the evidence hash chain the posture was computed from.
    pub chain_head: ExportChainHead,
    /// The newest signed checkpoint of the chain (docs/evidence-chain.md), when the store has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<ExportCheckpoint>,
    /// Requirements ordered by id, with controls, query and recent events.
    pub requirements: Vec<ExportRequirement>,
    /// The same facts as flat records, one per control, for GRC tools' custom-integration APIs.
    pub records: Vec<ControlRecord>,
    /// Each requirement's daily state over the history period (oldest day first): the trend.
    #[serde(default)]
    pub trend: Trend,
    /// Every event the requirements cite (their recent events), in full and in chain order, so
    /// that a holder of the export can recompute each one's chain hash (docs/evidence-chain.md).
    #[serde(default)]
    pub evidence: Vec<ExportEvent>,
    /// Ed25519 signature of the whole export by the operator's key; absent when the export was
    /// made without one. See docs/evidence-chain.md for the signed bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ExportSignature>,
}

/// Daily states of the requirements over `from`..=`to` (UTC days, YYYY-MM-DD).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Trend {
    pub from: String,
    pub to: String,
    /// One row per requirement, ordered by id.
    pub rows: Vec<TrendRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrendRow {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green_since: Option<Timestamp>,
    /// Days with a recorded state, oldest first; a day missing had no evaluation.
    pub days: Vec<TrendDay>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrendDay {
    pub date: String,
    pub state: State,
}

/// One stored event with its chain link: `hash` = the chain hash of the event at `seq` after
/// `prevHash`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportEvent {
    pub seq: i64,
    pub id: String,
    /// Microseconds since the Unix epoch, as hashed.
    pub occurred_at_micros: i64,
    pub occurred_at: Timestamp,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The attributes as stored and hashed: canonical JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<String>,
    /// Hex.
    pub prev_hash: String,
    /// Hex.
    pub hash: String,
}

impl From<&ChainedEvent> for ExportEvent {
    fn from(c: &ChainedEvent) -> Self {
        let e = &c.event;
        ExportEvent {
            seq: c.seq,
            id: e.id.clone(),
            occurred_at_micros: e.occurred_at,
            occurred_at: crate::posture::timestamp(e.occurred_at),
            event_type: e.event_type.clone(),
            actor: e.actor.clone(),
            outcome: e.outcome.clone(),
            resource: e.resource.clone(),
            attributes: e.attributes.clone(),
            prev_hash: hex::encode(c.prev_hash),
            hash: hex::encode(c.hash),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportSignature {
    /// Always `Ed25519`.
    pub algorithm: String,
    /// Hex (32 bytes).
    pub public_key: String,
    /// Hex (64 bytes).
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportOrganization {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Who the report is prepared for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auditor: Option<String>,
    pub signatories: Vec<ExportSignatory>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExportSignatory {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The audit period covered: the widest requirement window, ending at the evaluation instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExportChainHead {
    /// Sequence number of the newest event (0 for an empty store).
    pub seq: i64,
    /// Its chain hash, hex.
    pub hash: String,
}

/// A signed checkpoint: Ed25519 `signature` by `publicKey` over the documented message built from
/// `seq`, `hash` and `signedAt`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportCheckpoint {
    pub seq: i64,
    /// Hex.
    pub hash: String,
    pub signed_at: Timestamp,
    /// Ed25519 public key, hex (32 bytes).
    pub public_key: String,
    /// Ed25519 signature, hex (64 bytes).
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportRequirement {
    pub id: String,
    /// The Soc2Requirement's name.
    pub name: String,
    pub title: String,
    pub state: State,
    pub coverage: String,
    pub events_in_window: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evidence_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub green_since: Option<Timestamp>,
    pub controls: Vec<ExportControl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryStatus>,
    pub recent_events: Vec<EventSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportControl {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub cadence: String,
    pub event_types: Vec<String>,
    pub state: State,
    pub events: u64,
    pub covered_intervals: u32,
    pub total_intervals: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evidence_at: Option<Timestamp>,
}

/// One control's posture as a flat record (strings and numbers only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlRecord {
    /// Stable key: `<requirement id>/<control name>`.
    pub record_id: String,
    pub requirement_id: String,
    pub requirement_title: String,
    pub requirement_state: State,
    pub control_name: String,
    pub control_title: String,
    pub control_state: State,
    pub covered_intervals: u32,
    pub total_intervals: u32,
    pub events: u64,
    /// RFC 3339, or empty when there is none.
    pub last_evidence_at: String,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub organization: String,
}

/// Reads from the store what an export states besides the statuses — the chain head, sealed by a
/// checkpoint when there is a key, and the cited events in full — and builds the export.
pub async fn gather(
    store: &Store,
    requirements: &[Soc2Requirement],
    organization: Option<&Organization>,
    at: Timestamp,
    history_days: u32,
    key: Option<&ed25519_dalek::SigningKey>,
) -> crate::Result<PostureExport> {
    let chain = store
        .export_state(key, Timestamp::now().as_microsecond())
        .await?;
    let cited: Vec<String> = requirements
        .iter()
        .filter_map(|r| r.status.as_ref())
        .flat_map(|s| s.recent_events.iter().map(|e| e.id.clone()))
        .collect();
    let evidence = store.events_by_id(&cited).await?;
    let trend = trend::gather(store, requirements, at, history_days).await?;
    Ok(PostureExport {
        trend,
        ..posture_export(requirements, organization, at, &chain, &evidence)
    })
}

/// Builds the export from evaluated requirements.
pub fn posture_export(
    requirements: &[Soc2Requirement],
    organization: Option<&Organization>,
    at: Timestamp,
    chain: &ChainState,
    evidence: &[ChainedEvent],
) -> PostureExport {
    let head = &chain.head;
    let mut requirements: Vec<&Soc2Requirement> = requirements.iter().collect();
    requirements.sort_by(|a, b| (&a.spec.id, a.name_any()).cmp(&(&b.spec.id, b.name_any())));
    let widest = requirements
        .iter()
        .map(|r| r.spec.window.micros())
        .max()
        .unwrap_or(0);
    let period = Period {
        start: crate::posture::timestamp(at.as_microsecond() - widest),
        end: at,
    };
    let organization = organization.map_or_else(
        || ExportOrganization {
            name: "Unnamed organisation".into(),
            ..Default::default()
        },
        |o| ExportOrganization {
            name: o.name.clone(),
            system: o.system.clone(),
            auditor: o.auditor.clone(),
            signatories: o
                .signatories
                .iter()
                .map(|s| ExportSignatory {
                    name: s.name.clone(),
                    title: s.title.clone(),
                })
                .collect(),
        },
    );

    let exported: Vec<ExportRequirement> = requirements
        .iter()
        .map(|r| {
            let status = r.status.clone().unwrap_or_default();
            let controls = r
                .spec
                .controls
                .iter()
                .map(|c| {
                    let found = status.controls.iter().find(|s| s.name == c.name);
                    let judged = found.cloned().unwrap_or(ControlStatus {
                        state: State::Unknown,
                        ..Default::default()
                    });
                    ExportControl {
                        name: c.name.clone(),
                        title: c.title.clone(),
                        cadence: r.spec.cadence_of(c).to_string(),
                        event_types: c.evidence.event_types.clone(),
                        state: judged.state,
                        events: judged.events,
                        covered_intervals: judged.covered_intervals,
                        total_intervals: judged.total_intervals,
                        last_evidence_at: judged.last_evidence_at,
                    }
                })
                .collect();
            ExportRequirement {
                id: r.spec.id.clone(),
                name: r.name_any(),
                title: r.spec.title.clone(),
                state: status.state.unwrap_or_default(),
                coverage: status.coverage.unwrap_or_default(),
                events_in_window: status.events_in_window.unwrap_or_default(),
                window_start: status.window_start,
                last_evidence_at: status.last_evidence_at,
                green_since: status.green_since,
                controls,
                query: status.query,
                recent_events: status.recent_events,
            }
        })
        .collect();

    let records = exported
        .iter()
        .flat_map(|r| {
            r.controls.iter().map(|c| ControlRecord {
                record_id: format!("{}/{}", r.id, c.name),
                requirement_id: r.id.clone(),
                requirement_title: r.title.clone(),
                requirement_state: r.state,
                control_name: c.name.clone(),
                control_title: c.title.clone().unwrap_or_else(|| c.name.clone()),
                control_state: c.state,
                covered_intervals: c.covered_intervals,
                total_intervals: c.total_intervals,
                events: c.events,
                last_evidence_at: c
                    .last_evidence_at
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                period_start: period.start,
                period_end: period.end,
                organization: organization.name.clone(),
            })
        })
        .collect();

    let count = |state: State| exported.iter().filter(|r| r.state == state).count() as u32;
    PostureExport {
        schema_version: SCHEMA_VERSION.into(),
        generated_at: at,
        summary: Summary {
            total: exported.len() as u32,
            green: count(State::Green),
            amber: count(State::Amber),
            red: count(State::Red),
            unknown: count(State::Unknown),
        },
        chain_head: ExportChainHead {
            seq: head.seq,
            hash: hex::encode(head.hash),
        },
        checkpoint: chain.checkpoint.as_ref().map(|c| ExportCheckpoint {
            seq: c.seq,
            hash: hex::encode(c.hash),
            signed_at: crate::posture::timestamp(c.signed_at),
            public_key: hex::encode(c.public_key),
            signature: hex::encode(c.signature),
        }),
        organization,
        period,
        requirements: exported,
        records,
        trend: Trend::default(),
        evidence: evidence.iter().map(ExportEvent::from).collect(),
        signature: None,
    }
}
