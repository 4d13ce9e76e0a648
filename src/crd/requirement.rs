// Each `printcolumn(...)` repeats the same keys, which clippy mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Period, State};

/// A SOC 2 Common Criteria id such as `CC6.6`.
pub const REQUIREMENT_ID_PATTERN: &str = r"^CC[1-9]\.[1-9][0-9]?$";
/// A control name: a DNS label, so that it reads well in metrics and URLs.
pub const CONTROL_NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// Upper bound on intervals per control, so a typo (`1s` over `30d`) cannot make a huge status.
pub const MAX_INTERVALS: i64 = 10_000;

/// One SOC 2 requirement, mapped to the product controls whose audit events evidence it.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "compliance.behavry.io",
    version = "v1alpha1",
    kind = "Soc2Requirement",
    plural = "soc2requirements",
    shortname = "soc2req",
    category = "compliance",
    namespaced,
    status = "Soc2RequirementStatus",
    derive = "PartialEq",
    doc = "A SOC 2 Common Criteria requirement mapped to product controls and the audit events that evidence them.",
    printcolumn(name = "ID", type_ = "string", json_path = ".spec.id"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Coverage", type_ = "string", json_path = ".status.coverage"),
    printcolumn(
        name = "Events",
        type_ = "integer",
        json_path = ".status.eventsInWindow"
    ),
    printcolumn(
        name = "Last Evidence",
        type_ = "date",
        json_path = ".status.lastEvidenceAt"
    ),
    printcolumn(name = "Green Since", type_ = "date", json_path = ".status.greenSince"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Soc2RequirementSpec {
    /// Common Criteria id, e.g. CC6.6.
    #[schemars(pattern(REQUIREMENT_ID_PATTERN))]
    pub id: String,
    /// Human title of the requirement.
    #[schemars(length(min = 1))]
    pub title: String,
    /// How far back evidence counts (default 30d).
    #[serde(default = "default_window")]
    pub window: Period,
    /// Expected interval between evidence, for controls that do not set their own (default 1d).
    #[serde(default = "default_cadence")]
    pub cadence: Period,
    /// Matching events an interval needs to count as covered (default 1).
    #[serde(default = "default_min_events")]
    #[schemars(range(min = 1))]
    pub min_events_per_interval: u32,
    /// Intervals a control may miss and still be Green (default 0).
    #[serde(default)]
    pub tolerance: u32,
    /// The product controls that evidence this requirement; names are unique.
    #[schemars(length(min = 1), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub controls: Vec<Control>,
}

/// A product control and the audit events that evidence it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Control {
    /// Unique within the requirement; a DNS label.
    #[schemars(pattern(CONTROL_NAME_PATTERN), length(max = 63))]
    pub name: String,
    /// Human title, e.g. "Policy Engine allow/deny".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Expected interval between evidence for this control; defaults to the requirement's cadence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<Period>,
    /// Which audit events count as evidence.
    pub evidence: EvidenceSelector,
}

/// A structured selector over audit events; compiled to a parameterised query, never SQL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvidenceSelector {
    /// Event types that count (any of them).
    #[schemars(length(min = 1), inner(length(min = 1)))]
    pub event_types: Vec<String>,
    /// When set, only events with one of these outcomes count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<String>,
}

fn default_window() -> Period {
    "30d".parse().expect("valid literal")
}

fn default_cadence() -> Period {
    "1d".parse().expect("valid literal")
}

fn default_min_events() -> u32 {
    1
}

impl Soc2RequirementSpec {
    /// The cadence a control is judged by.
    pub fn cadence_of<'a>(&'a self, control: &'a Control) -> &'a Period {
        control.cadence.as_ref().unwrap_or(&self.cadence)
    }

