//! CLASP fan-out: one publisher sends QoS-Fire SETs (f64 values tagged with trial and
//! sequence number) round-robin to five addresses under `/bench/fan/`; N subscribers on
//! `/bench/**` count what they receive of the current trial.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clasp_proto::{Address, Message};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::client::{self, Ws};
use crate::harness::{health, tag, tag_trial, CpuMeter, FanoutRig, FanoutTiming, Pacer, Trial};

const DATA_ADDRESSES: usize = 5;
const CTL_ADDRESS: &str = "/bench/ctl";
const PATTERN: &str = "/bench/**";

/// What one connection's reader saw.
#[derive(Default)]
struct Counters {
    /// Trial whose data messages are counted.
    trial: AtomicU64,
    /// Data messages of that trial received.
    count: AtomicU64,
    /// Highest barrier value seen on the control address.
    ctl: AtomicU64,
    /// ERROR frames received.
    errors: AtomicU64,
    /// First ERROR frame or protocol problem.
    first_error: Mutex<Option<String>>,
    /// Why the connection ended, once it has.
    closed: Mutex<Option<String>>,
}

impl Counters {
    fn note(slot: &Mutex<Option<String>>, text: String) {
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        guard.get_or_insert(text);
    }

    fn take(slot: &Mutex<Option<String>>) -> Option<String> {
        slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn on_message(&self, message: Message) {
        match message {
            Message::Set(set) => {
                let Some(v) = set.value.as_f64() else { return };
                if set.address.as_str() == CTL_ADDRESS {
                    self.ctl.fetch_max(v as u64, Ordering::Relaxed);
                } else if tag_trial(v) == self.trial.load(Ordering::Relaxed) {
                    self.count.fetch_add(1, Ordering::Relaxed);
                }
            }
            Message::Error(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Self::note(
                    &self.first_error,
                    format!("ERROR {}: {}", e.code, e.message),
                );
            }
            _ => {}
        }
    }
}

/// Reads until the connection ends, feeding `counters`.
async fn read_loop<S>(mut stream: S, counters: Arc<Counters>)
where
    S: futures_util::Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    let why = loop {
        match stream.next().await {
            None => break "connection ended".to_owned(),
            Some(Err(e)) => break format!("read error: {e}"),
            Some(Ok(WsMessage::Close(c))) => {
                break format!(
                    "relay closed it ({})",
                    c.map(|c| format!("{} {}", u16::from(c.code), c.reason))
                        .unwrap_or_default()
                )
            }
            Some(Ok(m)) => match client::decode(&m) {
                Ok(Some(message)) => counters.on_message(message),
                Ok(None) => {}
                Err(e) => {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    Counters::note(&counters.first_error, format!("{e:#}"));
                }
            },
        }
    };
    Counters::note(&counters.closed, why);
}

