//! From a judgement to the `Soc2Requirement` status and its conditions.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::{Judgement, Observation, Window, judge, timestamp};
use crate::crd::{ControlStatus, Soc2Requirement, Soc2RequirementStatus, State};

/// Why a requirement could not be observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unobserved {
    /// The evidence store could not be read (the reason).
    StoreUnavailable(String),
    /// The spec breaks a rule the schema cannot express, e.g. a cadence longer than the window.
    InvalidSpec(String),
}

/// The status of `requirement` at `at`, given what the store returned (or why it could not).
/// The previous status (on the object) keeps condition transition times and `greenSince`.
pub fn requirement_status(
    requirement: &Soc2Requirement,
    at: Timestamp,
    observed: Result<Observation, Unobserved>,
) -> Soc2RequirementStatus {
    let spec = &requirement.spec;
    let previous = requirement.status.clone().unwrap_or_default();
    let generation = requirement.metadata.generation;
    let window = Window::ending_at(at, &spec.window);

    let (mut status, ready, compliant) = match &observed {
        Ok(observation) => {
            let judgement = judge(spec, &window, &observation.controls);
            let state = match observation.chain_broken {
                Some(_) => State::Red,
                None => judgement.state,
            };
            let status = Soc2RequirementStatus {
                state: Some(state),
                events_in_window: Some(judgement.events),
                coverage: Some(format!("{}/{}", judgement.covered, judgement.total)),
                last_evidence_at: judgement.last_at.map(timestamp),
                controls: spec
                    .controls
                    .iter()
                    .zip(&judgement.controls)
                    .map(|(control, j)| ControlStatus {
                        name: control.name.clone(),
                        state: j.state,
                        events: j.events,
                        covered_intervals: j.covered,
                        total_intervals: j.total,
                        last_evidence_at: j.last_at.map(timestamp),
                    })
                    .collect(),
                query: Some(observation.query.clone()),
                recent_events: observation.recent_events.clone(),
                ..Default::default()
            };
            let ready = (
                "True",
                "Evaluated",
                format!(
                    "Evaluated against the evidence store over the last {}",
                    spec.window
                ),
            );
            let compliant = match &observation.chain_broken {
                Some(why) => (
                    "False",
                    "ChainBroken",
                    format!("The evidence hash chain failed verification: {why}"),
                ),
                None => compliance(requirement, &judgement),
            };
            (status, ready, compliant)
        }
        // Neither says anything about the evidence: keep only what stays true.
        Err(unobserved) => {
            let status = Soc2RequirementStatus {
                state: Some(State::Unknown),
                last_evidence_at: previous.last_evidence_at,
                ..Default::default()
            };
            let (reason, message) = match unobserved {
                Unobserved::StoreUnavailable(why) => (
                    "EvidenceStoreUnavailable",
                    format!("The evidence store could not be read: {why}"),
                ),
                Unobserved::InvalidSpec(why) => (
                    "InvalidSpec",
                    format!("The spec cannot be evaluated: {why}"),
                ),
            };
            (
                status,
                ("False", reason, message.clone()),
                ("Unknown", reason, message),
            )
        }
    };
    let state = status.state.unwrap_or_default();
    status.observed_generation = generation;
    status.evaluated_at = Some(at);
    status.window_start = Some(timestamp(window.start));
    status.green_since = match state {
        State::Green => previous
            .green_since
            .or_else(|| matches!(previous.state, Some(State::Amber | State::Red)).then_some(at)),
        State::Unknown => previous.green_since,
        State::Amber | State::Red => None,
    };

    let mut conditions = previous.conditions;
    for (type_, (cond_status, reason, message)) in [("Ready", ready), ("Compliant", compliant)] {
        set_condition(
            &mut conditions,
            type_,
            cond_status,
            reason,
            message,
            generation,
            at,
        );
    }
    status.conditions = conditions;
    status
}

