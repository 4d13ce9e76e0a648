//! PostureReport: aggregate the selected requirements into the report's status, and on its
//! schedule run the posture job: render the exports and publish them.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::{Context, Error, api, apply_status};
use crate::crd::{Artifact, ExportFormat, PostureReport, PostureReportStatus, Soc2Requirement};
use crate::export::pdf::Paper;
use crate::export::sink::{
    Credentials, Rendered, SinkError, publish_configmap, publish_object_store,
};
use crate::export::{csv, gather, json, pdf};
use crate::posture::alerts::{payload, transitions};
use crate::posture::schedule::Schedule;
use crate::posture::{report_status, selects, set_condition};

pub async fn reconcile(report: Arc<PostureReport>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_timer("report");
    let now = Timestamp::now();
    let requirements: Vec<Soc2Requirement> = ctx
        .requirements
        .state()
        .iter()
        .map(|r| (**r).clone())
        .collect();
    let mut status = report_status(&report, &requirements);
    let previous = report.status.clone().unwrap_or_default();
    let generation = report.metadata.generation;
    if let Some(history) = history(&report, &requirements, now, &ctx).await {
        status.history = history;
    }

    let mut published = None;
    match report.spec.schedule.parse::<Schedule>() {
        Err(reason) => set_condition(
            &mut status.conditions,
            "Ready",
            "False",
            "InvalidSchedule",
            reason,
            generation,
            now,
        ),
        Ok(schedule) => {
            set_condition(
                &mut status.conditions,
                "Ready",
                "True",
                "Aggregated",
                "Requirements aggregated".into(),
                generation,
                now,
            );
            let selected: Vec<Soc2Requirement> = requirements
                .into_iter()
                .filter(|r| selects(&report, r))
                .collect();
            // A run waits until every selected requirement has been evaluated once.
            let evaluated = selected
                .iter()
                .all(|r| r.status.as_ref().is_some_and(|s| s.state.is_some()));
            if evaluated && schedule.due(previous.last_run_at, now) {
                let outcome = run(&report, &selected, now, &ctx).await;
                status.last_run_at = Some(now);
                let (cond, reason, message) = match outcome {
                    Ok(artifacts) => {
                        let message = format!("Published {} export(s)", artifacts.len());
                        status.artifacts = artifacts;
                        ("True", "Published", message)
                    }
                    Err((reason, message)) => ("False", reason, message),
                };
                set_condition(
                    &mut status.conditions,
                    "ExportsPublished",
                    cond,
                    reason,
                    message,
                    generation,
                    now,
                );
                published = Some(cond == "True");
            }
            status.next_run_at = Some(schedule.next_after(status.last_run_at.unwrap_or(now)));
        }
    }

    // Tell the webhook about dips and recoveries since the last aggregation (before the status
    // write, so that a crash in between repeats a notice rather than losing it).
    let moved = transitions(&previous.requirements, &status.requirements);
    let webhook_failed = match (&report.spec.webhook, moved.is_empty()) {
        (Some(webhook), false) => notify(&ctx, &webhook.url, &payload(&report, &moved, now))
            .await
            .err(),
        _ => None,
    };

    if report.status.as_ref() != Some(&status) {
        apply_status(&ctx, report.as_ref(), &status, "report").await?;
    }
    if let Some(reason) = webhook_failed {
        let event = Event {
            type_: EventType::Warning,
            reason: "WebhookFailed".into(),
            note: Some(reason),
            action: "Notify".into(),
            secondary: None,
        };
        ctx.recorder
            .publish(&event, &report.object_ref(&()))
            .await?;
    }
    if let Some(event) = export_event(&previous, &status, published) {
        ctx.recorder
            .publish(&event, &report.object_ref(&()))
            .await?;
    }

    // Wake for the next run, and meanwhile at the requeue interval (the watch on requirements
    // re-runs the aggregation as soon as one changes).
    let until_next = status
        .next_run_at
        .map(|next| Duration::try_from(next.duration_since(now)).unwrap_or_default())
        .unwrap_or(ctx.config.requeue);
    Ok(Action::requeue(
        until_next
            .min(ctx.config.requeue)
            .max(Duration::from_secs(1)),
    ))
}

