//! PostureReport: aggregate the selected requirements into the report's status.
//!
//! Seams for what comes next: the schedule decides the requeue, the history and exports hang off
//! a run; today a run is the aggregation alone.

use std::sync::Arc;

use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;

use super::{Context, Error, api};
use crate::crd::{FIELD_MANAGER, PostureReport, Soc2Requirement};
use crate::posture::report_status;

pub async fn reconcile(report: Arc<PostureReport>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_timer("report");
    let requirements: Vec<Soc2Requirement> = ctx
        .requirements
        .state()
        .iter()
        .map(|r| (**r).clone())
        .collect();
    let status = report_status(&report, &requirements);
    if report.status.as_ref() != Some(&status) {
        let patch = json!({"apiVersion": "compliance.behavry.io/v1alpha1", "kind": "PostureReport", "status": status});
        api::<PostureReport>(&ctx.client, report.as_ref())
            .patch_status(
                &report.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        ctx.metrics
            .status_writes
            .get_or_create(&super::metrics::ControllerLabels {
                controller: "report".into(),
            })
            .inc();
    }
    Ok(Action::requeue(ctx.config.requeue))
}

pub fn error_policy(report: Arc<PostureReport>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %report.name_any(), %error, "reconcile failed");
    ctx.metrics.reconcile_error("report", error);
    Action::requeue(std::time::Duration::from_secs(5))
}