    /// Every rule a resource must keep, including those the schema cannot say (cadence within the
    /// window, unique names outside a cluster). Returns every problem, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if !matches_requirement_id(&self.id) {
            problems.push(format!(
                "spec.id: {:?} is not a Common Criteria id like CC6.6",
                self.id
            ));
        }
        if self.title.trim().is_empty() {
            problems.push("spec.title: must not be empty".into());
        }
        if self.min_events_per_interval == 0 {
            problems.push("spec.minEventsPerInterval: must be at least 1".into());
        }
        if self.controls.is_empty() {
            problems.push("spec.controls: at least one control is required".into());
        }
        let window = self.window.micros();
        for (i, control) in self.controls.iter().enumerate() {
            let at = format!("spec.controls[{i}]");
            if !matches_control_name(&control.name) {
                problems.push(format!(
                    "{at}.name: {:?} must be a DNS label (lower-case letters, digits and '-', at most 63)",
                    control.name
                ));
            }
            if self.controls[..i].iter().any(|c| c.name == control.name) {
                problems.push(format!(
                    "{at}.name: duplicate control name {:?}",
                    control.name
                ));
            }
            if control.evidence.event_types.is_empty() {
                problems.push(format!(
                    "{at}.evidence.eventTypes: at least one event type is required"
                ));
            }
            if control
                .evidence
                .event_types
                .iter()
                .chain(&control.evidence.outcomes)
                .any(|s| s.is_empty())
            {
                problems.push(format!(
                    "{at}.evidence: event types and outcomes must not be empty strings"
                ));
            }
            let cadence = self.cadence_of(control);
            if cadence.micros() > window {
                problems.push(format!(
                    "{at}: cadence {cadence} is longer than the window {}: the control could never be judged",
                    self.window
                ));
            } else if (window + cadence.micros() - 1) / cadence.micros() > MAX_INTERVALS {
                problems.push(format!(
                    "{at}: cadence {cadence} cuts the window {} into more than {MAX_INTERVALS} intervals",
                    self.window
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

fn matches_requirement_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CC") else {
        return false;
    };
    let Some((major, minor)) = rest.split_once('.') else {
        return false;
    };
    let digits =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    major.len() == 1 && digits(major) && minor.len() <= 2 && digits(minor)
}

fn matches_control_name(name: &str) -> bool {
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(ok_char)
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// What the controller (or an offline `evaluate`) found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Soc2RequirementStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The instant the posture was judged at (`now`, or `--at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<Timestamp>,
    /// Start of the window `[windowStart, evaluatedAt)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<Timestamp>,
    /// Matching events in the window, summed over the controls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_in_window: Option<u64>,
    /// Covered intervals / all intervals, summed over the controls, e.g. "35/35".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evidence_at: Option<Timestamp>,
    /// When the requirement last turned Green (from the posture history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<ControlStatus>,
    /// The exact audit-event query the state was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryStatus>,
    /// The last (at most 10) supporting events, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_events: Vec<EventSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlStatus {
    pub name: String,
    pub state: State,
    pub events: u64,
    pub covered_intervals: u32,
    pub total_intervals: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evidence_at: Option<Timestamp>,
}

/// A compiled, parameterised query and the values bound to it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryStatus {
    pub sql: String,
    /// Bound values in placeholder order; times are microseconds since the Unix epoch.
    pub parameters: Vec<String>,
}

/// One audit event as a status or an export shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    pub id: String,
    pub occurred_at: Timestamp,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Chain hash of the event, hex.
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Soc2RequirementSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const GOOD: &str = "id: CC6.6\ntitle: Least privilege\ncontrols:\n- name: policy-engine\n  evidence: {eventTypes: [policy.decision]}\n";

    #[test]
    fn defaults_apply() {
        let s = spec(GOOD);
        assert_eq!(s.window.as_str(), "30d");
        assert_eq!(s.cadence.as_str(), "1d");
        assert_eq!(s.min_events_per_interval, 1);
        assert_eq!(s.tolerance, 0);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn ids_and_names() {
        for ok in ["CC1.1", "CC6.6", "CC9.99"] {
            assert!(matches_requirement_id(ok), "{ok}");
        }
        for bad in [
            "cc6.6", "CC6", "CC06.6", "CC6.06", "CC6.6.1", "CC10.1", "CC6.100", "CC6.",
        ] {
            assert!(!matches_requirement_id(bad), "{bad}");
        }
        assert!(matches_control_name("policy-engine"));
        for bad in ["", "Policy", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(!matches_control_name(bad), "{bad}");
        }
    }

    #[test]
    fn cadence_longer_than_window_is_rejected() {
        let mut s = spec(GOOD);
        s.controls[0].cadence = Some("31d".parse().unwrap());
        let problems = s.validate().unwrap_err();
        assert!(
            problems[0].contains("longer than the window"),
            "{problems:?}"
        );
        s.controls[0].cadence = Some("30d".parse().unwrap());
        assert!(
            s.validate().is_ok(),
            "a cadence equal to the window is one interval"
        );
    }

    #[test]
    fn too_many_intervals_are_rejected() {
        let mut s = spec(GOOD);
        s.cadence = "1m".parse().unwrap();
        assert!(s.validate().unwrap_err()[0].contains("more than"));
    }

    #[test]
    fn duplicate_names_and_empty_types_are_rejected() {
        let mut s = spec(GOOD);
        s.controls.push(s.controls[0].clone());
        s.controls[1].evidence.event_types.clear();
        let problems = s.validate().unwrap_err().join("\n");
        assert!(problems.contains("duplicate control name"), "{problems}");
        assert!(problems.contains("at least one event type"), "{problems}");
    }

    #[test]
    fn unknown_fields_and_bad_durations_fail_to_parse() {
        let unknown =
            serde_saphyr::from_str::<Soc2RequirementSpec>(&format!("{GOOD}windwo: 30d\n"));
        assert!(unknown.unwrap_err().to_string().contains("windwo"));
        let bad = serde_saphyr::from_str::<Soc2RequirementSpec>(&format!("{GOOD}window: 30x\n"));
        assert!(bad.unwrap_err().to_string().contains("invalid duration"));
    }
}
