//! The `Rules` actor: a client of the shards like any other (ARCHITECTURE.md). It watches
//! every live change through one `RouterLink` subscription, decides which rules fire, and
//! writes through a second link as `rule:<id>`.
//!
//! Loop handling (FEATURES RU-11). Each write the engine makes is remembered by
//! `(address, revision)` (the revision comes back in the ACK) together with its cause: the
//! rule that wrote it and the chain depth. When that change comes back through the
//! subscription, the engine knows it is its own: the writing rule does not fire from it, and
//! rules that do fire carry the depth on (+1) into their own writes. A change whose depth
//! has reached `max_chain` fires nothing; the rule it would have fired gets a `last_error`,
//! the halt is counted and logged once per rule. Events a rule publishes are matched the
//! same way by `(address, value)`, as a PUBLISH has no revision. Because the echo of a write
//! can arrive before its ACK, changes to an address with a write of ours in flight are held
//! until the ACK tells whose they are.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use clasp_proto::{SignalType, Value};
use serde::Serialize;

use super::eval::{crossed, holds, Armed};
use super::file::{self, Action, Rule, Trigger};
use crate::client::Update;
use crate::health::ActorState;
use crate::link::RouterLink;
use crate::router::Router;

/// How long the engine remembers a write of its own whose echo has not come back.
const OWN_WRITE_MEMORY: Duration = Duration::from_secs(30);
/// Longest wait for a shard's answer (ACK, state read) before it counts as failed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Who caused a change: the rule that wrote it and how deep in a chain it was.
#[derive(Debug, Clone)]
struct Cause {
    rule: Arc<str>,
    depth: usize,
}

/// The numbers `GET /api/v1/rules` shows for a rule.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleStats {
    /// Times the rule fired.
    pub fire_count: u64,
    /// Unix ms of the last firing.
    pub last_fired: Option<u64>,
    /// The last thing that went wrong (a refused write, a bad trigger value, a halted chain).
    pub last_error: Option<String>,
    /// Times a chain through this rule was halted at the depth limit.
    pub chain_halts: u64,
}

struct RuleState {
    rule: Arc<Rule>,
    stats: RuleStats,
    last_fire: Option<Instant>,
    armed: HashMap<String, Armed>,
    halt_logged: bool,
}

impl RuleState {
    /// Whether the rule fired less than its cooldown ago.
    fn cooling(&self) -> bool {
        self.last_fire
            .is_some_and(|at| at.elapsed() < self.rule.cooldown)
    }
}

/// One rule's action list being run, possibly across delays.
struct Run {
    rule: Arc<Rule>,
    trigger: Value,
    cause: Cause,
    next: usize,
}

enum Write {
    Set(String, Value),
    Publish(SignalType, String, Value),
}

/// The rules engine actor. Start it under a `Supervisor`; a restart keeps the rules and
/// their counts and subscribes again.
pub struct Rules {
    router: Router,
    path: PathBuf,
    max_chain: usize,
    rules: Vec<RuleState>,
    out: Option<RouterLink>,
    sub_link: Option<RouterLink>,
    in_flight: HashMap<String, usize>,
    held: HashMap<String, Vec<Update>>,
    own_sets: HashMap<(String, u64), (Cause, Instant)>,
    own_events: VecDeque<(String, Value, Cause, Instant)>,
    timers: Vec<SpawnHandle>,
    chain_halts: u64,
}

impl Rules {
    /// An engine for `rules` (already validated) loaded from `path`, which `Reload` reads
    /// again. `max_chain` is the longest rule chain allowed.
    pub fn new(router: Router, path: PathBuf, rules: Vec<Rule>, max_chain: usize) -> Self {
        let mut me = Self {
            router,
            path,
            max_chain: max_chain.max(1),
            rules: Vec::new(),
            out: None,
            sub_link: None,
            in_flight: HashMap::new(),
            held: HashMap::new(),
            own_sets: HashMap::new(),
            own_events: VecDeque::new(),
            timers: Vec::new(),
            chain_halts: 0,
        };
        me.install(rules);
        me
    }

    /// Replaces the rules, keeping the counts, cooldown and threshold state of rules whose
    /// id (and, for thresholds, trigger) did not change.
    fn install(&mut self, rules: Vec<Rule>) {
        let mut old: HashMap<String, RuleState> = self
            .rules
            .drain(..)
            .map(|s| (s.rule.id.clone(), s))
            .collect();
        self.rules = rules
            .into_iter()
            .map(|rule| {
                let prev = old.remove(&rule.id);
                let same_trigger = prev
                    .as_ref()
                    .is_some_and(|p| p.rule.trigger_json == rule.trigger_json);
                let (stats, last_fire, armed) = match prev {
                    Some(p) => (
                        p.stats,
                        p.last_fire,
                        if same_trigger {
                            p.armed
                        } else {
                            HashMap::new()
                        },
                    ),
                    None => (RuleStats::default(), None, HashMap::new()),
                };
                RuleState {
                    rule: Arc::new(rule),
                    stats,
                    last_fire,
                    armed,
                    halt_logged: false,
                }
            })
            .collect();
    }

