//! The posture trend: each requirement's daily state over the history period, as data (from the
//! store's daily history) and as an SVG chart with green streaks visible.

use std::collections::BTreeMap;
use std::fmt::Write;

use jiff::Timestamp;
use kube::ResourceExt;

use super::{Trend, TrendDay, TrendRow};
use crate::crd::{Soc2Requirement, State};
use crate::evidence::Store;
use crate::evidence::history::day_of;

const DAY_US: i64 = 86_400_000_000;

/// The trend of `requirements` over the `days` UTC days ending with the day of `at`.
pub async fn gather(
    store: &Store,
    requirements: &[Soc2Requirement],
    at: Timestamp,
    days: u32,
) -> crate::Result<Trend> {
    let to = at.as_microsecond();
    let (from, to) = (day_of(to - i64::from(days.max(1) - 1) * DAY_US), day_of(to));
    let mut by_namespace: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in requirements {
        by_namespace
            .entry(r.namespace().unwrap_or_default())
            .or_default()
            .push(r.name_any());
    }
    let mut history = BTreeMap::new();
    for (namespace, names) in &by_namespace {
        for day in store.posture_history(namespace, names, &from, &to).await? {
            history
                .entry((day.namespace.clone(), day.name.clone()))
                .or_insert_with(Vec::new)
                .push(TrendDay {
                    date: day.day,
                    state: day.state,
                });
        }
    }
    let mut rows: Vec<TrendRow> = requirements
        .iter()
        .map(|r| TrendRow {
            id: r.spec.id.clone(),
            name: r.name_any(),
            green_since: r.status.as_ref().and_then(|s| s.green_since),
            days: history
                .remove(&(r.namespace().unwrap_or_default(), r.name_any()))
                .unwrap_or_default(),
        })
        .collect();
    rows.sort_by(|a, b| (&a.id, &a.name).cmp(&(&b.id, &b.name)));
    Ok(Trend { from, to, rows })
}

/// Every UTC day of the trend, oldest first.
pub fn dates(trend: &Trend) -> Vec<String> {
    let parse = |d: &str| d.parse::<jiff::civil::Date>().ok();
    let (Some(mut day), Some(last)) = (parse(&trend.from), parse(&trend.to)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while day <= last && out.len() < 3_660 {
        out.push(day.to_string());
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    out
}

pub fn colour(state: State) -> &'static str {
    match state {
        State::Green => "#2e7d32",
        State::Amber => "#ef8f00",
        State::Red => "#c62828",
        State::Unknown => "#757575",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The trend as an SVG chart: a row per requirement, a cell per day coloured by state (with the
/// state in words in each cell's tooltip and the current streak in words at the row's end); a
/// day without an evaluation is an empty outline.
pub fn svg(trend: &Trend) -> String {
    let days = dates(trend);
    let (label_w, streak_w, row_h, top) = (96.0, 190.0, 22.0, 44.0);
    let cell_w = (720.0 / days.len().max(1) as f64).clamp(3.0, 24.0);
    let width = label_w + cell_w * days.len() as f64 + streak_w;
    let height = top + row_h * trend.rows.len() as f64 + 30.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" role="img" aria-label="SOC 2 posture trend, {} to {}" font-family="sans-serif" font-size="12">"##,
        trend.from, trend.to
    );
    let _ = write!(
        out,
        r##"<title>SOC 2 posture trend, {} to {}</title><text x="0" y="16" font-size="14" font-weight="bold">Posture trend, {} to {}</text>"##,
        trend.from, trend.to, trend.from, trend.to
    );
    let _ = write!(
        out,
        r##"<text x="0" y="34" fill="#555">Each cell is one day: green, amber, red, grey (unknown); an outline had no evaluation.</text>"##
    );
    for (i, row) in trend.rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = write!(
            out,
            r##"<text x="0" y="{:.1}">{}</text>"##,
            y + 15.0,
            escape(&row.id)
        );
        let by_day: BTreeMap<&str, State> = row
            .days
            .iter()
            .map(|d| (d.date.as_str(), d.state))
            .collect();
        for (j, day) in days.iter().enumerate() {
            let x = label_w + cell_w * j as f64;
            match by_day.get(day.as_str()) {
                Some(state) => {
                    let _ = write!(
                        out,
                        r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="16" fill="{}"><title>{} {day}: {state}</title></rect>"##,
                        (cell_w - 1.0).max(1.0),
                        colour(*state),
                        escape(&row.id)
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="16" fill="none" stroke="#ccc"><title>{} {day}: not evaluated</title></rect>"##,
                        (cell_w - 1.0).max(1.0),
                        escape(&row.id)
                    );
                }
            }
        }
        let streak = match (row.days.last().map(|d| d.state), row.green_since) {
            (Some(State::Green), Some(since)) => {
                format!("Green since {}", since.strftime("%Y-%m-%d"))
            }
            (Some(state), _) => state.to_string(),
            (None, _) => "no history".into(),
        };
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}">{}</text>"##,
            label_w + cell_w * days.len() as f64 + 8.0,
            y + 15.0,
            escape(&streak)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trend() -> Trend {
        let day = |date: &str, state| TrendDay {
            date: date.into(),
            state,
        };
        Trend {
            from: "2026-11-29".into(),
            to: "2026-12-02".into(),
            rows: vec![TrendRow {
                id: "CC7.3".into(),
                name: "cc7-3".into(),
                green_since: Some("2026-12-01T06:00:00Z".parse().unwrap()),
                days: vec![
                    day("2026-11-29", State::Red),
                    day("2026-12-01", State::Green),
                    day("2026-12-02", State::Green),
                ],
            }],
        }
    }

    #[test]
    fn every_day_is_a_cell_with_its_state_in_words() {
        assert_eq!(
            dates(&trend()),
            ["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]
        );
        let svg = svg(&trend());
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<rect ").count(), 4);
        assert!(svg.contains("CC7.3 2026-11-29: Red"));
        assert!(svg.contains("CC7.3 2026-11-30: not evaluated"));
        assert_eq!(svg.matches(colour(State::Green)).count(), 2);
        assert!(svg.contains("Green since 2026-12-01"));
    }
}
