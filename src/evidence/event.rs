//! One audit event: the JSON Lines record producers send, and its stored form.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest event id accepted.
pub const MAX_ID_LEN: usize = 256;

/// The JSON Lines record: `{"id", "occurredAt", "type", "actor", "outcome", "resource", "attributes"}`.
/// `id`, `occurredAt` (RFC 3339) and `type` are required; unknown fields are rejected rather than
/// silently dropped from the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventRecord {
    pub id: String,
    #[serde(deserialize_with = "rfc3339")]
    pub occurred_at: Timestamp,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
}

fn rfc3339<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|e| {
        serde::de::Error::custom(format!(
            "occurredAt {text:?} is not an RFC 3339 timestamp with an offset, e.g. 2026-12-01T09:30:00Z ({e})"
        ))
    })
}

/// An event as stored and hashed: time in microseconds, attributes as canonical JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub occurred_at: i64,
    pub event_type: String,
    pub actor: Option<String>,
    pub outcome: Option<String>,
    pub resource: Option<String>,
    pub attributes: Option<String>,
}

/// Parses and checks one line. The error is the reason alone; the caller adds the line number.
pub fn parse_line(line: &str) -> Result<Event, String> {
    let record: EventRecord = serde_json::from_str(line).map_err(|e| {
        let text = e.to_string();
        // serde_json says "at line 1 column N" of this one line; the column is what helps.
        match text.rfind(" at line ") {
            Some(at) => format!("{} (column {})", &text[..at], e.column()),
            None => text,
        }
    })?;
    Event::try_from(record)
}

impl TryFrom<EventRecord> for Event {
    type Error = String;

    fn try_from(r: EventRecord) -> Result<Event, String> {
        if r.id.trim().is_empty() {
            return Err("id must not be empty".into());
        }
        if r.id.len() > MAX_ID_LEN {
            return Err(format!("id is longer than {MAX_ID_LEN} bytes"));
        }
        if r.event_type.trim().is_empty() {
            return Err("type must not be empty".into());
        }
        if r.occurred_at.subsec_nanosecond() % 1000 != 0 {
            return Err(
                "occurredAt has sub-microsecond precision, which the store cannot keep".into(),
            );
        }
        Ok(Event {
            id: r.id,
            occurred_at: r.occurred_at.as_microsecond(),
            event_type: r.event_type,
            actor: r.actor,
            outcome: r.outcome,
            resource: r.resource,
            attributes: r.attributes.map(|a| canonical_json(&Value::Object(a))),
        })
    }
}

/// Compact JSON with object keys sorted (by UTF-8 bytes) at every depth: the attributes exactly
/// as hashed, whatever key order the producer used.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_record() {
        let e = parse_line(
            r#"{"id":"e1","occurredAt":"2026-12-01T10:00:00.5+01:00","type":"policy.decision","actor":"agent:7","outcome":"deny","resource":"tool:shell","attributes":{"z":1,"a":{"y":[1,{"b":2,"a":1}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            e.occurred_at,
            "2026-12-01T09:00:00.5Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_microsecond()
        );
        assert_eq!(
            e.attributes.as_deref(),
            Some(r#"{"a":{"y":[1,{"a":1,"b":2}]},"z":1}"#)
        );
        assert_eq!(e.outcome.as_deref(), Some("deny"));
    }

    #[test]
    fn rejects_bad_records_with_a_reason() {
        let cases = [
            (
                r#"{"id":"e1","occurredAt":"2026-12-01T10:00:00Z"}"#,
                "missing field `type`",
            ),
            (r#"{"id":"e1","type":"x"}"#, "missing field `occurredAt`"),
            (
                r#"{"id":"","occurredAt":"2026-12-01T10:00:00Z","type":"x"}"#,
                "id must not be empty",
            ),
            (
                r#"{"id":"e1","occurredAt":"2026-12-01T10:00:00Z","type":" "}"#,
                "type must not be empty",
            ),
            (
                r#"{"id":"e1","occurredAt":"yesterday","type":"x"}"#,
                "occurredAt",
            ),
            (
                r#"{"id":"e1","occurredAt":"2026-12-01T10:00:00","type":"x"}"#,
                "offset",
            ),
            (
                r#"{"id":"e1","occurredAt":"2026-12-01T10:00:00.0000001Z","type":"x"}"#,
                "sub-microsecond",
            ),
            (
                r#"{"id":"e1","occurredAt":"2026-12-01T10:00:00Z","type":"x","extra":1}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"id":"e1","occurredAt":"2026-12-01T10:00:00Z","type":"x","attributes":[1]}"#,
                "invalid type",
            ),
            (r#"{"id":"e1", "#, "EOF"),
        ];
        for (line, want) in cases {
            let err = parse_line(line).unwrap_err();
            assert!(
                err.to_lowercase().contains(&want.to_lowercase()),
                "{line}: {err}"
            );
            assert!(!err.contains("at line 1"), "{err}");
        }
    }
}
