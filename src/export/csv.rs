//! CSV for auditors' spreadsheets: one row per requirement, and the supporting set of one
//! requirement as one row per event.

use super::PostureExport;
use crate::crd::EventSummary;

/// A cell a spreadsheet would run as a formula is prefixed with `'` (CSV injection).
fn cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

fn time(t: Option<jiff::Timestamp>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

/// One row per requirement.
pub fn requirements(export: &PostureExport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "title",
        "state",
        "coverage",
        "events_in_window",
        "last_evidence_at",
        "green_since",
        "controls",
        "query",
        "query_parameters",
    ])
    .expect("writing to memory");
    for r in &export.requirements {
        let controls = r
            .controls
            .iter()
            .map(|c| {
                format!(
                    "{}: {} ({}/{})",
                    c.name, c.state, c.covered_intervals, c.total_intervals
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let (sql, parameters) = r
            .query
            .as_ref()
            .map(|q| (q.sql.clone(), q.parameters.join(", ")))
            .unwrap_or_default();
        w.write_record([
            cell(&r.id),
            cell(&r.title),
            r.state.to_string(),
            r.coverage.clone(),
            r.events_in_window.to_string(),
            time(r.last_evidence_at),
            time(r.green_since),
            cell(&controls),
            cell(&sql),
            cell(&parameters),
        ])
        .expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("flushing memory")).expect("CSV of strings is UTF-8")
}

const EVENT_HEADER: [&str; 7] = [
    "id",
    "occurred_at",
    "type",
    "actor",
    "outcome",
    "resource",
    "hash",
];

/// The header line of a supporting set's CSV.
pub fn event_header() -> Vec<u8> {
    record(EVENT_HEADER.map(String::from))
}

/// One event as one CSV line, so a supporting set streams row by row.
pub fn event_row(e: &EventSummary) -> Vec<u8> {
    let opt = |v: &Option<String>| cell(v.as_deref().unwrap_or_default());
    record([
        cell(&e.id),
        e.occurred_at.to_string(),
        cell(&e.event_type),
        opt(&e.actor),
        opt(&e.outcome),
        opt(&e.resource),
        e.hash.clone(),
    ])
}

fn record<const N: usize>(fields: [String; N]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields).expect("writing to memory");
    w.into_inner().expect("flushing memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("CC6.6"), "CC6.6");
    }

    #[test]
    fn events_round_trip_through_a_csv_reader() {
        let e = EventSummary {
            id: "e,1".into(),
            occurred_at: jiff::Timestamp::UNIX_EPOCH,
            event_type: "t".into(),
            actor: Some("user:\"quoted\"".into()),
            outcome: None,
            resource: Some("line\nbreak".into()),
            hash: "ab".into(),
        };
        let bytes = [event_header(), event_row(&e)].concat();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][0], "e,1");
        assert_eq!(&rows[0][3], "user:\"quoted\"");
        assert_eq!(&rows[0][5], "line\nbreak");
    }
}
