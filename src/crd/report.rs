// Each `printcolumn(...)` repeats the same keys, which clippy mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::State;

/// The daily posture job over the requirements it selects in its namespace.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "compliance.behavry.io",
    version = "v1alpha1",
    kind = "PostureReport",
    plural = "posturereports",
    shortname = "posture",
    category = "compliance",
    namespaced,
    status = "PostureReportStatus",
    derive = "PartialEq",
    doc = "The daily SOC 2 posture job: aggregates selected Soc2Requirements, keeps history and publishes exports.",
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Green", type_ = "integer", json_path = ".status.summary.green"),
    printcolumn(name = "Amber", type_ = "integer", json_path = ".status.summary.amber"),
    printcolumn(name = "Red", type_ = "integer", json_path = ".status.summary.red"),
    printcolumn(name = "Last Run", type_ = "date", json_path = ".status.lastRunAt"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostureReportSpec {
    /// Requirements in this namespace that the report covers; empty selects all.
    #[serde(default)]
    pub selector: LabelSelector,
    /// Cron expression (UTC) of the posture job (default daily at 06:00).
    #[serde(default = "default_schedule")]
    #[schemars(length(min = 1))]
    pub schedule: String,
    /// Export formats to publish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub formats: Vec<ExportFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Days of daily posture kept in the status history (default 90).
    #[serde(default = "default_history_days")]
    #[schemars(range(min = 1, max = 3660))]
    pub history_days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
    /// An Alertmanager-compatible webhook receiver: POSTed a firing alert when a selected
    /// requirement dips (to Amber or Red) and a resolved one when it recovers to Green.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Webhook {
    /// `http://` or `https://` URL, e.g. Alertmanager-compatible receivers such as a chat bridge.
    #[schemars(pattern("^https?://.+"))]
    pub url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Pdf,
    Csv,
    Json,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapDestination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_store: Option<ObjectStoreDestination>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapDestination {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectStoreDestination {
    /// `s3://bucket/prefix` or `file:///path`.
    #[schemars(pattern("^(s3|file)://.+"))]
    pub url: String,
    /// Secret in this namespace holding the credentials for `s3://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

/// Who the report is for: the cover letter and signature block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Organization {
    #[schemars(length(min = 1))]
    pub name: String,
    /// The system under audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Who the report is prepared for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditor: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatories: Vec<Signatory>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signatory {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

fn default_schedule() -> String {
    "0 6 * * *".into()
}

fn default_history_days() -> u32 {
    90
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostureReportStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<RequirementSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub total: u32,
    pub green: u32,
    pub amber: u32,
    pub red: u32,
    pub unknown: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequirementSummary {
    pub id: String,
    pub name: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green_since: Option<Timestamp>,
}

/// One day of the selected requirements' posture: how many were in each state (the day's latest
/// evaluation of each).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryEntry {
    /// UTC day, YYYY-MM-DD.
    pub date: String,
    pub green: u32,
    pub amber: u32,
    pub red: u32,
    #[serde(default)]
    pub unknown: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub format: ExportFormat,
    pub location: String,
    pub sha256: String,
    pub bytes: u64,
    pub generated_at: Timestamp,
}
