//! Aggregating requirements into a `PostureReport` status.

use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use crate::crd::{
    HistoryEntry, PostureReport, PostureReportStatus, RequirementSummary, Soc2Requirement, State,
    Summary,
};
use crate::evidence::history::PostureDay;

/// Whether the report covers the requirement: same namespace, and its selector matches.
/// A selector that cannot be read selects nothing.
pub fn selects(report: &PostureReport, requirement: &Soc2Requirement) -> bool {
    report.namespace() == requirement.namespace()
        && Selector::try_from(report.spec.selector.clone())
            .is_ok_and(|s| s.matches(requirement.labels()))
}

/// Summary, state and per-requirement lines of a report over the requirements it selects.
/// The report's state follows the requirement rule: Green when all are Green, Red when all are
/// Red, Unknown when any is Unknown (or none is selected), otherwise Amber.
pub fn report_status(
    report: &PostureReport,
    requirements: &[Soc2Requirement],
) -> PostureReportStatus {
    let mut lines: Vec<RequirementSummary> = requirements
        .iter()
        .filter(|r| selects(report, r))
        .map(|r| {
            let status = r.status.clone().unwrap_or_default();
            RequirementSummary {
                id: r.spec.id.clone(),
                name: r.name_any(),
                state: status.state.unwrap_or_default(),
                green_since: status.green_since,
            }
        })
        .collect();
    lines.sort_by(|a, b| (&a.id, &a.name).cmp(&(&b.id, &b.name)));
    let count = |state: State| lines.iter().filter(|l| l.state == state).count() as u32;
    let summary = Summary {
        total: lines.len() as u32,
        green: count(State::Green),
        amber: count(State::Amber),
        red: count(State::Red),
        unknown: count(State::Unknown),
    };
    let state = if summary.total == 0 || summary.unknown > 0 {
        State::Unknown
    } else if summary.green == summary.total {
        State::Green
    } else if summary.red == summary.total {
        State::Red
    } else {
        State::Amber
    };
    PostureReportStatus {
        state: Some(state),
        observed_generation: report.metadata.generation,
        summary: Some(summary),
        requirements: lines,
        ..report.status.clone().unwrap_or_default()
    }
}

/// The report's `status.history`: per day, oldest first, how many of the requirements' rows were
/// in each state. Days without a row are left out (nothing was evaluated then).
pub fn history_entries(days: &[PostureDay]) -> Vec<HistoryEntry> {
    let mut by_day: std::collections::BTreeMap<&str, HistoryEntry> = Default::default();
    for d in days {
        let entry = by_day.entry(&d.day).or_insert_with(|| HistoryEntry {
            date: d.day.clone(),
            green: 0,
            amber: 0,
            red: 0,
            unknown: 0,
        });
        match d.state {
            State::Green => entry.green += 1,
            State::Amber => entry.amber += 1,
            State::Red => entry.red += 1,
            State::Unknown => entry.unknown += 1,
        }
    }
    by_day.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement(name: &str, labels: &str, state: State) -> Soc2Requirement {
        let mut r: Soc2Requirement = serde_saphyr::from_str(&format!(
            "apiVersion: compliance.behavry.io/v1alpha1\nkind: Soc2Requirement\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n\
             spec: {{id: CC1.1, title: t, controls: [{{name: a, evidence: {{eventTypes: [e]}}}}]}}\n"
        ))
        .unwrap();
        r.status = Some(crate::crd::Soc2RequirementStatus {
            state: Some(state),
            ..Default::default()
        });
        r
    }

    fn report(selector: &str) -> PostureReport {
        serde_saphyr::from_str(&format!(
            "apiVersion: compliance.behavry.io/v1alpha1\nkind: PostureReport\nmetadata: {{name: soc2}}\nspec: {{selector: {selector}}}\n"
        ))
        .unwrap()
    }

    #[test]
    fn aggregates_selected_requirements() {
        let soc2 = "compliance.behavry.io/framework: soc2";
        let reqs = [
            requirement("a", soc2, State::Green),
            requirement("b", soc2, State::Red),
            requirement("c", "other: x", State::Red),
        ];
        let status = report_status(
            &report("{matchLabels: {compliance.behavry.io/framework: soc2}}"),
            &reqs,
        );
        assert_eq!(
            status.summary,
            Some(Summary {
                total: 2,
                green: 1,
                amber: 0,
                red: 1,
                unknown: 0
            })
        );
        assert_eq!(status.state, Some(State::Amber));
        let all = report_status(&report("{}"), &reqs);
        assert_eq!(
            all.summary.unwrap().total,
            3,
            "an empty selector selects all"
        );
        let none = report_status(&report("{matchLabels: {nothing: here}}"), &reqs);
        assert_eq!(none.state, Some(State::Unknown));
    }

    #[test]
    fn any_unknown_makes_the_report_unknown() {
        let reqs = [
            requirement("a", "", State::Green),
            requirement("b", "", State::Unknown),
        ];
        assert_eq!(
            report_status(&report("{}"), &reqs).state,
            Some(State::Unknown)
        );
        let reqs = [
            requirement("a", "", State::Red),
            requirement("b", "", State::Red),
        ];
        assert_eq!(report_status(&report("{}"), &reqs).state, Some(State::Red));
    }
}
