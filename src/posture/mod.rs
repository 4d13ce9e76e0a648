//! Pure posture evaluation: interval counts → control states → requirement state, and the
//! status and conditions that say so. No I/O here; the evidence store supplies the counts.
//!
//! The rules (also in `docs/status-semantics.md`):
//! - The window `[at - window, at)` is cut into intervals of the control's cadence, aligned to
//!   `at`; when the window is not a whole number of cadences the oldest interval is the shorter
//!   remainder and counts like the others. Events at or after `at` are ignored.
//! - An interval is covered when it holds at least `minEventsPerInterval` matching events.
//! - Control: Green when it misses at most `tolerance` intervals; Amber when it has evidence in the
//!   window but misses more; Red when it has none.
//! - Requirement: Green when every control is Green; Red when no control has evidence; otherwise
//!   Amber; Unknown when the store could not be read.

pub mod alerts;
mod report;
pub mod schedule;
mod status;
pub mod table;

pub use report::{history_entries, report_status, selects};
pub use status::{Unobserved, requirement_status, set_condition};

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::crd::{EventSummary, Period, QueryStatus, Soc2RequirementSpec, State};

/// A half-open span `[start, end)` in microseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// The window of the given length that ends at `at`.
    pub fn ending_at(at: Timestamp, length: &Period) -> Window {
        let end = at.as_microsecond();
        Window {
            start: end - length.micros(),
            end,
        }
    }
}

/// Number of intervals a window holds at a cadence (the oldest may be a shorter remainder).
pub fn interval_count(window: &Window, cadence: i64) -> u32 {
    let length = window.end - window.start;
    u32::try_from((length + cadence - 1) / cadence).unwrap_or(u32::MAX)
}

/// The interval an event at `t` falls in (0 = newest), or `None` outside the window.
/// The evidence store's query uses the same arithmetic.
pub fn interval_of(window: &Window, cadence: i64, t: i64) -> Option<u32> {
    (window.start..window.end)
        .contains(&t)
        .then(|| u32::try_from((window.end - t - 1) / cadence).expect("bounded by interval_count"))
}

/// What the store returned for one control.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControlCounts {
    /// Matching events per interval index; intervals without events are absent.
    pub per_interval: BTreeMap<u32, u64>,
    /// The latest matching event in the window, microseconds.
    pub last_at: Option<i64>,
}

/// Everything the store says about one requirement at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// One entry per control, in `spec.controls` order.
    pub controls: Vec<ControlCounts>,
    /// Newest supporting events, newest first.
    pub recent_events: Vec<EventSummary>,
    /// The query the counts came from.
    pub query: QueryStatus,
    /// Why the evidence chain is broken, when the requirement selects the operator's chain
    /// verifications and the newest of them failed: the requirement is then Red, whatever the
    /// counts say (evidence in a broken log proves nothing).
    pub chain_broken: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlJudgement {
    pub state: State,
    pub events: u64,
    pub covered: u32,
    pub total: u32,
    pub last_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub state: State,
    pub controls: Vec<ControlJudgement>,
    pub events: u64,
    pub covered: u32,
    pub total: u32,
    pub last_at: Option<i64>,
}

/// Judges one control from its interval counts.
pub fn judge_control(
    counts: &ControlCounts,
    total: u32,
    min_events: u32,
    tolerance: u32,
) -> ControlJudgement {
    let in_window = || counts.per_interval.iter().filter(|(i, _)| **i < total);
    let events: u64 = in_window().map(|(_, n)| n).sum();
    let covered = in_window()
        .filter(|(_, n)| **n >= u64::from(min_events))
        .count() as u32;
    let state = if events == 0 {
        State::Red
    } else if total - covered <= tolerance {
        State::Green
    } else {
        State::Amber
    };
    ControlJudgement {
        state,
        events,
        covered,
        total,
        last_at: counts.last_at.filter(|_| events > 0),
    }
}