/// POSTs an Alertmanager webhook payload; the reason when it was not accepted.
async fn notify(ctx: &Context, url: &str, body: &serde_json::Value) -> Result<(), String> {
    let response = ctx
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if response.status().is_success() {
        tracing::info!(%url, alerts = body["alerts"].as_array().map_or(0, Vec::len), "webhook notified");
        Ok(())
    } else {
        Err(format!("POST {url}: HTTP {}", response.status()))
    }
}

/// The report's history from the store; None when it cannot be read (the status keeps what it
/// had).
async fn history(
    report: &PostureReport,
    requirements: &[Soc2Requirement],
    now: Timestamp,
    ctx: &Context,
) -> Option<Vec<crate::crd::HistoryEntry>> {
    let store = ctx.evidence.get().await.ok()?;
    store
        .report_history(report, requirements, now)
        .await
        .inspect_err(|error| tracing::warn!(%error, "posture history unreadable"))
        .ok()
}

/// The posture job: render every requested format and publish to the destinations.
async fn run(
    report: &PostureReport,
    selected: &[Soc2Requirement],
    now: Timestamp,
    ctx: &Context,
) -> Result<Vec<Artifact>, (&'static str, String)> {
    let destination = report.spec.destination.clone().unwrap_or_default();
    if destination.config_map.is_none() && destination.object_store.is_none() {
        return Ok(Vec::new());
    }
    let store = ctx
        .evidence
        .get()
        .await
        .map_err(|e| ("EvidenceStoreUnavailable", e))?;
    let key = ctx.config.signing_key.as_ref();
    let document = gather(
        &store,
        selected,
        report.spec.organization.as_ref(),
        now,
        report.spec.history_days,
        key,
    )
    .await
    .map_err(|e| ("EvidenceStoreUnavailable", e.to_string()))?;
    let formats = if report.spec.formats.is_empty() {
        vec![ExportFormat::Pdf, ExportFormat::Csv, ExportFormat::Json]
    } else {
        report.spec.formats.clone()
    };
    let files: Vec<Rendered> = formats
        .into_iter()
        .map(|format| Rendered {
            format,
            bytes: match format {
                ExportFormat::Pdf => pdf::render(&document, Paper::A4),
                ExportFormat::Csv => csv::requirements(&document).into_bytes(),
                ExportFormat::Json => json::render(&document, key).into_bytes(),
            },
        })
        .collect();

    let mut artifacts = Vec::new();
    if let Some(config_map) = destination.config_map {
        let published = publish_configmap(&ctx.client, report, &config_map.name, &files, now)
            .await
            .map_err(|e| {
                let reason = if matches!(e, SinkError::TooLarge { .. }) {
                    "ExportTooLarge"
                } else {
                    "ConfigMapWriteFailed"
                };
                (reason, e.to_string())
            })?;
        artifacts.extend(published);
    }
    if let Some(target) = destination.object_store {
        let credentials = match &target.credentials_secret {
            Some(name) => secret_data(ctx, report, name)
                .await
                .map_err(|e| ("CredentialsUnavailable", e))?,
            None => Credentials::new(),
        };
        let published = publish_object_store(&target.url, &credentials, &files, now)
            .await
            .map_err(|e| ("ObjectStoreWriteFailed", e.to_string()))?;
        artifacts.extend(published);
    }
    Ok(artifacts)
}

/// The string values of a Secret in the report's namespace (read by name only).
async fn secret_data(
    ctx: &Context,
    report: &PostureReport,
    name: &str,
) -> Result<Credentials, String> {
    let secret = api::<Secret>(&ctx.client, report)
        .get(name)
        .await
        .map_err(|e| format!("reading Secret {name}: {e}"))?;
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect())
}

/// An Event when publishing starts failing (Warning) or recovers (Normal); none otherwise.
fn export_event(
    previous: &PostureReportStatus,
    status: &PostureReportStatus,
    published: Option<bool>,
) -> Option<Event> {
    let published = published?;
    let was = previous
        .conditions
        .iter()
        .find(|c| c.type_ == "ExportsPublished")
        .map(|c| c.status == "True");
    if was == Some(published) || (was.is_none() && published) {
        return None;
    }
    let condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == "ExportsPublished")?;
    Some(Event {
        type_: if published {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: condition.reason.clone(),
        note: Some(condition.message.chars().take(1000).collect()),
        action: "Export".into(),
        secondary: None,
    })
}

pub fn error_policy(report: Arc<PostureReport>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %report.name_any(), %error, "reconcile failed");
    ctx.metrics.reconcile_error("report", error);
    Action::requeue(Duration::from_secs(5))
}
