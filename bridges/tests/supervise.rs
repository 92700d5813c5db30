//! The bridge supervisor: a bridge whose task fails is restarted with growing backoff, its
//! failures are visible in the relay's actor table and its counters, and a bridge that
//! writes through its link reaches the relay's state.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clasp_actors::health::ActorState;
use clasp_actors::link::RouterLink;
use clasp_actors::{Relay, RelayConfig};
use clasp_bridges::{spawn, Bridge, BridgeError, BridgeStats, LinkSource};
use futures_util::future::LocalBoxFuture;

/// Writes its run number to `/flaky/run`, then fails: the smallest real bridge.
struct Flaky {
    runs: Arc<AtomicU32>,
    started: Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl Bridge for Flaky {
    fn kind(&self) -> &'static str {
        "flaky"
    }

    fn name(&self) -> String {
        "flaky:test".into()
    }

    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        self.started.lock().unwrap().push(Instant::now());
        Box::pin(async move {
            stats.set_up(true);
            link.set("/flaky/run", i64::from(run)).await?;
            BridgeStats::bump(&stats.received);
            Err(BridgeError::Protocol(format!(
                "device unplugged (run {run})"
            )))
        })
    }
}

fn relay() -> Relay {
    Relay::start(RelayConfig {
        host: "127.0.0.1".into(),
        port: 0,
        shards: 1,
        ..RelayConfig::default()
    })
    .expect("relay starts")
}

#[actix::test]
async fn a_failing_bridge_is_restarted_with_backoff_and_reported() {
    let relay = relay();
    let router = relay.router().clone();
    let runs = Arc::new(AtomicU32::new(0));
    let started = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handle = spawn(
        Flaky {
            runs: runs.clone(),
            started: started.clone(),
        },
        LinkSource::Local(router.clone()),
        router.actors.clone(),
    );

    // Run 1 at once, run 2 after 1 s, run 3 after 2 s more.
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        runs.load(Ordering::SeqCst) >= 3,
        "restarted twice within 10 s"
    );
    let times = started.lock().unwrap().clone();
    let first_gap = times[1] - times[0];
    let second_gap = times[2] - times[1];
    assert!(
        first_gap >= Duration::from_millis(900),
        "first backoff {first_gap:?}"
    );
    assert!(
        second_gap >= Duration::from_millis(1900),
        "second backoff {second_gap:?}"
    );

    // Each run's write reached the relay.
    let link = RouterLink::local(&router, "check");
    let mut value = None;
    for _ in 0..40 {
        value = link.get("/flaky/run").await.expect("get");
        if value.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(matches!(value, Some(clasp_proto::Value::Int(n)) if n >= 2));

    let row = router.actors.snapshot()["flaky:test"].clone();
    assert!(row.restarts >= 2, "{row:?}");
    let report = handle.stats().report();
    assert!(report.restarts >= 2);
    assert!(report.received >= 2);
    assert!(!report.up);
    assert!(report
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("device unplugged")));

    handle.stop();
    assert_eq!(
        router.actors.snapshot()["flaky:test"].state,
        ActorState::Stopped
    );
}