fn compliance(
    requirement: &Soc2Requirement,
    judgement: &Judgement,
) -> (&'static str, &'static str, String) {
    let spec = &requirement.spec;
    let names_in = |state: State| {
        spec.controls
            .iter()
            .zip(&judgement.controls)
            .filter(|(_, j)| j.state == state)
            .map(|(c, j)| format!("{} ({}/{})", c.name, j.covered, j.total))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match judgement.state {
        State::Green => (
            "True",
            "EvidenceCurrent",
            format!(
                "Every control has evidence at its cadence over the last {} ({}/{} intervals)",
                spec.window, judgement.covered, judgement.total
            ),
        ),
        State::Red => (
            "False",
            "NoEvidence",
            format!("No matching evidence in the last {}", spec.window),
        ),
        _ => {
            let mut gaps = Vec::new();
            for (state, what) in [(State::Amber, "sparse"), (State::Red, "no evidence")] {
                let names = names_in(state);
                if !names.is_empty() {
                    gaps.push(format!("{what}: {names}"));
                }
            }
            (
                "False",
                "SparseEvidence",
                format!("Evidence misses expected intervals; {}", gaps.join("; ")),
            )
        }
    }
}

/// Sets a condition, keeping `lastTransitionTime` unless its status flips.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) {
    let transition = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    conditions.retain(|c| c.type_ != type_);
    conditions.push(Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: transition,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::ControlCounts;
    use std::collections::BTreeMap;

    fn requirement() -> Soc2Requirement {
        let mut r: Soc2Requirement = serde_saphyr::from_str(
            "apiVersion: compliance.behavry.io/v1alpha1\nkind: Soc2Requirement\nmetadata: {name: cc7-3, generation: 3}\n\
             spec:\n  id: CC7.3\n  title: Incident handling\n  window: 2d\n  controls:\n  \
             - {name: hitl, evidence: {eventTypes: [hitl.escalation.resolved]}}\n  \
             - {name: kill-switch, cadence: 2d, evidence: {eventTypes: [kill_switch.drill]}}\n",
        )
        .unwrap();
        r.status = None;
        r
    }

    fn observed(hitl: &[(u32, u64)], drill: &[(u32, u64)]) -> Result<Observation, Unobserved> {
        let counts = |b: &[(u32, u64)]| ControlCounts {
            per_interval: b.iter().copied().collect::<BTreeMap<_, _>>(),
            last_at: (!b.is_empty()).then_some(1_000),
        };
        Ok(Observation {
            controls: vec![counts(hitl), counts(drill)],
            ..Default::default()
        })
    }

    fn condition<'a>(s: &'a Soc2RequirementStatus, type_: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn a_broken_chain_is_red_whatever_the_counts() {
        let at: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let mut observation = observed(&[(0, 2), (1, 1)], &[(0, 1)]).unwrap();
        observation.chain_broken = Some("chain broken at #7: an edited event".into());
        let s = requirement_status(&requirement(), at, Ok(observation));
        assert_eq!(s.state, Some(State::Red));
        assert_eq!(s.coverage.as_deref(), Some("3/3"), "the counts still show");
        assert_eq!(s.green_since, None);
        let compliant = condition(&s, "Compliant");
        assert_eq!(
            (compliant.status.as_str(), compliant.reason.as_str()),
            ("False", "ChainBroken")
        );
        assert!(compliant.message.contains("#7"), "{}", compliant.message);
    }

    #[test]
    fn green_status_and_conditions() {
        let at: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let s = requirement_status(&requirement(), at, observed(&[(0, 2), (1, 1)], &[(0, 1)]));
        assert_eq!(s.state, Some(State::Green));
        assert_eq!(s.coverage.as_deref(), Some("3/3"));
        assert_eq!(s.events_in_window, Some(4));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(
            s.green_since, None,
            "no history says how long it has been green"
        );
        assert_eq!(condition(&s, "Ready").reason, "Evaluated");
        assert_eq!(condition(&s, "Compliant").reason, "EvidenceCurrent");
        assert_eq!(
            s.window_start,
            Some("2026-11-29T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn reasons_for_sparse_and_none() {
        let at = Timestamp::UNIX_EPOCH;
        let sparse = requirement_status(&requirement(), at, observed(&[(0, 1)], &[]));
        assert_eq!(sparse.state, Some(State::Amber));
        let c = condition(&sparse, "Compliant");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "SparseEvidence")
        );
        assert!(
            c.message.contains("hitl (1/2)") && c.message.contains("no evidence: kill-switch"),
            "{}",
            c.message
        );
        let none = requirement_status(&requirement(), at, observed(&[], &[]));
        assert_eq!(none.state, Some(State::Red));
        assert_eq!(condition(&none, "Compliant").reason, "NoEvidence");
    }

    #[test]
    fn an_outage_is_unknown_never_red() {
        let mut r = requirement();
        let t0: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        r.status = Some(requirement_status(
            &r,
            t0,
            observed(&[(0, 1), (1, 1)], &[(0, 1)]),
        ));
        r.status.as_mut().unwrap().green_since = Some(t0);
        let t1: Timestamp = "2026-12-01T00:05:00Z".parse().unwrap();
        let s = requirement_status(
            &r,
            t1,
            Err(Unobserved::StoreUnavailable("connection refused".into())),
        );
        assert_eq!(s.state, Some(State::Unknown));
        let ready = condition(&s, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "EvidenceStoreUnavailable")
        );
        assert!(ready.message.contains("connection refused"));
        assert_eq!(condition(&s, "Compliant").status, "Unknown");
        assert_eq!(
            s.green_since,
            Some(t0),
            "an outage does not forget how long it was green"
        );
        assert_eq!(ready.last_transition_time.0, t1, "Ready flipped");
    }

    #[test]
    fn an_invalid_spec_is_unknown_with_its_reason() {
        let s = requirement_status(
            &requirement(),
            Timestamp::UNIX_EPOCH,
            Err(Unobserved::InvalidSpec("cadence 31d".into())),
        );
        assert_eq!(s.state, Some(State::Unknown));
        let ready = condition(&s, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(ready.message.contains("cadence 31d"));
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut r = requirement();
        let t0: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        r.status = Some(requirement_status(&r, t0, observed(&[(0, 1)], &[])));
        let t1: Timestamp = "2026-12-01T01:00:00Z".parse().unwrap();
        let s = requirement_status(&r, t1, observed(&[], &[]));
        let c = condition(&s, "Compliant");
        assert_eq!(
            (c.reason.as_str(), c.last_transition_time.0),
            ("NoEvidence", t0),
            "False stays False"
        );
        r.status = Some(s);
        let t2: Timestamp = "2026-12-01T02:00:00Z".parse().unwrap();
        let s = requirement_status(&r, t2, observed(&[(0, 1), (1, 1)], &[(0, 1)]));
        assert_eq!(condition(&s, "Compliant").last_transition_time.0, t2);
        assert_eq!(s.green_since, Some(t2), "turned green now");
    }
}
