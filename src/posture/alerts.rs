//! Dips and recoveries of a PostureReport's requirements, as Alertmanager webhook payloads.

use jiff::Timestamp;
use kube::ResourceExt;
use serde_json::{Value, json};

use crate::crd::{PostureReport, RequirementSummary, State};

/// A requirement whose state moved between two aggregations of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub id: String,
    pub name: String,
    pub from: State,
    pub to: State,
}

impl Transition {
    /// A dip (to Amber or Red, from a better state) fires; a return to Green resolves.
    fn firing(&self) -> bool {
        matches!(self.to, State::Amber | State::Red)
    }
}

/// The dips and recoveries from `before` to `after`: a requirement going to Amber or Red from
/// Green or Amber, or to Green from Amber or Red. Unknown (an outage) is neither, and a
/// requirement seen for the first time has no transition.
pub fn transitions(before: &[RequirementSummary], after: &[RequirementSummary]) -> Vec<Transition> {
    let rank = |s: State| match s {
        State::Green => 0,
        State::Amber => 1,
        State::Red => 2,
        State::Unknown => -1,
    };
    after
        .iter()
        .filter_map(|now| {
            let was = before.iter().find(|b| b.name == now.name)?;
            let (from, to) = (was.state, now.state);
            let dip = rank(from) >= 0 && rank(to) > rank(from);
            let recovery = to == State::Green && matches!(from, State::Amber | State::Red);
            (dip || recovery).then(|| Transition {
                id: now.id.clone(),
                name: now.name.clone(),
                from,
                to,
            })
        })
        .collect()
}

/// The Alertmanager webhook payload (version 4) for `transitions` of `report` at `now`.
pub fn payload(report: &PostureReport, transitions: &[Transition], now: Timestamp) -> Value {
    let namespace = report.namespace().unwrap_or_default();
    let report_name = report.name_any();
    let alerts: Vec<Value> = transitions
        .iter()
        .map(|t| {
            let status = if t.firing() { "firing" } else { "resolved" };
            json!({
                "status": status,
                "labels": {
                    "alertname": "SOC2RequirementNotGreen",
                    "severity": "warning",
                    "namespace": namespace,
                    "report": report_name,
                    "requirement": t.id,
                    "name": t.name,
                },
                "annotations": {
                    "summary": format!("SOC 2 {} went from {} to {}", t.id, t.from, t.to),
                    "state": t.to.as_str(),
                    "previousState": t.from.as_str(),
                },
                "startsAt": now.to_string(),
                "endsAt": if t.firing() { "0001-01-01T00:00:00Z".to_string() } else { now.to_string() },
                "generatorURL": "",
                "fingerprint": format!("{namespace}/{}", t.name),
            })
        })
        .collect();
    let status = if transitions.iter().any(Transition::firing) {
        "firing"
    } else {
        "resolved"
    };
    json!({
        "version": "4",
        "groupKey": format!("soc2-operator/{namespace}/{report_name}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": report_name,
        "groupLabels": {"alertname": "SOC2RequirementNotGreen"},
        "commonLabels": {"alertname": "SOC2RequirementNotGreen", "namespace": namespace, "report": report_name},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": alerts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, state: State) -> RequirementSummary {
        RequirementSummary {
            id: format!("CC-{name}"),
            name: name.into(),
            state,
            green_since: None,
        }
    }

    #[test]
    fn dips_fire_and_recoveries_resolve() {
        use State::*;
        let before = [
            line("a", Green),
            line("b", Amber),
            line("c", Red),
            line("d", Green),
            line("e", Green),
        ];
        let after = [
            line("a", Red),
            line("b", Green),
            line("c", Red),
            line("d", Unknown),
            line("e", Green),
            line("new", Red),
        ];
        let t = transitions(&before, &after);
        let moves: Vec<(&str, State, State)> =
            t.iter().map(|t| (t.name.as_str(), t.from, t.to)).collect();
        assert_eq!(moves, [("a", Green, Red), ("b", Amber, Green)]);
        assert_eq!(
            transitions(&[line("x", Amber)], &[line("x", Red)]).len(),
            1,
            "a further dip"
        );
        assert!(
            transitions(&[line("x", Unknown)], &[line("x", Red)]).is_empty(),
            "no news after an outage"
        );

        let report: PostureReport = serde_saphyr::from_str(
            "apiVersion: compliance.behavry.io/v1alpha1\nkind: PostureReport\nmetadata: {name: soc2, namespace: compliance}\nspec: {}\n",
        )
        .unwrap();
        let body = payload(&report, &t, "2026-12-01T00:00:00Z".parse().unwrap());
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["alerts"][0]["status"], "firing");
        assert_eq!(body["alerts"][0]["labels"]["requirement"], "CC-a");
        assert_eq!(body["alerts"][1]["status"], "resolved");
        assert_eq!(body["alerts"][1]["endsAt"], "2026-12-01T00:00:00Z");
        let resolved = payload(&report, &t[1..], "2026-12-01T00:00:00Z".parse().unwrap());
        assert_eq!(resolved["status"], "resolved");
    }
}
