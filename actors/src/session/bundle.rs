//! Running a BUNDLE (FEATURES ST-18/19) for whoever writes it: a client session, or a
//! `RouterLink` endpoint acting for a bridge. Both hold it until its timestamp with
//! [`at_time`], then apply it with [`apply`]: all SETs are checked on their shards first and
//! applied only if every one passes (two-phase across shards); PUBLISHes follow.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use clasp_proto::{Message, Set};
use futures_util::future::join_all;

use crate::clock::now_micros;
use crate::messages::*;
use crate::router::Router;
use crate::shard::Shard;

/// How early a scheduled bundle's timer is set before its time.
const SCHEDULE_SLACK_US: u64 = 2_000;

/// Why a bundle was not applied: error code, text, and the address at fault.
pub type Refusal = (u16, String, Option<String>);

/// Waits (yielding the CPU) until the router clock reaches `at`; at most the schedule slack.
fn wait_until_micros(at: u64) {
    let deadline = Instant::now() + Duration::from_micros(SCHEDULE_SLACK_US + 500);
    while now_micros() < at && Instant::now() < deadline {
        std::thread::yield_now();
    }
}

/// Calls `run` on the actor now, or at router time `at` (µs) when that is in the future.
pub fn at_time<A, F>(ctx: &mut Context<A>, act: &mut A, at: Option<u64>, run: F)
where
    A: Actor<Context = Context<A>>,
    F: FnOnce(&mut A, &mut Context<A>) + 'static,
{
    if let Some(at) = at {
        let now = now_micros();
        if at > now {
            // Timers fire on millisecond ticks, late: wake early, then wait the rest
            // precisely so the bundle runs within a millisecond of its time (ST-19).
            let early = Duration::from_micros((at - now).saturating_sub(SCHEDULE_SLACK_US));
            ctx.run_later(early, move |act, ctx| {
                wait_until_micros(at);
                run(act, ctx);
            });
            return;
        }
    }
    run(act, ctx);
}

/// Applies a bundle's messages as writer `me`: the SETs all or nothing, then the PUBLISHes.
/// The revision of the last SET, or why nothing was applied.
pub async fn apply(
    router: Router,
    me: SessionRef,
    messages: Vec<Message>,
) -> Result<Option<u64>, Refusal> {
    let mut groups: HashMap<usize, Vec<Set>> = HashMap::new();
    let mut publishes = Vec::new();
    for m in messages {
        match m {
            Message::Set(s) => groups
                .entry(router.shard_index(s.address.as_str()))
                .or_default()
                .push(s),
            Message::Publish(p) => publishes.push(p),
            other => tracing::debug!(kind = other.name(), "ignored inside BUNDLE"),
        }
    }
    let bundle = router.next_bundle_id();
    let shards: Vec<(Addr<Shard>, Vec<Set>)> = groups
        .into_iter()
        .map(|(i, sets)| (router.shards()[i].clone(), sets))
        .collect();
    let commit_now = shards.len() == 1;
    let prepared = join_all(shards.iter().map(|(shard, sets)| {
        shard.send(BundlePrepare {
            bundle,
            origin: me.clone(),
            sets: sets.clone(),
            commit_now,
        })
    }))
    .await;
    let mut failure = None;
    let mut last = None;
    for result in prepared {
        match result {
            Ok(Ok(revision)) => last = revision.or(last),
            Ok(Err((e, address))) => {
                failure.get_or_insert((e.code(), e.to_string(), Some(address)));
            }
            Err(e) => {
                failure.get_or_insert((500, format!("shard unavailable: {e}"), None));
            }
        }
    }
    if let Some(f) = failure {
        for (shard, _) in &shards {
            shard.do_send(BundleAbort { bundle });
        }
        return Err(f);
    }
    if !commit_now {
        let commits = join_all(
            shards
                .iter()
                .map(|(shard, _)| shard.send(BundleCommit { bundle })),
        )
        .await;
        last = commits
            .into_iter()
            .filter_map(|r| r.ok().flatten())
            .next_back();
    }
    for p in publishes {
        router.shard_for(p.address.as_str()).do_send(ShardPublish {
            origin: me.clone(),
            publish: p,
        });
    }
    Ok(last)
}
