//! Compiles a requirement's structured evidence selectors into parameterised SQL.
//!
//! Nothing from a resource is ever spliced into the SQL text: event types, outcomes and times
//! are bound parameters, and the text depends only on how many of each there are. Placeholders
//! are numbered (`$1`, `$2`, …), which PostgreSQL and SQLite both accept.

use super::Backend;
use super::rollup::{HOUR, bucket_of};
use crate::crd::{QueryStatus, Soc2RequirementSpec};
use crate::posture::Window;

/// A value bound to a placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Int(i64),
    Text(String),
}

impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Param::Int(v) => write!(f, "{v}"),
            Param::Text(v) => f.write_str(v),
        }
    }
}

/// SQL text with its parameters in placeholder order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledQuery {
    pub sql: String,
    pub params: Vec<Param>,
}

impl CompiledQuery {
    /// What `status.query` shows.
    pub fn to_status(&self) -> QueryStatus {
        QueryStatus {
            sql: self.sql.clone(),
            parameters: self.params.iter().map(Param::to_string).collect(),
        }
    }
}

#[derive(Default)]
struct Builder {
    sql: String,
    params: Vec<Param>,
}

impl Builder {
    fn push(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }

    fn bind(&mut self, param: Param) -> &mut Self {
        self.params.push(param);
        self.sql.push('$');
        self.sql.push_str(&self.params.len().to_string());
        self
    }

    fn bind_list(&mut self, values: &[String]) -> &mut Self {
        self.push("(");
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(Param::Text(value.clone()));
        }
        self.push(")")
    }

    /// `event_type IN (…) [AND outcome IN (…)]`
    fn type_and_outcome(&mut self, event_types: &[String], outcomes: &[String]) -> &mut Self {
        if let [only] = event_types {
            self.push("event_type = ").bind(Param::Text(only.clone()));
        } else {
            self.push("event_type IN ").bind_list(event_types);
        }
        if let [only] = outcomes {
            self.push(" AND outcome = ").bind(Param::Text(only.clone()));
        } else if !outcomes.is_empty() {
            self.push(" AND outcome IN ").bind_list(outcomes);
        }
        self
    }

    /// `event_type IN (…) [AND outcome IN (…)] AND occurred_at >= ? AND occurred_at < ?`
    fn selector(
        &mut self,
        event_types: &[String],
        outcomes: &[String],
        window: &Window,
    ) -> &mut Self {
        self.type_and_outcome(event_types, outcomes)
            .push(" AND occurred_at >= ")
            .bind(Param::Int(window.start))
            .push(" AND occurred_at < ")
            .bind(Param::Int(window.end))
    }

    fn finish(self) -> CompiledQuery {
        CompiledQuery {
            sql: self.sql,
            params: self.params,
        }
    }
}

/// The query a requirement's state is computed from: per control (its index in `spec.controls`)
/// and per interval (`slot`, 0 = the newest, ending at the evaluation instant), the number of
/// matching events and the latest of them. Intervals without events return no row.
///
/// The interval of an event at `t` is `(end - t - 1) / cadence` in integer microseconds: interval
/// `i` is `[end - (i+1)·cadence, end - i·cadence)`, the same rule as [`crate::posture::interval_of`].
///
/// This is the definition over the raw events, the query a status shows: anyone can run it on the
/// store and get the same counts. The operator runs [`interval_counts_fast`], which gives exactly
/// the same rows (a property test holds them to it) at a cost that follows intervals, not events.
pub fn interval_counts(spec: &Soc2RequirementSpec, window: &Window) -> CompiledQuery {
    counts(spec, window, false)
}

/// [`interval_counts`] through the hourly roll-up. A control whose cadence is at least
/// [`ROLLUP_MIN_CADENCE`] reads whole hours from the roll-up (an hour without an interval boundary
/// lies wholly in one interval) and only the hours that hold a boundary (or the window's start or
/// end) from the raw events. Shorter cadences put a boundary in too many hours and read raw events
/// only.
pub fn interval_counts_fast(spec: &Soc2RequirementSpec, window: &Window) -> CompiledQuery {
    counts(spec, window, true)
}

