//! The tables `kubectl get` prints for our resources, from their printer columns.

use jiff::Timestamp;
use kube::ResourceExt;

use crate::crd::{PostureReport, Soc2Requirement};

/// Kubernetes' `HumanDuration` (apimachinery `util/duration`), as kubectl prints date columns.
pub fn human_duration(d: jiff::SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    t.map_or_else(
        || "<none>".into(),
        |t| human_duration(now.duration_since(t)),
    )
}

fn age(created: Option<Timestamp>, now: Timestamp) -> String {
    created.map_or_else(
        || "<unknown>".into(),
        |t| human_duration(now.duration_since(t)),
    )
}

fn or_none<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "<none>".into(), |v| v.to_string())
}

fn render(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = w));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `kubectl get soc2requirements`, with dates relative to `now`.
pub fn requirements_table(requirements: &[Soc2Requirement], now: Timestamp) -> String {
    let rows = requirements
        .iter()
        .map(|r| {
            let s = r.status.clone().unwrap_or_default();
            vec![
                r.name_any(),
                r.spec.id.clone(),
                or_none(s.state),
                or_none(s.coverage),
                or_none(s.events_in_window),
                since(s.last_evidence_at, now),
                since(s.green_since, now),
                age(r.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
            ]
        })
        .collect();
    render(
        &[
            "NAME",
            "ID",
            "STATE",
            "COVERAGE",
            "EVENTS",
            "LAST EVIDENCE",
            "GREEN SINCE",
            "AGE",
        ],
        rows,
    )
}

/// `kubectl get posturereports`, with dates relative to `now`.
pub fn reports_table(reports: &[PostureReport], now: Timestamp) -> String {
    let rows = reports
        .iter()
        .map(|r| {
            let s = r.status.clone().unwrap_or_default();
            let summary = s.summary.unwrap_or_default();
            vec![
                r.name_any(),
                or_none(s.state),
                summary.green.to_string(),
                summary.amber.to_string(),
                summary.red.to_string(),
                since(s.last_run_at, now),
                age(r.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
            ]
        })
        .collect();
    render(
        &["NAME", "STATE", "GREEN", "AMBER", "RED", "LAST RUN", "AGE"],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    #[test]
    fn human_durations_match_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (50 * 3600, "2d2h"),
            (8 * 86400, "8d"),
            (800 * 86400, "2y70d"),
            (3000 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(
                human_duration(SignedDuration::from_secs(secs)),
                want,
                "{secs}s"
            );
        }
    }

    #[test]
    fn columns_line_up() {
        let out = render(&["A", "LONG"], vec![vec!["xyz".into(), "1".into()]]);
        assert_eq!(out, "A     LONG\nxyz   1\n");
    }
}
