//! The offline run: evaluate requirements from files against a store, no cluster needed.

use jiff::Timestamp;

use crate::crd::{PostureReport, Soc2Requirement};
use crate::evidence::Store;
use crate::manifests::Manifests;
use crate::posture::{Unobserved, Window, report_status, requirement_status};

/// The resources with their computed status.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub requirements: Vec<Soc2Requirement>,
    pub reports: Vec<PostureReport>,
    /// Why the store could not be read, when it could not: every state is then Unknown.
    pub outage: Option<String>,
}

/// Evaluates every requirement at `at` against `store` (or, when the store could not be opened,
/// marks each Unknown with the reason), then aggregates the reports over them.
/// With `record_history`, each requirement's state is written to the daily history.
pub async fn evaluate(
    store: Result<&Store, String>,
    manifests: Manifests,
    at: Timestamp,
    record_history: bool,
) -> Evaluated {
    let mut outage = store.as_ref().err().cloned();
    let mut requirements = manifests.requirements;
    for requirement in &mut requirements {
        let observed = match store {
            Ok(store) => {
                let window = Window::ending_at(at, &requirement.spec.window);
                store
                    .observe(&requirement.spec, &window)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(ref reason) => Err(reason.clone()),
        };
        if let Err(reason) = &observed {
            outage.get_or_insert_with(|| reason.clone());
        }
        let mut status = requirement_status(
            requirement,
            at,
            observed.map_err(Unobserved::StoreUnavailable),
        );
        if let (Ok(store), None) = (store.as_ref(), &outage)
            && let Err(error) = store
                .apply_history(requirement, &mut status, at, record_history)
                .await
        {
            tracing::warn!(%error, "posture history unavailable: greenSince left as computed");
        }
        requirement.status = Some(status);
    }
    let mut reports = manifests.reports;
    for report in &mut reports {
        let mut status = report_status(report, &requirements);
        if let (Ok(store), None) = (store.as_ref(), &outage) {
            match store.report_history(report, &requirements, at).await {
                Ok(history) => status.history = history,
                Err(error) => tracing::warn!(%error, "posture history unreadable"),
            }
        }
        report.status = Some(status);
    }
    Evaluated {
        requirements,
        reports,
        outage,
    }
}
