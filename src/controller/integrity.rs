//! The leader's integrity check: verify the whole chain on a schedule, record the outcome as
//! evidence (CC8.1 selects it), and sign a checkpoint of a chain found intact.

use std::sync::Arc;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::Context;

/// Runs one check at once, then one per `integrity_interval`, until `stop`.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(ctx.config.integrity_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.cancelled() => return,
        }
        if let Err(error) = check(&ctx).await {
            tracing::warn!(%error, "integrity check could not run");
            ctx.evidence.reset().await;
        }
    }
}

async fn check(ctx: &Context) -> Result<(), String> {
    let store = ctx.evidence.get().await?;
    let actor = format!("system:soc2-operator/{}", ctx.config.identity);
    let verification = store.verify(|_| {}).await.map_err(|e| e.to_string())?;
    let at = Timestamp::now();
    store
        .record(verification.to_event(&actor, at))
        .await
        .map_err(|e| e.to_string())?;
    match verification.problem() {
        Some(problem) => {
            // A broken chain is never signed: a checkpoint would vouch for the tampering.
            tracing::error!(%problem, verified = verification.verified, "evidence chain broken");
            return Ok(());
        }
        None => tracing::info!(
            events = verification.verified,
            head = verification.head.seq,
            "evidence chain verified"
        ),
    }
    if let Some(key) = &ctx.config.signing_key {
        let checkpoint = store
            .checkpoint(key, Timestamp::now().as_microsecond())
            .await
            .map_err(|e| e.to_string())?;
        store
            .record(checkpoint.to_event(&actor))
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(seq = checkpoint.seq, "checkpoint signed");
    }
    Ok(())
}
