//! Realistic demo evidence relative to an instant, shaped so the example requirements show
//! Green, Amber and Red: every control is fed at its cadence except the HITL escalation queue
//! (CC7.3, days without a resolved escalation: Amber) and change management (CC7.4, whose events
//! stop 40 days before the end: Red).

use std::io::Write;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::evidence::event::EventRecord;

const DAY: i64 = 86_400_000_000;

/// How an event type's events are spread over time.
#[derive(Clone, Copy)]
enum Pattern {
    /// Every day; `weight` is its share of the daily volume.
    Daily { weight: u32 },
    /// Every `every` days (a control with a weekly cadence gets one every 2 days, so that the
    /// short remainder interval at the window's start is covered too).
    Every { days: i64 },
    /// One event, this many days before the end (a monthly drill).
    Once { days_ago: i64 },
    /// Daily, except every `every`-th day (a queue nobody works on some days).
    Gaps { weight: u32, every: i64 },
    /// Daily until `days_ago` before the end, then nothing.
    Until { weight: u32, days_ago: i64 },
}

struct Source {
    event_type: &'static str,
    outcomes: &'static [&'static str],
    actors: &'static [&'static str],
    resources: &'static [&'static str],
    pattern: Pattern,
}

const AGENTS: &[&str] = &[
    "agent:support-bot",
    "agent:code-reviewer",
    "agent:data-analyst",
    "agent:ops-runner",
];
const PEOPLE: &[&str] = &[
    "user:alice@example.com",
    "user:bob@example.com",
    "user:carol@example.com",
];
const SYSTEM: &[&str] = &["system:soc2-operator", "system:platform"];
const TOOLS: &[&str] = &[
    "tool:github",
    "tool:shell",
    "tool:jira",
    "tool:postgres",
    "tool:slack",
];

#[rustfmt::skip]
const SOURCES: &[Source] = &[
    // CC2.1
    Source { event_type: "surface_map.updated", outcomes: &["success"], actors: SYSTEM, resources: &["surface:agents", "surface:tools"], pattern: Pattern::Every { days: 2 } },
    Source { event_type: "decision_trace.classified", outcomes: &["success"], actors: AGENTS, resources: TOOLS, pattern: Pattern::Daily { weight: 12 } },
    // CC5.2
    Source { event_type: "agent.token.verified", outcomes: &["success", "success", "success", "failure"], actors: AGENTS, resources: &["api:gateway"], pattern: Pattern::Daily { weight: 14 } },
    Source { event_type: "auth.sso.login", outcomes: &["success", "success", "failure"], actors: PEOPLE, resources: &["idp:okta-oidc", "idp:azure-saml"], pattern: Pattern::Daily { weight: 4 } },
    Source { event_type: "rbac.role.changed", outcomes: &["success"], actors: PEOPLE, resources: &["role:admin", "role:operator", "role:viewer"], pattern: Pattern::Every { days: 2 } },
    // CC6.1
    Source { event_type: "token.workflow.issued", outcomes: &["success"], actors: AGENTS, resources: &["wf_token", "d_token"], pattern: Pattern::Daily { weight: 8 } },
    Source { event_type: "auth.session.synced", outcomes: &["success"], actors: SYSTEM, resources: &["clerk:sessions"], pattern: Pattern::Daily { weight: 3 } },
    Source { event_type: "siem.credential.encrypted", outcomes: &["success"], actors: SYSTEM, resources: &["siem:splunk", "siem:datadog"], pattern: Pattern::Every { days: 2 } },
    // CC6.6
    Source { event_type: "policy.decision", outcomes: &["allow", "allow", "allow", "deny"], actors: AGENTS, resources: TOOLS, pattern: Pattern::Daily { weight: 30 } },
    Source { event_type: "context_gate.tool_filtered", outcomes: &["hidden", "visible"], actors: AGENTS, resources: TOOLS, pattern: Pattern::Daily { weight: 10 } },
    Source { event_type: "restricted_mode.changed", outcomes: &["enabled", "disabled"], actors: PEOPLE, resources: &["workspace:prod"], pattern: Pattern::Every { days: 2 } },
    // CC7.2
    Source { event_type: "monitor.behavior.evaluated", outcomes: &["normal", "normal", "anomalous"], actors: SYSTEM, resources: AGENTS, pattern: Pattern::Daily { weight: 6 } },
    Source { event_type: "monitor.intent_drift.scanned", outcomes: &["none", "none", "drift"], actors: SYSTEM, resources: AGENTS, pattern: Pattern::Daily { weight: 3 } },
    Source { event_type: "alert.escalated", outcomes: &["acknowledged", "resolved"], actors: PEOPLE, resources: &["alert:behavior", "alert:drift"], pattern: Pattern::Every { days: 2 } },
    // CC7.3: the HITL queue is worked most days but not all (Amber).
    Source { event_type: "hitl.escalation.resolved", outcomes: &["approved", "rejected"], actors: PEOPLE, resources: TOOLS, pattern: Pattern::Gaps { weight: 1, every: 4 } },
    Source { event_type: "kill_switch.drill", outcomes: &["success"], actors: PEOPLE, resources: &["kill_switch:global"], pattern: Pattern::Once { days_ago: 12 } },
    // CC7.4: change evidence stopped when the workflow moved (Red).
    Source { event_type: "policy.version.published", outcomes: &["success"], actors: PEOPLE, resources: &["policy:prod-default"], pattern: Pattern::Until { weight: 1, days_ago: 40 } },
    Source { event_type: "change_request.approved", outcomes: &["approved"], actors: PEOPLE, resources: &["change:policy"], pattern: Pattern::Until { weight: 1, days_ago: 40 } },
    // CC8.1
    Source { event_type: "integrity.chain.verified", outcomes: &["success"], actors: SYSTEM, resources: &["store:audit_events"], pattern: Pattern::Every { days: 1 } },
    Source { event_type: "integrity.checkpoint.signed", outcomes: &["success"], actors: SYSTEM, resources: &["store:audit_events"], pattern: Pattern::Every { days: 1 } },
];

