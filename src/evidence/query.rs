//! Compiles a requirement's structured evidence selectors into parameterised SQL.
//!
//! Nothing from a resource is ever spliced into the SQL text: event types, outcomes and times
//! are bound parameters, and the text depends only on how many of each there are. Placeholders
//! are numbered (`$1`, `$2`, …), which PostgreSQL and SQLite both accept.

use super::Backend;
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

    /// `event_type IN (…) [AND outcome IN (…)] AND occurred_at >= ? AND occurred_at < ?`
    fn selector(
        &mut self,
        event_types: &[String],
        outcomes: &[String],
        window: &Window,
    ) -> &mut Self {
        if let [only] = event_types {
            self.push("event_type = ").bind(Param::Text(only.clone()));
        } else {
            self.push("event_type IN ").bind_list(event_types);
        }
        if !outcomes.is_empty() {
            self.push(" AND outcome IN ").bind_list(outcomes);
        }
        self.push(" AND occurred_at >= ")
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
/// and per interval (0 = the newest, ending at the evaluation instant), the number of matching
/// events and the latest of them. Intervals without events return no row.
///
/// The interval of an event at `t` is `(end - t - 1) / cadence` in integer microseconds: interval
/// `i` is `[end - (i+1)·cadence, end - i·cadence)`, the same rule as [`crate::posture::interval_of`].
pub fn interval_counts(spec: &Soc2RequirementSpec, window: &Window) -> CompiledQuery {
    let mut q = Builder::default();
    q.push("SELECT control, bucket, COUNT(*) AS events, MAX(occurred_at) AS last_at FROM (");
    for (i, control) in spec.controls.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push(&format!("SELECT {i} AS control, ("))
            .bind(Param::Int(window.end))
            .push(" - occurred_at - 1) / ")
            .bind(Param::Int(spec.cadence_of(control).micros()))
            .push(" AS bucket, occurred_at FROM audit_events WHERE ")
            .selector(
                &control.evidence.event_types,
                &control.evidence.outcomes,
                window,
            );
    }
    q.push(") AS matched GROUP BY control, bucket ORDER BY control, bucket");
    q.finish()
}

/// The newest `limit` events that support the requirement (match any control), newest first.
///
/// One index-ordered probe per (control, event type), so the cost does not grow with the number
/// of events in the window.
pub fn recent_events(spec: &Soc2RequirementSpec, window: &Window, limit: u32) -> CompiledQuery {
    let mut q = Builder::default();
    q.push("SELECT event_id, occurred_at, event_type, actor, outcome, resource, hash FROM audit_events WHERE seq IN (");
    let mut first = true;
    for control in &spec.controls {
        for event_type in &control.evidence.event_types {
            if !first {
                q.push(" UNION ");
            }
            first = false;
            q.push("SELECT seq FROM (SELECT seq FROM audit_events WHERE ")
                .selector(
                    std::slice::from_ref(event_type),
                    &control.evidence.outcomes,
                    window,
                )
                .push(" ORDER BY occurred_at DESC LIMIT ")
                .bind(Param::Int(limit.into()))
                .push(") AS probe");
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
        assert_eq!(status.parameters[0], "10");
        assert!(status.sql.starts_with("SELECT control, bucket"));
    }
}