/// Both of the above: with `rollup`, controls that qualify read the roll-up for whole hours;
/// without, every control reads raw events (the definition).
fn counts(spec: &Soc2RequirementSpec, window: &Window, rollup: bool) -> CompiledQuery {
    let mut q = Builder::default();
    q.push("SELECT control, slot, CAST(SUM(events) AS BIGINT) AS events, MAX(last_at) AS last_at FROM (");
    for (i, control) in spec.controls.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        let cadence = spec.cadence_of(control).micros();
        let (types, outcomes) = (&control.evidence.event_types, &control.evidence.outcomes);
        let boundary_hours = boundary_hours(window, cadence).filter(|_| rollup);
        // Raw events of `part` of the window, each in its interval of the whole window.
        let raw = |q: &mut Builder, part: &Window| {
            q.push(&format!("SELECT {i} AS control, ("))
                .bind(Param::Int(window.end))
                .push(" - occurred_at - 1) / ")
                .bind(Param::Int(cadence))
                .push(" AS slot, 1 AS events, occurred_at AS last_at FROM audit_events WHERE ")
                .selector(types, outcomes, part);
        };
        let Some(hours) = boundary_hours else {
            raw(&mut q, window);
            continue;
        };
        // Whole hours from the roll-up.
        q.push(&format!("SELECT {i} AS control, ("))
            .bind(Param::Int(window.end - 1))
            .push(&format!(" - bucket * {HOUR}) / "))
            .bind(Param::Int(cadence))
            .push(" AS slot, events, last_at FROM audit_rollup WHERE ");
        q.type_and_outcome(types, outcomes)
            .push(" AND bucket >= ")
            .bind(Param::Int(bucket_of(window.start)))
            .push(" AND bucket <= ")
            .bind(Param::Int(bucket_of(window.end - 1)))
            .push(" AND bucket NOT IN (");
        for (k, hour) in hours.iter().enumerate() {
            if k > 0 {
                q.push(", ");
            }
            q.bind(Param::Int(*hour));
        }
        // The hours with a boundary from the raw events, adjacent hours merged into one range,
        // each range its own index range scan (an OR of ranges would scan the whole window).
        q.push(")");
        for (from, to) in hour_ranges(&hours) {
            let part = Window {
                start: (from * HOUR).max(window.start),
                end: (to * HOUR).min(window.end),
            };
            if part.start < part.end {
                q.push(" UNION ALL ");
                raw(&mut q, &part);
            }
        }
    }
    q.push(") AS matched GROUP BY control, slot ORDER BY control, slot");
    q.finish()
}

/// Controls with a shorter cadence read raw events only: with a boundary in most hours, the
/// roll-up would save little.
pub const ROLLUP_MIN_CADENCE: i64 = 6 * HOUR;
/// Above this many intervals a control reads raw events (the boundary list would be long).
const ROLLUP_MAX_INTERVALS: u32 = 1_000;

/// The hours that hold an interval boundary, the window's start or its end (sorted, distinct),
/// or None when the control should read raw events only.
fn boundary_hours(window: &Window, cadence: i64) -> Option<Vec<i64>> {
    let intervals = crate::posture::interval_count(window, cadence);
    if cadence < ROLLUP_MIN_CADENCE || intervals > ROLLUP_MAX_INTERVALS {
        return None;
    }
    let mut hours: Vec<i64> = (0..i64::from(intervals))
        .map(|k| bucket_of(window.end - k * cadence))
        .chain([bucket_of(window.start), bucket_of(window.end - 1)])
        .collect();
    hours.sort_unstable();
    hours.dedup();
    Some(hours)
}

/// Sorted distinct hours as half-open ranges `[from, to)` of adjacent hours.
fn hour_ranges(hours: &[i64]) -> Vec<(i64, i64)> {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for &h in hours {
        match ranges.last_mut() {
            Some((_, to)) if *to == h => *to = h + 1,
            _ => ranges.push((h, h + 1)),
        }
    }
    ranges
}

/// The newest `limit` events that support the requirement (match any control), newest first.
///
/// One index-ordered probe per (control, event type), so the cost does not grow with the number
/// of events in the window.
pub fn recent_events(spec: &Soc2RequirementSpec, window: &Window, limit: u32) -> CompiledQuery {
    let mut q = Builder::default();
    q.push("SELECT event_id, occurred_at, event_type, actor, outcome, resource, hash FROM audit_events WHERE seq IN (");
    // One probe per type and outcome, each an equality: a list of outcomes (`outcome IN`) makes
    // PostgreSQL read every event of the type in the window and sort them, where an equality
    // walks the (type, time) index backwards and stops at `limit`.
    let mut first = true;
    for control in &spec.controls {
        let outcomes: Vec<&[String]> = match control.evidence.outcomes.as_slice() {
            [] => vec![&[]],
            listed => listed.iter().map(std::slice::from_ref).collect(),
        };
        for event_type in &control.evidence.event_types {
            for outcome in &outcomes {
                if !first {
                    q.push(" UNION ");
                }
                first = false;
                q.push("SELECT seq FROM (SELECT seq FROM audit_events WHERE ")
                    .selector(std::slice::from_ref(event_type), outcome, window)
                    .push(" ORDER BY occurred_at DESC LIMIT ")
                    .bind(Param::Int(limit.into()))
                    .push(") AS probe");
            }
        }
    }
    q.push(") ORDER BY occurred_at DESC, seq DESC LIMIT ")
        .bind(Param::Int(limit.into()));
    q.finish()
}