/// Judges a requirement from the counts of each of its controls (in `spec.controls` order).
pub fn judge(spec: &Soc2RequirementSpec, window: &Window, counts: &[ControlCounts]) -> Judgement {
    let empty = ControlCounts::default();
    let controls: Vec<ControlJudgement> = spec
        .controls
        .iter()
        .enumerate()
        .map(|(i, control)| {
            let total = interval_count(window, spec.cadence_of(control).micros());
            let counts = counts.get(i).unwrap_or(&empty);
            judge_control(counts, total, spec.min_events_per_interval, spec.tolerance)
        })
        .collect();
    let state = if controls.iter().all(|c| c.state == State::Green) {
        State::Green
    } else if controls.iter().all(|c| c.state == State::Red) {
        State::Red
    } else {
        State::Amber
    };
    Judgement {
        state,
        events: controls.iter().map(|c| c.events).sum(),
        covered: controls.iter().map(|c| c.covered).sum(),
        total: controls.iter().map(|c| c.total).sum(),
        last_at: controls.iter().filter_map(|c| c.last_at).max(),
        controls,
    }
}

/// Converts store microseconds to a timestamp.
pub fn timestamp(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).expect("store times are within jiff's range")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;
    const NOW: i64 = 1_764_000_000_000_000; // an arbitrary instant

    fn spec(yaml_controls: &str, extra: &str) -> Soc2RequirementSpec {
        serde_saphyr::from_str(&format!(
            "id: CC6.6\ntitle: t\n{extra}controls:\n{yaml_controls}"
        ))
        .unwrap()
    }

    fn one_control(extra: &str) -> Soc2RequirementSpec {
        spec("- {name: a, evidence: {eventTypes: [e]}}\n", extra)
    }

    fn window(days: i64) -> Window {
        Window {
            start: NOW - days * DAY,
            end: NOW,
        }
    }

    /// Counts built the straightforward way, from event times, with the pure interval rule.
    fn counts(window: &Window, cadence: i64, times: &[i64]) -> ControlCounts {
        let mut c = ControlCounts::default();
        for &t in times {
            if let Some(i) = interval_of(window, cadence, t) {
                *c.per_interval.entry(i).or_default() += 1;
                c.last_at = c.last_at.max(Some(t));
            }
        }
        c
    }

    fn daily(days: i64) -> Vec<i64> {
        (0..days).map(|d| NOW - d * DAY - DAY / 2).collect()
    }

    #[test]
    fn interval_edges() {
        let w = window(30);
        assert_eq!(interval_of(&w, DAY, NOW - 1), Some(0));
        assert_eq!(
            interval_of(&w, DAY, NOW - DAY),
            Some(0),
            "an interval's start belongs to it"
        );
        assert_eq!(interval_of(&w, DAY, NOW - DAY - 1), Some(1));
        assert_eq!(
            interval_of(&w, DAY, NOW - 30 * DAY),
            Some(29),
            "the window's start is inside"
        );
        assert_eq!(
            interval_of(&w, DAY, NOW - 30 * DAY - 1),
            None,
            "before the window"
        );
        assert_eq!(
            interval_of(&w, DAY, NOW),
            None,
            "the evaluation instant is outside"
        );
        assert_eq!(
            interval_of(&w, DAY, NOW + DAY),
            None,
            "future events are ignored"
        );
    }

    #[test]
    fn remainder_interval_is_the_oldest_and_counts() {
        let w = window(30);
        let cadence = 7 * DAY;
        assert_eq!(interval_count(&w, cadence), 5);
        assert_eq!(interval_of(&w, cadence, NOW - 28 * DAY - 1), Some(4));
        assert_eq!(interval_of(&w, cadence, NOW - 30 * DAY), Some(4));
        // Evidence in four full weeks but not the 2-day remainder: one missed interval.
        let s = spec(
            "- {name: a, cadence: 7d, evidence: {eventTypes: [e]}}\n",
            "",
        );
        let times: Vec<i64> = (0..4).map(|k| NOW - k * 7 * DAY - DAY).collect();
        let j = judge(&s, &w, &[counts(&w, cadence, &times)]);
        assert_eq!(
            (j.controls[0].covered, j.controls[0].total, j.state),
            (4, 5, State::Amber)
        );
    }

    #[test]
    fn every_interval_covered_is_green() {
        let w = window(30);
        let j = judge(&one_control(""), &w, &[counts(&w, DAY, &daily(30))]);
        assert_eq!(j.state, State::Green);
        assert_eq!((j.covered, j.total, j.events), (30, 30, 30));
        assert_eq!(j.last_at, Some(NOW - DAY / 2));
    }

    #[test]
    fn a_missed_interval_is_amber_unless_tolerated() {
        let w = window(30);
        let mut times = daily(30);
        times.remove(10);
        let c = counts(&w, DAY, &times);
        assert_eq!(
            judge(&one_control(""), &w, std::slice::from_ref(&c)).state,
            State::Amber
        );
        assert_eq!(
            judge(&one_control("tolerance: 1\n"), &w, std::slice::from_ref(&c)).state,
            State::Green
        );
        times.remove(3);
        let c = counts(&w, DAY, &times);
        assert_eq!(
            judge(&one_control("tolerance: 1\n"), &w, &[c]).state,
            State::Amber
        );
    }

    #[test]
    fn min_events_per_interval() {
        let w = window(30);
        let c = counts(&w, DAY, &daily(30));
        let j = judge(&one_control("minEventsPerInterval: 2\n"), &w, &[c]);
        assert_eq!(
            (j.state, j.covered),
            (State::Amber, 0),
            "evidence but no interval covered"
        );
    }

    #[test]
    fn zero_events_is_red_even_with_large_tolerance() {
        let w = window(30);
        let j = judge(
            &one_control("tolerance: 100\n"),
            &w,
            &[ControlCounts::default()],
        );
        assert_eq!((j.state, j.events, j.last_at), (State::Red, 0, None));
    }

    #[test]
    fn future_and_old_events_do_not_count() {
        let w = window(30);
        let c = counts(&w, DAY, &[NOW, NOW + DAY, NOW - 31 * DAY]);
        assert_eq!(judge(&one_control(""), &w, &[c]).state, State::Red);
    }

    #[test]
    fn counts_outside_the_intervals_are_ignored() {
        // A store must not be able to make a control green with a bucket past the window.
        let w = window(1);
        let c = ControlCounts {
            per_interval: BTreeMap::from([(5, 10)]),
            last_at: Some(NOW - 1),
        };
        assert_eq!(judge(&one_control(""), &w, &[c]).state, State::Red);
    }

    #[test]
    fn requirement_combines_controls() {
        let two = spec(
            "- {name: a, evidence: {eventTypes: [e]}}\n- {name: b, evidence: {eventTypes: [f]}}\n",
            "",
        );
        let w = window(30);
        let full = counts(&w, DAY, &daily(30));
        let sparse = counts(&w, DAY, &daily(3));
        let none = ControlCounts::default();
        assert_eq!(
            judge(&two, &w, &[full.clone(), full.clone()]).state,
            State::Green
        );
        assert_eq!(
            judge(&two, &w, &[full.clone(), none.clone()]).state,
            State::Amber,
            "one red, one green"
        );
        assert_eq!(judge(&two, &w, &[sparse, full.clone()]).state, State::Amber);
        assert_eq!(
            judge(&two, &w, &[none.clone(), none]).state,
            State::Red,
            "all red"
        );
        let j = judge(&two, &w, &[full.clone(), full]);
        assert_eq!((j.covered, j.total, j.events), (60, 60, 60));
    }

    #[test]
    fn cadence_equal_to_window_is_one_interval() {
        let w = window(30);
        let s = spec(
            "- {name: drill, cadence: 30d, evidence: {eventTypes: [e]}}\n",
            "",
        );
        let c = counts(&w, 30 * DAY, &[NOW - 29 * DAY]);
        let j = judge(&s, &w, &[c]);
        assert_eq!((j.state, j.covered, j.total), (State::Green, 1, 1));
    }
}
