use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// What the schema admits for a duration: a whole number and one unit.
pub const PERIOD_PATTERN: &str = "^[1-9][0-9]{0,5}[smhdw]$";

/// A span of time written as in the resources: `30d`, `12h`, `7d`, `1w`.
///
/// Kept as written (so a status or an export shows what the user wrote) beside its length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Period {
    text: String,
    micros: i64,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid duration {0:?}: write a whole number followed by one unit of s, m, h, d or w (e.g. 30d, 12h, 1w)"
)]
pub struct PeriodError(String);

impl Period {
    /// Length in microseconds, the resolution of the evidence store.
    pub fn micros(&self) -> i64 {
        self.micros
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for Period {
    type Err = PeriodError;

    fn from_str(text: &str) -> Result<Self, PeriodError> {
        let invalid = || PeriodError(text.to_string());
        let (digits, unit) = text.split_at(text.len().saturating_sub(1));
        let well_formed = (1..=6).contains(&digits.len())
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit())
            && matches!(unit, "s" | "m" | "h" | "d" | "w");
        if !well_formed {
            return Err(invalid());
        }
        let length = humantime::parse_duration(text).map_err(|_| invalid())?;
        Ok(Period {
            text: text.to_string(),
            micros: i64::try_from(length.as_micros()).map_err(|_| invalid())?,
        })
    }
}

impl TryFrom<String> for Period {
    type Error = PeriodError;

    fn try_from(text: String) -> Result<Self, PeriodError> {
        text.parse()
    }
}

impl From<Period> for String {
    fn from(period: Period) -> String {
        period.text
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl JsonSchema for Period {
    fn schema_name() -> Cow<'static, str> {
        "Period".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": PERIOD_PATTERN,
            "description": "A duration: a whole number and one unit of s, m, h, d or w, e.g. 30d, 12h, 1w."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        let day = 86_400_000_000;
        assert_eq!("30d".parse::<Period>().unwrap().micros(), 30 * day);
        assert_eq!("1w".parse::<Period>().unwrap().micros(), 7 * day);
        assert_eq!(
            "12h".parse::<Period>().unwrap().micros(),
            12 * 3_600_000_000
        );
        assert_eq!("5m".parse::<Period>().unwrap().micros(), 300_000_000);
        assert_eq!("90s".parse::<Period>().unwrap().micros(), 90_000_000);
    }

    #[test]
    fn rejects_what_the_schema_rejects() {
        for bad in [
            "", "d", "0d", "07d", "30", "30x", "1.5d", "-1d", "1d12h", "30 d", "1M", "1234567d",
        ] {
            let err = bad.parse::<Period>().unwrap_err().to_string();
            assert!(err.contains("e.g. 30d"), "{bad}: {err}");
        }
    }

    #[test]
    fn keeps_the_text_as_written() {
        let period: Period = serde_json::from_str("\"7d\"").unwrap();
        assert_eq!(serde_json::to_string(&period).unwrap(), "\"7d\"");
    }
}