    fn start_timers(&mut self, ctx: &mut Context<Self>) {
        for handle in self.timers.drain(..) {
            ctx.cancel_future(handle);
        }
        for state in &self.rules {
            if let (Trigger::OnInterval { every }, true) = (&state.rule.trigger, state.rule.enabled)
            {
                let id = state.rule.id.clone();
                let handle = ctx.run_interval(*every, move |act, ctx| {
                    if let Some(i) = act.rules.iter().position(|s| s.rule.id == id) {
                        act.consider(i, Value::Null, 0, ctx);
                    }
                });
                self.timers.push(handle);
            }
        }
    }

    /// A change arrived from the subscription.
    fn on_update(&mut self, u: Update, ctx: &mut Context<Self>) {
        if u.signal == SignalType::Param && self.in_flight.contains_key(u.address.as_str()) {
            // Maybe our own echo, ahead of its ACK: decide once the ACK is in.
            self.held.entry(u.address.to_string()).or_default().push(u);
            return;
        }
        self.process(u, ctx);
    }

    fn process(&mut self, u: Update, ctx: &mut Context<Self>) {
        let address = u.address.as_str();
        let cause = match u.signal {
            SignalType::Param => u
                .revision
                .and_then(|r| self.own_sets.remove(&(address.to_string(), r)))
                .map(|(c, _)| c),
            SignalType::Event => self.own_event(address, &u.value),
            _ => return,
        };
        let depth = cause.as_ref().map_or(0, |c| c.depth);
        let numeric = u.value.as_f64();
        let max_chain = self.max_chain;
        let mut due = Vec::new();
        let mut halts = 0;
        for (i, state) in self.rules.iter_mut().enumerate() {
            let matched = match &state.rule.trigger {
                Trigger::OnChange { pattern } => {
                    u.signal == SignalType::Param && pattern.matches(address)
                }
                Trigger::OnEvent { pattern } => {
                    u.signal == SignalType::Event && pattern.matches(address)
                }
                Trigger::OnThreshold {
                    address: pattern,
                    above,
                    below,
                    hysteresis,
                } => match (u.signal, numeric) {
                    (SignalType::Param, Some(v)) if pattern.matches(address) => {
                        let armed = state.armed.entry(address.to_string()).or_default();
                        crossed(armed, v, *above, *below, *hysteresis)
                    }
                    _ => false,
                },
                Trigger::OnInterval { .. } => false,
            };
            if !matched || !state.rule.enabled {
                continue;
            }
            if cause.as_ref().is_some_and(|c| *c.rule == *state.rule.id) {
                continue; // never from its own output
            }
            if depth >= max_chain {
                halts += 1;
                state.stats.chain_halts += 1;
                let writer = cause.as_ref().map_or("?", |c| &c.rule);
                let message = format!(
                    "rule chain halted at depth {depth} (limit {max_chain}): {address} was written by rule:{writer}"
                );
                if !state.halt_logged {
                    state.halt_logged = true;
                    tracing::warn!(rule = %state.rule.id, %message, "rule loop stopped");
                }
                state.stats.last_error = Some(message);
                continue;
            }
            due.push(i);
        }
        self.chain_halts += halts;
        for i in due {
            self.consider(i, u.value.clone(), depth, ctx);
        }
    }

    /// Takes the oldest matching event of our own, dropping those too old to come back.
    fn own_event(&mut self, address: &str, value: &Value) -> Option<Cause> {
        let now = Instant::now();
        self.own_events
            .retain(|(_, _, _, at)| now.duration_since(*at) < OWN_WRITE_MEMORY);
        let i = self
            .own_events
            .iter()
            .position(|(a, v, _, _)| a == address && v == value)?;
        self.own_events.remove(i).map(|(_, _, c, _)| c)
    }

