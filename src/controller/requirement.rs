//! Soc2Requirement: evaluate against the evidence store, write status, publish transitions.

use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::{Context, Error, apply_status};
use crate::crd::{Soc2Requirement, Soc2RequirementStatus, State};
use crate::posture::{Unobserved, Window, requirement_status};

pub async fn reconcile(
    requirement: Arc<Soc2Requirement>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_timer("requirement");
    // Evaluate.
    let at = Timestamp::now();
    let observed = observe(&requirement, &ctx, at).await;
    let observed_ok = observed.is_ok();
    let store_down = matches!(observed, Err(Unobserved::StoreUnavailable(_)));
    let mut status = requirement_status(&requirement, at, observed);
    // Today's row of the posture history; greenSince from it when the status has none.
    if observed_ok
        && let Ok(store) = ctx.evidence.get().await
        && let Err(error) = store
            .apply_history(&requirement, &mut status, at, true)
            .await
    {
        tracing::warn!(name = %requirement.name_any(), %error, "posture history not recorded");
    }
    let previous = requirement.status.as_ref();

    // Write status: one server-side apply, and none when nothing but the evaluation time moved.
    if previous.is_none_or(|p| !same_findings(p, &status)) {
        apply_status(&ctx, requirement.as_ref(), &status, "requirement").await?;
    }

    // Publish an Event when the state changed.
    if let Some(event) = transition_event(previous, &status) {
        ctx.recorder
            .publish(&event, &requirement.object_ref(&()))
            .await?;
    }

    // Requeue: time passing changes the posture even without new events.
    if store_down {
        Ok(Action::requeue(ctx.backoff(&requirement).await))
    } else {
        ctx.recovered(&requirement).await;
        Ok(Action::requeue(ctx.config.requeue))
    }
}

async fn observe(
    requirement: &Soc2Requirement,
    ctx: &Context,
    at: Timestamp,
) -> Result<crate::posture::Observation, Unobserved> {
    if let Err(problems) = requirement.spec.validate() {
        return Err(Unobserved::InvalidSpec(problems.join("; ")));
    }
    let store = ctx
        .evidence
        .get()
        .await
        .map_err(Unobserved::StoreUnavailable)?;
    let window = Window::ending_at(at, &requirement.spec.window);
    match store.observe(&requirement.spec, &window).await {
        Ok(observation) => Ok(observation),
        Err(e) => {
            ctx.evidence.reset().await;
            Err(Unobserved::StoreUnavailable(e.to_string()))
        }
    }
}

/// Whether two statuses say the same thing, whatever instant each was evaluated at. The query is
/// left out too: its SQL follows the spec (and a spec change moves observedGeneration), and its
/// parameters hold the window's times.
fn same_findings(a: &Soc2RequirementStatus, b: &Soc2RequirementStatus) -> bool {
    let strip = |s: &Soc2RequirementStatus| Soc2RequirementStatus {
        evaluated_at: None,
        window_start: None,
        query: None,
        ..s.clone()
    };
    strip(a) == strip(b)
}

/// The Event for a state change: Warning on a dip (or an outage), Normal on recovery to Green.
/// None when the state did not change, or on a first evaluation that finds it Green. A chain
/// found broken is a change of its own, even for a requirement that was Red already.
fn transition_event(
    previous: Option<&Soc2RequirementStatus>,
    status: &Soc2RequirementStatus,
) -> Option<Event> {
    let chain_broken = |s: &Soc2RequirementStatus| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Compliant" && c.reason == "ChainBroken")
    };
    let before = previous.and_then(|p| p.state);
    let after = status.state.unwrap_or_default();
    let newly_broken = chain_broken(status) && !previous.is_some_and(chain_broken);
    if before == Some(after) && !newly_broken {
        return None;
    }
    let compliant = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Compliant")
        .map(|c| c.message.clone());
    let from = before.map_or("no state".to_string(), |s| s.to_string());
    let (type_, reason) = match after {
        State::Green if before.is_none() => return None,
        State::Green => (EventType::Normal, "Recovered"),
        State::Amber => (EventType::Warning, "DippedToAmber"),
        State::Red if newly_broken => (EventType::Warning, "ChainBroken"),
        State::Red => (EventType::Warning, "DippedToRed"),
        State::Unknown => (EventType::Warning, "PostureUnknown"),
    };
    Some(Event {
        type_,
        reason: reason.into(),
        note: Some(format!(
            "{from} → {after}: {}",
            compliant.unwrap_or_default()
        )),
        action: "Evaluate".into(),
        secondary: None,
    })
}

pub fn error_policy(requirement: Arc<Soc2Requirement>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %requirement.name_any(), %error, "reconcile failed");
    ctx.metrics.reconcile_error("requirement", error);
    Action::requeue(std::time::Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(state: State, compliant_reason: &str) -> Soc2RequirementStatus {
        let mut s = Soc2RequirementStatus {
            state: Some(state),
            ..Default::default()
        };
        let now = Timestamp::UNIX_EPOCH;
        crate::posture::set_condition(
            &mut s.conditions,
            "Compliant",
            "False",
            compliant_reason,
            String::new(),
            None,
            now,
        );
        s
    }

    fn reason(before: Option<(State, &str)>, after: (State, &str)) -> Option<String> {
        let previous = before.map(|(s, r)| judged(s, r));
        transition_event(previous.as_ref(), &judged(after.0, after.1)).map(|e| {
            assert_eq!(e.type_ == EventType::Normal, e.reason == "Recovered");
            e.reason
        })
    }

    #[test]
    fn events_only_on_transitions() {
        let (green, amber, red, unknown) = (
            (State::Green, "EvidenceCurrent"),
            (State::Amber, "SparseEvidence"),
            (State::Red, "NoEvidence"),
            (State::Unknown, "EvidenceStoreUnavailable"),
        );
        let broken = (State::Red, "ChainBroken");
        assert_eq!(reason(Some(green), green), None);
        assert_eq!(reason(None, green), None, "a first Green is no recovery");
        assert_eq!(reason(Some(green), red).as_deref(), Some("DippedToRed"));
        assert_eq!(reason(Some(green), amber).as_deref(), Some("DippedToAmber"));
        assert_eq!(reason(None, red).as_deref(), Some("DippedToRed"));
        assert_eq!(reason(Some(red), green).as_deref(), Some("Recovered"));
        assert_eq!(
            reason(Some(green), unknown).as_deref(),
            Some("PostureUnknown")
        );
        assert_eq!(reason(Some(green), broken).as_deref(), Some("ChainBroken"));
        assert_eq!(
            reason(Some(red), broken).as_deref(),
            Some("ChainBroken"),
            "already Red"
        );
        assert_eq!(reason(Some(broken), broken), None);
        assert_eq!(reason(Some(broken), red), None);
    }

    #[test]
    fn evaluation_time_alone_is_no_change() {
        let a = Soc2RequirementStatus {
            state: Some(State::Green),
            evaluated_at: Some(Timestamp::UNIX_EPOCH),
            ..Default::default()
        };
        let b = Soc2RequirementStatus {
            evaluated_at: Some(Timestamp::now()),
            ..a.clone()
        };
        assert!(same_findings(&a, &b));
        let c = Soc2RequirementStatus {
            state: Some(State::Amber),
            ..b
        };
        assert!(!same_findings(&a, &c));
    }
}
