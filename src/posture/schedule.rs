//! The PostureReport schedule: a cron expression in UTC.

use croner::Cron;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Schedule(Cron);

impl std::str::FromStr for Schedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.parse::<Cron>()
            .map(Schedule)
            .map_err(|e| format!("schedule {text:?} is not a cron expression (minute hour day month weekday, UTC): {e}"))
    }
}

impl Schedule {
    /// The first scheduled instant strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Timestamp {
        self.0
            .find_next_occurrence(&t.to_zoned(TimeZone::UTC), false)
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    }

    /// Whether a run is due at `now`: never run yet, or a scheduled instant has passed since the
    /// last run (one run however many were missed while the operator was down).
    pub fn due(&self, last_run: Option<Timestamp>, now: Timestamp) -> bool {
        last_run.is_none_or(|last| self.next_after(last) <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn daily_at_six_utc() {
        let s: Schedule = "0 6 * * *".parse().unwrap();
        assert_eq!(
            s.next_after(t("2026-12-01T05:59:00Z")),
            t("2026-12-01T06:00:00Z")
        );
        assert_eq!(
            s.next_after(t("2026-12-01T06:00:00Z")),
            t("2026-12-02T06:00:00Z"),
            "strictly after"
        );
    }

    #[test]
    fn missed_runs_are_one_run() {
        let s: Schedule = "0 6 * * *".parse().unwrap();
        assert!(
            s.due(None, t("2026-12-01T00:00:00Z")),
            "a new report runs at once"
        );
        assert!(!s.due(Some(t("2026-12-01T06:00:00Z")), t("2026-12-02T05:59:59Z")));
        assert!(s.due(Some(t("2026-12-01T06:00:00Z")), t("2026-12-02T06:00:00Z")));
        assert!(
            s.due(Some(t("2026-11-01T06:00:00Z")), t("2026-12-05T00:00:00Z")),
            "down for a month: due once"
        );
    }

    #[test]
    fn nonsense_is_rejected_readably() {
        let e = "every day".parse::<Schedule>().unwrap_err();
        assert!(e.contains("not a cron expression"), "{e}");
        assert!("61 * * * *".parse::<Schedule>().is_err());
    }
}