    /// A rule's trigger matched: check cooldown and conditions, then fire.
    fn consider(&mut self, i: usize, trigger: Value, depth: usize, ctx: &mut Context<Self>) {
        let Some(state) = self.rules.get(i) else {
            return;
        };
        if !state.rule.enabled || state.cooling() {
            return;
        }
        let rule = state.rule.clone();
        if rule.conditions.is_empty() {
            self.fire(i, trigger, depth, ctx);
            return;
        }
        let Some(out) = self.out.clone() else {
            return;
        };
        let addresses: Vec<String> = rule.conditions.iter().map(|c| c.address.clone()).collect();
        let fetch = async move {
            let mut values = Vec::with_capacity(addresses.len());
            for a in addresses {
                let value = tokio::time::timeout(REPLY_TIMEOUT, out.get(&a))
                    .await
                    .map_err(|_| format!("no answer within {REPLY_TIMEOUT:?}"))
                    .and_then(|r| r.map_err(|e| e.to_string()));
                values.push(value);
            }
            values
        };
        // `wait`: nothing else is handled until the state is read, so triggers stay in order
        // and a cooldown cannot be passed twice.
        ctx.wait(fetch.into_actor(self).map(move |values, act, ctx| {
            let mut pass = true;
            for (c, v) in rule.conditions.iter().zip(values) {
                match v {
                    Ok(current) => pass &= holds(c, current.as_ref()),
                    Err(e) => {
                        act.error(&rule.id, format!("condition on {}: {e}", c.address));
                        pass = false;
                    }
                }
            }
            // The rule may have been replaced by a reload meanwhile, or have fired from a
            // trigger queued before this one: fire only the same rule, and only once per
            // cooldown.
            let same = act
                .rules
                .get(i)
                .is_some_and(|s| Arc::ptr_eq(&s.rule, &rule) && !s.cooling());
            if pass && same {
                act.fire(i, trigger, depth, ctx);
            }
        }));
    }

    fn fire(&mut self, i: usize, trigger: Value, depth: usize, ctx: &mut Context<Self>) {
        let Some(state) = self.rules.get_mut(i) else {
            return;
        };
        state.stats.fire_count += 1;
        state.stats.last_fired = Some(unix_ms());
        state.last_fire = Some(Instant::now());
        let run = Run {
            cause: Cause {
                rule: Arc::from(state.rule.id.as_str()),
                depth: depth + 1,
            },
            rule: state.rule.clone(),
            trigger,
            next: 0,
        };
        tracing::debug!(rule = %run.rule.id, depth, "rule fired");
        self.run(run, ctx);
    }

    /// Runs actions from `run.next` up to the next delay, then schedules the rest.
    fn run(&mut self, mut run: Run, ctx: &mut Context<Self>) {
        let mut writes = Vec::new();
        let mut pause = None;
        while let Some(action) = run.rule.actions.get(run.next) {
            run.next += 1;
            match action {
                Action::Delay { duration } => {
                    pause = Some(*duration);
                    break;
                }
                Action::Set { address, value } => {
                    writes.push(Write::Set(address.clone(), value.clone()));
                }
                Action::Publish {
                    address,
                    value,
                    signal,
                } => writes.push(Write::Publish(*signal, address.clone(), value.clone())),
                Action::SetFromTrigger { address, transform } => {
                    match transform.apply(&run.trigger) {
                        Ok(v) => writes.push(Write::Set(address.clone(), v)),
                        Err(e) => {
                            self.error(&run.rule.id, format!("set_from_trigger {address}: {e}"))
                        }
                    }
                }
            }
        }
        let Some(out) = self.out.clone() else {
            return;
        };
        let now = Instant::now();
        for w in &writes {
            match w {
                Write::Set(a, _) => *self.in_flight.entry(a.clone()).or_default() += 1,
                // Only events can trigger rules, so only they need to be recognised.
                Write::Publish(SignalType::Event, a, v) => {
                    self.own_events
                        .push_back((a.clone(), v.clone(), run.cause.clone(), now))
                }
                Write::Publish(..) => {}
            }
        }
        let writer = format!("rule:{}", run.rule.id);
        let send = async move {
            let mut done = Vec::with_capacity(writes.len());
            for w in writes {
                match w {
                    Write::Set(a, v) => {
                        // Bounded: an ACK that never comes must not hold the address forever.
                        let r = tokio::time::timeout(REPLY_TIMEOUT, out.set_as(&writer, &a, v))
                            .await
                            .map_err(|_| format!("no ACK within {REPLY_TIMEOUT:?}"))
                            .and_then(|r| r.map_err(|e| e.to_string()));
                        done.push((a, Some(r)));
                    }
                    Write::Publish(signal, a, v) => {
                        if let Err(e) = out.publish(signal, &a, v).await {
                            done.push((a, Some(Err(e.to_string()))));
                        }
                    }
                }
            }
            done
        };
        ctx.spawn(send.into_actor(self).map(move |done, act, ctx| {
            act.written(&run, done, ctx);
            if let Some(pause) = pause {
                ctx.run_later(pause, move |act, ctx| act.run(run, ctx));
            }
        }));
    }

