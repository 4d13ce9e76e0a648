//! An apiserver restart mid-run (its own test binary: it takes the shared apiserver away from
//! every other test for a while).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use kube::Api;
use soc2_operator::crd::{Soc2Requirement, State};

#[tokio::test]
async fn reconciling_resumes_after_an_apiserver_restart() {
    let ns = Namespace::new("restart");
    let evidence = Evidence::new();
    evidence.ingest(&event_now("unrelated", "other.type"));
    let operator = Operator::start(&ns, &evidence.url(), &format!("{}-op", ns.0));
    assert!(
        ns.apply(&hourly_requirement("drill", "kill_switch.drill"))
            .status
            .success()
    );
    let api: Api<Soc2Requirement> = Api::namespaced(client().await, &ns.0);
    let state = |name: &'static str| {
        let api = api.clone();
        async move { api.get(name).await.ok()?.status?.state }
    };
    eventually("drill to be Red", Duration::from_secs(60), || async {
        (state("drill").await == Some(State::Red)).then_some(())
    })
    .await;

    let o = Command::new(format!("{ROOT}/scripts/kube-env.sh"))
        .arg("restart-apiserver")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // New evidence and a new requirement after the restart are both picked up.
    evidence.ingest(&event_now("drill-1", "kill_switch.drill"));
    assert!(
        ns.apply(&hourly_requirement("after", "kill_switch.drill"))
            .status
            .success()
    );
    eventually("drill to be Green", Duration::from_secs(90), || async {
        (state("drill").await == Some(State::Green)).then_some(())
    })
    .await;
    eventually("after to be Green", Duration::from_secs(90), || async {
        (state("after").await == Some(State::Green)).then_some(())
    })
    .await;
    assert_eq!(operator.get("/healthz").unwrap().0, 200);
}