/// What to generate.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Days of history before `end`.
    pub days: u32,
    /// Approximate events per day over all sources.
    pub events_per_day: u32,
    /// Seed: the same seed, days and end give the same events.
    pub seed: u64,
    /// The instant the history ends at (normally now).
    pub end: Timestamp,
}

/// Writes the demo events as JSON Lines, oldest first, one day in memory at a time.
/// Returns the number of events written.
pub fn write_events(options: &DemoOptions, out: &mut impl Write) -> std::io::Result<u64> {
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let end = options.end.as_microsecond();
    let total_weight: u32 = SOURCES.iter().map(|s| weight(s.pattern)).sum();
    let per_weight = f64::from(options.events_per_day.max(1)) / f64::from(total_weight);
    let mut serial = 0u64;
    for day in (0..i64::from(options.days)).rev() {
        // Day `day` is [end - (day+1)·DAY, end - day·DAY).
        let start = end - (day + 1) * DAY;
        let mut today: Vec<(i64, &Source)> = Vec::new();
        let fixed = |rng: &mut fastrand::Rng| start + DAY / 10 + rng.i64(0..DAY * 8 / 10);
        for source in SOURCES {
            let count = match source.pattern {
                Pattern::Daily { weight } => volume(weight, per_weight, &mut rng),
                Pattern::Every { days } => u64::from(day % days == 0),
                Pattern::Once { days_ago } => u64::from(day == days_ago),
                Pattern::Gaps { weight, every } => {
                    if day % every != every - 1 {
                        volume(weight, per_weight, &mut rng)
                    } else {
                        0
                    }
                }
                Pattern::Until { weight, days_ago } => {
                    if day >= days_ago {
                        volume(weight, per_weight, &mut rng)
                    } else {
                        0
                    }
                }
            };
            for _ in 0..count {
                today.push((fixed(&mut rng), source));
            }
        }
        today.sort_by_key(|(t, _)| *t);
        for (t, source) in today {
            serial += 1;
            let record = record(options, serial, t, source, &mut rng);
            serde_json::to_writer(&mut *out, &record)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(serial)
}

fn weight(pattern: Pattern) -> u32 {
    match pattern {
        Pattern::Daily { weight }
        | Pattern::Gaps { weight, .. }
        | Pattern::Until { weight, .. } => weight,
        Pattern::Every { .. } | Pattern::Once { .. } => 0,
    }
}

/// At least one event on a day the source is active, around its share of the volume.
fn volume(weight: u32, per_weight: f64, rng: &mut fastrand::Rng) -> u64 {
    let mean = f64::from(weight) * per_weight;
    ((mean * (0.5 + rng.f64())).round() as u64).max(1)
}

fn record(
    options: &DemoOptions,
    serial: u64,
    t: i64,
    source: &Source,
    rng: &mut fastrand::Rng,
) -> EventRecord {
    let pick =
        |items: &[&str], rng: &mut fastrand::Rng| items[rng.usize(0..items.len())].to_string();
    let occurred_at = Timestamp::UNIX_EPOCH + SignedDuration::from_micros(t);
    EventRecord {
        id: format!(
            "demo-{}-{}-{serial:09}",
            options.seed,
            options.end.as_second()
        ),
        occurred_at,
        event_type: source.event_type.into(),
        actor: Some(pick(source.actors, rng)),
        outcome: Some(pick(source.outcomes, rng)),
        resource: Some(pick(source.resources, rng)),
        attributes: json!({
            "source": "demo",
            "traceId": format!("{:016x}", rng.u64(..)),
            "latencyMs": rng.u32(1..400),
        })
        .as_object()
        .cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::event::parse_line;

    #[test]
    fn deterministic_ordered_and_ingestible() {
        let options = DemoOptions {
            days: 10,
            events_per_day: 200,
            seed: 7,
            end: "2026-12-01T00:00:00Z".parse().unwrap(),
        };
        let mut a = Vec::new();
        let n = write_events(&options, &mut a).unwrap();
        let mut b = Vec::new();
        write_events(&options, &mut b).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let events: Vec<_> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(events.len() as u64, n);
        assert!((1_500..3_000).contains(&n), "about 200 a day: {n}");
        assert!(
            events
                .windows(2)
                .all(|w| w[0].occurred_at <= w[1].occurred_at)
        );
        let end = options.end.as_microsecond();
        assert!(
            events
                .iter()
                .all(|e| e.occurred_at < end && e.occurred_at >= end - 10 * DAY)
        );
    }
}