    /// The writes of one step are acknowledged: remember them as ours, then let held
    /// changes through.
    fn written(
        &mut self,
        run: &Run,
        done: Vec<(String, Option<Result<u64, String>>)>,
        ctx: &mut Context<Self>,
    ) {
        let now = Instant::now();
        self.own_sets
            .retain(|_, (_, at)| now.duration_since(*at) < OWN_WRITE_MEMORY);
        let mut release = Vec::new();
        for (address, result) in done {
            match result {
                Some(Ok(revision)) => {
                    self.own_sets
                        .insert((address.clone(), revision), (run.cause.clone(), now));
                }
                Some(Err(e)) => self.error(&run.rule.id, format!("write {address}: {e}")),
                None => continue,
            }
            if let Some(n) = self.in_flight.get_mut(&address) {
                *n -= 1;
                if *n == 0 {
                    self.in_flight.remove(&address);
                    release.push(address);
                }
            }
        }
        for address in release {
            for u in self.held.remove(&address).unwrap_or_default() {
                self.process(u, ctx);
            }
        }
    }

    fn error(&mut self, id: &str, message: String) {
        tracing::warn!(rule = %id, %message, "rule action failed");
        if let Some(s) = self.rules.iter_mut().find(|s| s.rule.id == id) {
            s.stats.last_error = Some(message);
        }
    }

    fn subscribe(&mut self, ctx: &mut Context<Self>) {
        let Some(link) = self.sub_link.clone() else {
            return;
        };
        let fut = async move { link.subscribe_live("/**").await };
        ctx.wait(fut.into_actor(self).map(|result, _, ctx| match result {
            Ok(sub) => {
                let updates = futures_util::stream::unfold(sub, |mut sub| async move {
                    sub.next().await.map(|u| (u, sub))
                });
                ctx.add_stream(updates);
            }
            Err(e) => {
                tracing::error!(error = %e, "rules engine cannot subscribe; restarting");
                ctx.stop();
            }
        }));
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Actor for Rules {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The links are actors of their own on this arbiter: they outlive a restart of ours.
        if self.out.is_none() {
            self.out = Some(RouterLink::local(&self.router, "rules-out"));
        }
        if self.sub_link.is_none() {
            self.sub_link = Some(RouterLink::local(&self.router, "rules"));
        }
        self.router.actors.set("rules", ActorState::Running);
        self.subscribe(ctx);
        self.start_timers(ctx);
        tracing::info!(rules = self.rules.len(), file = %self.path.display(), "rules engine running");
    }
}

impl Supervised for Rules {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Writes in flight died with the old context: nothing will release what they hold.
        self.in_flight.clear();
        self.held.clear();
        self.timers.clear();
        self.router.actors.set("rules", ActorState::Restarting);
        tracing::warn!("rules engine restarting");
    }
}

impl StreamHandler<Update> for Rules {
    fn handle(&mut self, u: Update, ctx: &mut Context<Self>) {
        self.on_update(u, ctx);
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!("rules subscription ended; restarting the rules engine");
        ctx.stop();
    }
}

/// Reads the rules file again and swaps the rules in if it is valid (SIGHUP, HTTP).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<usize, String>")]
pub struct Reload;

impl Handler<Reload> for Rules {
    type Result = Result<usize, String>;
    fn handle(&mut self, _: Reload, ctx: &mut Context<Self>) -> Self::Result {
        match file::load(&self.path) {
            Ok(rules) => {
                let n = rules.len();
                self.install(rules);
                self.start_timers(ctx);
                tracing::info!(rules = n, file = %self.path.display(), "rules reloaded");
                Ok(n)
            }
            Err(e) => {
                tracing::error!(error = %e, "rules reload refused; the old rules keep running");
                Err(e.to_string())
            }
        }
    }
}

/// One rule as `GET /api/v1/rules` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Whether it can fire.
    pub enabled: bool,
    /// The trigger as written in the file.
    pub trigger: serde_json::Value,
    /// Counts and last error.
    #[serde(flatten)]
    pub stats: RuleStats,
}

/// The body of `GET /api/v1/rules`.
#[derive(Debug, Clone, Serialize)]
pub struct RulesView {
    /// Every loaded rule, in file order.
    pub rules: Vec<RuleView>,
    /// Rule chains halted at the depth limit since start.
    pub chain_halts: u64,
    /// The longest chain allowed.
    pub max_chain: usize,
}

/// The rules and their counts, for the HTTP API.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "RulesView")]
pub struct ListRules;

impl Handler<ListRules> for Rules {
    type Result = MessageResult<ListRules>;
    fn handle(&mut self, _: ListRules, _: &mut Context<Self>) -> Self::Result {
        MessageResult(RulesView {
            rules: self
                .rules
                .iter()
                .map(|s| RuleView {
                    id: s.rule.id.clone(),
                    name: s.rule.name.clone(),
                    enabled: s.rule.enabled,
                    trigger: s.rule.trigger_json.clone(),
                    stats: s.stats.clone(),
                })
                .collect(),
            chain_halts: self.chain_halts,
            max_chain: self.max_chain,
        })
    }
}
