//! Daily posture history: one row per requirement per UTC day (the day's latest evaluation), so
//! that greenSince and the trend survive restarts and show in exports.

use jiff::Timestamp;
use kube::ResourceExt;
use sqlx::Row;

use super::Store;
use crate::Result;
use crate::crd::{HistoryEntry, PostureReport, Soc2Requirement, Soc2RequirementStatus, State};

/// One requirement's posture on one day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostureDay {
    /// UTC day, YYYY-MM-DD.
    pub day: String,
    /// '' for requirements evaluated from files.
    pub namespace: String,
    pub name: String,
    /// The CC id.
    pub requirement: String,
    pub state: State,
    pub events: u64,
    pub coverage: String,
    /// Microseconds: the first evaluation of the day in `state`.
    pub state_since: i64,
}

/// The UTC day of an instant in microseconds, YYYY-MM-DD.
pub fn day_of(at: i64) -> String {
    crate::posture::timestamp(at)
        .strftime("%Y-%m-%d")
        .to_string()
}

fn state_of(text: &str) -> State {
    State::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .unwrap_or_default()
}

impl Store {
    /// Records a requirement's posture for a day (`state_since` is the evaluation instant). A
    /// later evaluation of the same day replaces an earlier one; an earlier one (an `--at` in
    /// the past) does not replace a later one.
    pub async fn record_posture(&self, day: &PostureDay) -> Result<()> {
        sqlx::query(
            "INSERT INTO posture_history (day, namespace, name, requirement, state, events, coverage, evaluated_at, state_since) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             ON CONFLICT (namespace, name, day) DO UPDATE SET \
               requirement = excluded.requirement, state = excluded.state, events = excluded.events, \
               coverage = excluded.coverage, evaluated_at = excluded.evaluated_at, \
               state_since = CASE WHEN posture_history.state = excluded.state \
                 THEN posture_history.state_since ELSE excluded.state_since END \
             WHERE excluded.evaluated_at >= posture_history.evaluated_at",
        )
        .bind(day.day.as_str())
        .bind(day.namespace.as_str())
        .bind(day.name.as_str())
        .bind(day.requirement.as_str())
        .bind(day.state.as_str())
        .bind(i64::try_from(day.events).unwrap_or(i64::MAX))
        .bind(day.coverage.as_str())
        .bind(day.state_since)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The history of the requirements `names` in `namespace` from day `from` to day `to`
    /// (inclusive, YYYY-MM-DD), by name then day.
    pub async fn posture_history(
        &self,
        namespace: &str,
        names: &[String],
        from: &str,
        to: &str,
    ) -> Result<Vec<PostureDay>> {
        let rows = sqlx::query(
            "SELECT day, namespace, name, requirement, state, events, coverage, state_since \
             FROM posture_history WHERE namespace = $1 AND day >= $2 AND day <= $3 ORDER BY name, day",
        )
        .bind(namespace)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut days = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(2)?;
            if !names.contains(&name) {
                continue;
            }
            let state: String = row.try_get(4)?;
            let events: i64 = row.try_get(5)?;
            days.push(PostureDay {
                day: row.try_get(0)?,
                namespace: row.try_get(1)?,
                name,
                requirement: row.try_get(3)?,
                state: state_of(&state),
                events: events.unsigned_abs(),
                coverage: row.try_get(6)?,
                state_since: row.try_get(7)?,
            });
        }
        Ok(days)
    }

    /// Every recorded day of one requirement up to the day of `at`, oldest first.
    pub async fn requirement_history(
        &self,
        namespace: &str,
        name: &str,
        at: i64,
    ) -> Result<Vec<PostureDay>> {
        let names = [name.to_string()];
        self.posture_history(namespace, &names, "0000-00-00", &day_of(at))
            .await
    }
}

impl Store {
    /// A PostureReport's `status.history`: its selected requirements' daily posture over the last
    /// `historyDays` days up to `now`.
    pub async fn report_history(
        &self,
        report: &PostureReport,
        requirements: &[Soc2Requirement],
        now: Timestamp,
    ) -> Result<Vec<HistoryEntry>> {
        let names: Vec<String> = requirements
            .iter()
            .filter(|r| crate::posture::selects(report, r))
            .map(|r| r.name_any())
            .collect();
        let to = now.as_microsecond();
        let from = to - i64::from(report.spec.history_days.saturating_sub(1)) * 86_400_000_000;
        let namespace = report.namespace().unwrap_or_default();
        let days = self
            .posture_history(&namespace, &names, &day_of(from), &day_of(to))
            .await?;
        Ok(crate::posture::history_entries(&days))
    }

    /// Dates a freshly computed `status` from the history: a Green requirement without a
    /// greenSince carried over from its previous status (a first evaluation, a restart from
    /// files) gets the start of its streak as the history shows it, today included. With
    /// `record`, today's row is written too. An Unknown state is never recorded.
    pub async fn apply_history(
        &self,
        requirement: &Soc2Requirement,
        status: &mut Soc2RequirementStatus,
        at: Timestamp,
        record: bool,
    ) -> Result<()> {
        let state = status.state.unwrap_or_default();
        let (namespace, name) = (
            requirement.namespace().unwrap_or_default(),
            requirement.name_any(),
        );
        let at = at.as_microsecond();
        let today = PostureDay {
            day: day_of(at),
            namespace: namespace.clone(),
            name: name.clone(),
            requirement: requirement.spec.id.clone(),
            state,
            events: status.events_in_window.unwrap_or_default(),
            coverage: status.coverage.clone().unwrap_or_default(),
            state_since: at,
        };
        if record && state != State::Unknown {
            self.record_posture(&today).await?;
        }
        if state == State::Green && status.green_since.is_none() {
            let mut history = self.requirement_history(&namespace, &name, at).await?;
            // Today as this evaluation sees it, whether recorded or not.
            match history.last_mut() {
                Some(last) if last.day == today.day => {
                    if last.state != state {
                        *last = today;
                    }
                }
                _ => history.push(today),
            }
            status.green_since = green_streak_start(&history).map(crate::posture::timestamp);
        }
        Ok(())
    }
}

/// When the current Green streak began, from a requirement's history (oldest first): the first
/// Green evaluation after the last Amber or Red day. Unknown days (the store unreadable) neither
/// break nor extend a streak. None when the newest known day is not Green.
pub fn green_streak_start(history: &[PostureDay]) -> Option<i64> {
    let mut start = None;
    for day in history.iter().rev() {
        match day.state {
            State::Green => start = Some(day.state_since),
            State::Unknown => {}
            State::Amber | State::Red => break,
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str, state: State, since: i64) -> PostureDay {
        PostureDay {
            day: d.into(),
            namespace: String::new(),
            name: "n".into(),
            requirement: "CC1.1".into(),
            state,
            events: 0,
            coverage: String::new(),
            state_since: since,
        }
    }

    #[test]
    fn the_streak_starts_after_the_last_dip() {
        use State::*;
        let h = [
            day("2026-12-01", Green, 1),
            day("2026-12-02", Red, 2),
            day("2026-12-03", Green, 3),
            day("2026-12-04", Unknown, 4),
            day("2026-12-05", Green, 5),
        ];
        assert_eq!(green_streak_start(&h), Some(3));
        assert_eq!(green_streak_start(&h[..2]), None, "Red now");
        assert_eq!(
            green_streak_start(&h[..1]),
            Some(1),
            "green since records began"
        );
        assert_eq!(
            green_streak_start(&h[..4]),
            Some(3),
            "an outage does not break it"
        );
        assert_eq!(green_streak_start(&[]), None);
        assert_eq!(day_of(0), "1970-01-01");
    }
}