struct Connections {
    publisher: SplitSink<Ws, WsMessage>,
    publisher_counters: Arc<Counters>,
    subscribers: Vec<Arc<Counters>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Connections {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn open_subscriber(addr: SocketAddr, i: usize) -> Result<(Arc<Counters>, JoinHandle<()>)> {
    let mut ws = client::session(addr, &format!("bench-sub-{i}")).await?;
    ws.send(client::subscribe_frame(1, PATTERN)?)
        .await
        .context("sending SUBSCRIBE")?;
    let counters = Arc::new(Counters::default());
    let task = tokio::spawn(read_loop(ws, counters.clone()));
    Ok((counters, task))
}

impl Connections {
    async fn open(addr: SocketAddr, subscribers: usize) -> Result<Self> {
        let ws = client::session(addr, "bench-publisher").await?;
        let (publisher, reader): (SplitSink<Ws, WsMessage>, SplitStream<Ws>) = ws.split();
        let publisher_counters = Arc::new(Counters::default());
        let mut tasks = vec![tokio::spawn(read_loop(reader, publisher_counters.clone()))];
        let opened =
            futures_util::future::join_all((0..subscribers).map(|i| open_subscriber(addr, i)))
                .await;
        let mut subs = Vec::with_capacity(subscribers);
        let mut first_err = None;
        for r in opened {
            match r {
                Ok((c, t)) => {
                    subs.push(c);
                    tasks.push(t);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let conns = Self {
            publisher,
            publisher_counters,
            subscribers: subs,
            tasks,
        };
        if let Some(e) = first_err {
            return Err(e.context("opening subscribers"));
        }
        Ok(conns)
    }

    fn broken(&self) -> Option<String> {
        std::iter::once(&self.publisher_counters)
            .chain(&self.subscribers)
            .find_map(|c| Counters::take(&c.closed))
    }
}

/// The relay's `counters.dropped` from /health.
async fn relay_dropped(addr: SocketAddr) -> Option<u64> {
    health(addr)
        .await?
        .get("counters")?
        .get("dropped")?
        .as_u64()
}

/// The CLASP fan-out rig.
pub struct ClaspRig {
    addr: SocketAddr,
    relay_pid: Option<u32>,
    subscribers: usize,
    trial_no: u64,
    data: Vec<Address>,
    ctl: Address,
}

impl ClaspRig {
    /// A rig for `subscribers` subscribers against the relay at `addr`.
    pub fn new(addr: SocketAddr, relay_pid: Option<u32>, subscribers: usize) -> Result<Self> {
        Ok(Self {
            addr,
            relay_pid,
            subscribers,
            trial_no: 0,
            data: (0..DATA_ADDRESSES)
                .map(|i| client::address(&format!("/bench/fan/{i}")))
                .collect::<Result<_>>()?,
            ctl: client::address(CTL_ADDRESS)?,
        })
    }

    /// Sends the control SET until every subscriber has seen it: then every subscription
    /// is live and the queues ahead of the data are empty.
    async fn barrier(&mut self, conns: &mut Connections) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            conns
                .publisher
                .send(client::set_frame(&self.ctl, self.trial_no as f64)?)
                .await
                .context("sending barrier SET")?;
            tokio::time::sleep(Duration::from_millis(10)).await;
            let waiting = conns
                .subscribers
                .iter()
                .filter(|c| c.ctl.load(Ordering::Relaxed) < self.trial_no)
                .count();
            if waiting == 0 {
                return Ok(());
            }
            if let Some(why) = conns.broken() {
                bail!("a connection broke before the trial: {why}");
            }
            if Instant::now() > deadline {
                bail!(
                    "barrier: {waiting}/{} subscribers never received the control SET within 10 s",
                    conns.subscribers.len()
                );
            }
        }
    }
}

impl FanoutRig for ClaspRig {
    fn label(&self) -> &'static str {
        "clasp"
    }

    async fn trial(&mut self, rate: u64, timing: FanoutTiming) -> Result<Trial> {
        // Fresh connections every trial: a failed trial leaves backlogs behind, and the
        // relay's placement of sessions on its threads varies between connections.
        let mut conns = Connections::open(self.addr, self.subscribers).await?;
        self.trial_no += 1;
        for c in &conns.subscribers {
            c.trial.store(self.trial_no, Ordering::Relaxed);
            c.count.store(0, Ordering::Relaxed);
        }
        self.barrier(&mut conns).await?;
        let errors_before: Vec<u64> = conns
            .subscribers
            .iter()
            .map(|c| c.errors.load(Ordering::Relaxed))
            .collect();

        let dropped_before = relay_dropped(self.addr).await;
        let total = (rate as f64 * timing.window.as_secs_f64()).round().max(1.0) as u64;
        let cpu = CpuMeter::start(self.relay_pid);
        let mut pacer = Pacer::new(rate, total);
        let mut sent = 0;
        while let Some(batch) = pacer.next_batch().await {
            for seq in batch {
                let address = &self.data[(seq as usize) % self.data.len()];
                conns
                    .publisher
                    .feed(client::set_frame(address, tag(self.trial_no, seq))?)
                    .await
                    .context("publishing")?;
                sent += 1;
            }
            conns.publisher.flush().await.context("publishing")?;
        }
        let send_secs = pacer.elapsed();

        let counters: Vec<&AtomicU64> = conns.subscribers.iter().map(|c| &c.count).collect();
        let counts = crate::harness::await_counts(&counters, sent, timing.grace).await;
        let cpu = cpu.read();

        let mut trouble = Vec::new();
        if let Some(why) = conns.broken() {
            trouble.push(format!("connection lost: {why}"));
        }
        let new_errors: u64 = conns
            .subscribers
            .iter()
            .zip(&errors_before)
            .map(|(c, before)| c.errors.load(Ordering::Relaxed) - before)
            .sum::<u64>()
            + conns.publisher_counters.errors.load(Ordering::Relaxed);
        if new_errors > 0 {
            let first = std::iter::once(&conns.publisher_counters)
                .chain(&conns.subscribers)
                .find_map(|c| Counters::take(&c.first_error))
                .unwrap_or_default();
            trouble.push(format!("{new_errors} ERROR frame(s), first: {first}"));
        }
        let settled = crate::harness::settle_if_short(&counters, &counts, sent).await;
        if settled.iter().any(|&c| c < sent) {
            if let (Some(before), Some(after)) = (dropped_before, relay_dropped(self.addr).await) {
                trouble.push(format!(
                    "relay /health counters.dropped +{} (updates conflated or shed by its outbound queues)",
                    after.saturating_sub(before)
                ));
            }
        }
        let trial = Trial::judge(
            rate,
            timing.window,
            sent,
            send_secs,
            &counts,
            &settled,
            trouble,
            cpu,
        );
        drop(conns);
        if !trial.passed() {
            // Give the server a moment to drop the backlog of these connections.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(trial)
    }
}