/// Every event in the window that supports the requirement (matches any control), in chain
/// order: the "download supporting set". One pass in `seq` order, so it streams without sorting.
pub fn supporting_set(spec: &Soc2RequirementSpec, window: &Window) -> CompiledQuery {
    let mut q = Builder::default();
    q.push("SELECT event_id, occurred_at, event_type, actor, outcome, resource, hash FROM audit_events WHERE ");
    for (i, control) in spec.controls.iter().enumerate() {
        q.push(if i > 0 { " OR (" } else { "(" })
            .selector(
                &control.evidence.event_types,
                &control.evidence.outcomes,
                window,
            )
            .push(")");
    }
    q.push(" ORDER BY seq");
    q.finish()
}

/// `count` placeholders for parameters `first`, `first + 1`, …: numbered for PostgreSQL, plain
/// `?` for SQLite, which looks a numbered one up by a linear scan (quadratic in a statement of
/// thousands, like an ingest batch).
pub(crate) fn placeholders(backend: Backend, first: usize, count: usize) -> String {
    let one = |n: usize| match backend {
        Backend::Sqlite => "?".to_string(),
        Backend::Postgres => format!("${n}"),
    };
    (first..first + count)
        .map(one)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Soc2RequirementSpec {
        serde_saphyr::from_str(
            "id: CC6.6\ntitle: t\ncontrols:\n\
             - {name: a, evidence: {eventTypes: [policy.decision], outcomes: [allow, deny]}}\n\
             - {name: b, cadence: 7d, evidence: {eventTypes: [x, \"y'); DROP TABLE audit_events; --\"]}}\n",
        )
        .unwrap()
    }

    #[test]
    fn values_are_bound_never_spliced() {
        let window = Window {
            start: 0,
            end: 2_592_000_000_000,
        };
        let q = interval_counts(&spec(), &window);
        assert!(!q.sql.contains("DROP"), "{}", q.sql);
        assert!(!q.sql.contains("policy.decision"));
        assert_eq!(q.sql.matches('$').count(), q.params.len());
        assert!(
            q.params
                .contains(&Param::Text("y'); DROP TABLE audit_events; --".into()))
        );
        assert!(q.sql.contains("outcome IN ($4, $5)"), "{}", q.sql);
        assert!(q.params.contains(&Param::Int(7 * 86_400_000_000)));
    }

    #[test]
    fn long_cadences_read_whole_hours_from_the_rollup() {
        // 30 days ending at 10:30: daily intervals put a boundary in 31 hours (10:00 each day and
        // the window's start), read raw; every other hour comes from the roll-up.
        let end = 30 * 86_400_000_000 + 10 * HOUR + HOUR / 2;
        let window = Window {
            start: end - 30 * 86_400_000_000,
            end,
        };
        let hours = boundary_hours(&window, 86_400_000_000).unwrap();
        assert_eq!(hours.len(), 31);
        assert!(hours.iter().all(|h| h % 24 == 10));
        assert_eq!(hour_ranges(&[1, 2, 3, 7, 9, 10]), [(1, 4), (7, 8), (9, 11)]);
        let q = interval_counts_fast(&spec(), &window);
        assert!(q.sql.contains("FROM audit_rollup"), "{}", q.sql);
        assert!(
            !interval_counts(&spec(), &window)
                .sql
                .contains("audit_rollup")
        );
        assert_eq!(q.sql.matches('$').count(), q.params.len());
        // Hourly or finer cadences, and very many intervals, read raw events only.
        assert_eq!(boundary_hours(&window, HOUR), None);
        assert_eq!(boundary_hours(&window, 5 * HOUR), None);
        let year = Window {
            start: 0,
            end: 10_000 * 6 * HOUR,
        };
        assert_eq!(boundary_hours(&year, 6 * HOUR), None);
    }

    #[test]
    fn placeholders_are_numbered() {
        let window = Window { start: 0, end: 10 };
        let q = interval_counts(&spec(), &window);
        let n = q.params.len();
        assert!(q.sql.contains(&format!("${n}")) && !q.sql.contains(&format!("${}", n + 1)));
        assert!(!q.sql.contains('?'));
        let r = recent_events(&spec(), &window, 10);
        assert_eq!(r.sql.matches('$').count(), r.params.len());
    }

    #[test]
    fn status_shows_sql_and_parameters() {
        let window = Window { start: 5, end: 10 };
        let status = interval_counts(&spec(), &window).to_status();
        assert!(
            status.parameters.contains(&"10".into()),
            "{:?}",
            status.parameters
        );
        assert!(status.sql.starts_with("SELECT control, slot"));
    }
}
