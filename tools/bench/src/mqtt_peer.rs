//! The peer: mosquitto under the same fan-out harness. The MQTT 3.1.1 packets are encoded
//! and decoded by rumqttc's codec (`rumqttc::Packet`); the connections are plain tokio TCP
//! streams so that, as on the CLASP side, the publisher writes one batch per millisecond
//! and subscribers read with large buffers. One topic, QoS 0.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use bytes::BytesMut;
use rumqttc::{ConnAck, Connect, ConnectReturnCode, Packet, Publish, QoS, Subscribe};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::harness::{
    free_port, tag, tag_trial, ChildProc, CpuMeter, FanoutRig, FanoutTiming, Pacer, Trial,
};
use crate::latency::LatencyResult;

const DATA_TOPIC: &str = "bench/fanout";
const CTL_TOPIC: &str = "bench/ctl";
const FILTER: &str = "bench/#";
const MAX_PACKET: usize = 64 * 1024;

/// A mosquitto broker started for the bench.
pub struct Mosquitto {
    /// Broker address.
    pub addr: SocketAddr,
    proc: ChildProc,
}

impl Mosquitto {
    /// Starts `bin -c <config>` on a free loopback port. The config only sets the listener
    /// and anonymous access; everything else is mosquitto's default.
    pub async fn start(bin: &Path) -> Result<Self> {
        let port = free_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let config = std::env::temp_dir().join(format!(
            "clasp-bench-{}-mosquitto-{port}.conf",
            std::process::id()
        ));
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        let args = vec!["-c".to_owned(), config.display().to_string()];
        let proc = ChildProc::spawn("mosquitto", bin, &args, addr).await;
        let _ = std::fs::remove_file(&config);
        Ok(Self { addr, proc: proc? })
    }

    /// Broker pid.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Stops the broker; returns a problem if it had died or exited badly.
    pub async fn stop(mut self) -> Option<String> {
        if let Ok(Some(status)) = self.proc.exited() {
            return Some(format!(
                "mosquitto died during the run ({status}): {}",
                self.proc.log_tail(10)
            ));
        }
        match self.proc.stop().await {
            Ok(Some(s)) if s.success() => None,
            Ok(Some(s)) => Some(format!("mosquitto exited with {s}")),
            Ok(None) => Some("mosquitto had to be killed".to_owned()),
            Err(e) => Some(format!("{e:#}")),
        }
    }
}

fn encode(packet: &Packet, out: &mut BytesMut) -> Result<()> {
    packet
        .write(out, MAX_PACKET)
        .map_err(|e| anyhow!("encoding MQTT packet: {e}"))?;
    Ok(())
}

/// Reads the next packet; `Ok(None)` at end of stream.
async fn read_packet(read: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<Option<Packet>> {
    loop {
        match Packet::read(buf, MAX_PACKET) {
            Ok(p) => return Ok(Some(p)),
            Err(rumqttc::Error::InsufficientBytes(_)) => {}
            Err(e) => bail!("bad MQTT packet from broker: {e}"),
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        if read.read_buf(buf).await.context("MQTT read")? == 0 {
            return Ok(None);
        }
    }
}

/// CONNECT/CONNACK (clean session, no keep-alive so no pings interfere).
async fn mqtt_connect(
    addr: SocketAddr,
    id: &str,
) -> Result<(OwnedReadHalf, OwnedWriteHalf, BytesMut)> {
    let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("MQTT connect timed out"))?
        .context("MQTT connect")?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let (mut read, mut write) = tcp.into_split();
    let mut connect = Connect::new(id);
    connect.keep_alive = 0;
    connect.clean_session = true;
    let mut out = BytesMut::new();
    encode(&Packet::Connect(connect), &mut out)?;
    write.write_all(&out).await.context("sending CONNECT")?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    match tokio::time::timeout(Duration::from_secs(10), read_packet(&mut read, &mut buf))
        .await
        .map_err(|_| anyhow!("no CONNACK within 10 s"))??
    {
        Some(Packet::ConnAck(ConnAck {
            code: ConnectReturnCode::Success,
            ..
        })) => Ok((read, write, buf)),
        other => bail!("expected CONNACK success, got {other:?}"),
    }
}

#[derive(Default)]
struct Counters {
    trial: AtomicU64,
    count: AtomicU64,
    ctl: AtomicU64,
    closed: Mutex<Option<String>>,
}

impl Counters {
    fn closed(&self) -> Option<String> {
        self.closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn payload_f64(p: &Publish) -> Option<f64> {
    let bytes: [u8; 8] = p.payload.as_ref().try_into().ok()?;
    Some(f64::from_be_bytes(bytes))
}

async fn subscriber_loop(mut read: OwnedReadHalf, mut buf: BytesMut, counters: Arc<Counters>) {
    let why = loop {
        match read_packet(&mut read, &mut buf).await {
            Ok(Some(Packet::Publish(p))) => {
                let Some(v) = payload_f64(&p) else { continue };
                if p.topic == CTL_TOPIC {
                    counters.ctl.fetch_max(v as u64, Ordering::Relaxed);
                } else if tag_trial(v) == counters.trial.load(Ordering::Relaxed) {
                    counters.count.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break "broker closed the connection".to_owned(),
            Err(e) => break format!("{e:#}"),
        }
    };
    let mut guard = counters.closed.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert(why);
}

async fn open_subscriber(
    addr: SocketAddr,
    i: usize,
) -> Result<(Arc<Counters>, OwnedWriteHalf, JoinHandle<()>)> {
    let (mut read, mut write, mut buf) = mqtt_connect(addr, &format!("bench-sub-{i}")).await?;
    let mut subscribe = Subscribe::new(FILTER, QoS::AtMostOnce);
    subscribe.pkid = 1;
    let mut out = BytesMut::new();
    encode(&Packet::Subscribe(subscribe), &mut out)?;
    write.write_all(&out).await.context("sending SUBSCRIBE")?;
    match tokio::time::timeout(Duration::from_secs(10), read_packet(&mut read, &mut buf))
        .await
        .map_err(|_| anyhow!("no SUBACK within 10 s"))??
    {
        Some(Packet::SubAck(_)) => {}
        other => bail!("expected SUBACK, got {other:?}"),
    }
    let counters = Arc::new(Counters::default());
    let task = tokio::spawn(subscriber_loop(read, buf, counters.clone()));
    // The write half is kept open: dropping it would half-close the connection.
    Ok((counters, write, task))
}

struct Connections {
    publisher: OwnedWriteHalf,
    subscribers: Vec<Arc<Counters>>,
    _sub_writers: Vec<OwnedWriteHalf>,
    tasks: Vec<JoinHandle<()>>,
    publisher_counters: Arc<Counters>,
}

impl Drop for Connections {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Connections {
    async fn open(addr: SocketAddr, subscribers: usize) -> Result<Self> {
        let (read, publisher, buf) = mqtt_connect(addr, "bench-publisher").await?;
        let publisher_counters = Arc::new(Counters::default());
        let mut tasks = vec![tokio::spawn(subscriber_loop(
            read,
            buf,
            publisher_counters.clone(),
        ))];
        let opened =
            futures_util::future::join_all((0..subscribers).map(|i| open_subscriber(addr, i)))
                .await;
        let mut subs = Vec::new();
        let mut writers = Vec::new();
        let mut first_err = None;
        for r in opened {
            match r {
                Ok((c, w, t)) => {
                    subs.push(c);
                    writers.push(w);
                    tasks.push(t);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let conns = Self {
            publisher,
            subscribers: subs,
            _sub_writers: writers,
            tasks,
            publisher_counters,
        };
        match first_err {
            Some(e) => Err(e.context("opening MQTT subscribers")),
            None => Ok(conns),
        }
    }

    fn broken(&self) -> Option<String> {
        std::iter::once(&self.publisher_counters)
            .chain(&self.subscribers)
            .find_map(|c| c.closed())
    }
}

/// The MQTT fan-out rig.
pub struct MqttRig {
    addr: SocketAddr,
    broker_pid: Option<u32>,
    subscribers: usize,
    trial_no: u64,
}

impl MqttRig {
    /// A rig for `subscribers` subscribers against the broker at `addr`.
    pub fn new(addr: SocketAddr, broker_pid: Option<u32>, subscribers: usize) -> Self {
        Self {
            addr,
            broker_pid,
            subscribers,
            trial_no: 0,
        }
    }

    async fn barrier(&self, conns: &mut Connections) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = BytesMut::new();
        loop {
            out.clear();
            let p = Publish::new(
                CTL_TOPIC,
                QoS::AtMostOnce,
                (self.trial_no as f64).to_be_bytes().to_vec(),
            );
            encode(&Packet::Publish(p), &mut out)?;
            conns
                .publisher
                .write_all(&out)
                .await
                .context("sending barrier")?;
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
                bail!("barrier: {waiting} MQTT subscribers never got the control message");
            }
        }
    }
}

impl FanoutRig for MqttRig {
    fn label(&self) -> &'static str {
        "mosquitto"
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

        let total = (rate as f64 * timing.window.as_secs_f64()).round().max(1.0) as u64;
        let cpu = CpuMeter::start(self.broker_pid);
        let mut pacer = Pacer::new(rate, total);
        let mut sent = 0;
        let mut out = BytesMut::with_capacity(64 * 1024);
        while let Some(batch) = pacer.next_batch().await {
            out.clear();
            for seq in batch {
                let p = Publish::new(
                    DATA_TOPIC,
                    QoS::AtMostOnce,
                    tag(self.trial_no, seq).to_be_bytes().to_vec(),
                );
                encode(&Packet::Publish(p), &mut out)?;
                sent += 1;
            }
            conns
                .publisher
                .write_all(&out)
                .await
                .context("publishing")?;
        }
        let send_secs = pacer.elapsed();

        let counters: Vec<&AtomicU64> = conns.subscribers.iter().map(|c| &c.count).collect();
        let counts = crate::harness::await_counts(&counters, sent, timing.grace).await;
        let cpu = cpu.read();
        let mut trouble = Vec::new();
        if let Some(why) = conns.broken() {
            trouble.push(format!("connection lost: {why}"));
        }
        let settled = crate::harness::settle_if_short(&counters, &counts, sent).await;
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
            // Give the broker a moment to drop the backlog of these connections.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(trial)
    }
}

/// The latency measurement of `latency.rs` against the broker: one QoS-0 PUBLISH per
/// 1/`rate` s whose payload is the send time (i64 ns, big-endian), one subscriber.
pub async fn latency(addr: SocketAddr, rate: u64, duration: Duration) -> Result<LatencyResult> {
    const WARMUP: &str = "bench/lat/warmup";
    const DATA: &str = "bench/lat/x";
    let base = Instant::now();
    let (mut read, mut sub_write, mut buf) = mqtt_connect(addr, "bench-lat-sub").await?;
    let mut subscribe = Subscribe::new("bench/lat/#", QoS::AtMostOnce);
    subscribe.pkid = 1;
    let mut out = BytesMut::new();
    encode(&Packet::Subscribe(subscribe), &mut out)?;
    sub_write
        .write_all(&out)
        .await
        .context("sending SUBSCRIBE")?;
    let (samples_tx, mut samples_rx) = mpsc::unbounded_channel::<f64>();
    let (warm_tx, mut warm_rx) = mpsc::unbounded_channel::<()>();
    let reader: JoinHandle<Result<()>> = tokio::spawn(async move {
        loop {
            let packet = read_packet(&mut read, &mut buf)
                .await?
                .ok_or_else(|| anyhow!("subscriber connection ended"))?;
            let now = base.elapsed().as_nanos() as i64;
            if let Packet::Publish(p) = packet {
                if p.topic == DATA {
                    let bytes: [u8; 8] = p.payload.as_ref().try_into().unwrap_or_default();
                    let _ = samples_tx.send((now - i64::from_be_bytes(bytes)) as f64 / 1000.0);
                } else {
                    let _ = warm_tx.send(());
                }
            }
        }
    });
    let (_pub_read, mut publisher, _) = mqtt_connect(addr, "bench-lat-pub").await?;
    let publish = |topic: &str, payload: [u8; 8]| -> Result<BytesMut> {
        let mut out = BytesMut::new();
        encode(
            &Packet::Publish(Publish::new(topic, QoS::AtMostOnce, payload.to_vec())),
            &mut out,
        )?;
        Ok(out)
    };

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        publisher
            .write_all(&publish(WARMUP, [0; 8])?)
            .await
            .context("warm-up publish")?;
        if tokio::time::timeout(Duration::from_millis(20), warm_rx.recv())
            .await
            .is_ok()
        {
            break;
        }
        if Instant::now() > deadline || reader.is_finished() {
            bail!("MQTT subscriber never received the warm-up message");
        }
    }
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    for _ in 0..250 {
        ticker.tick().await;
        publisher
            .write_all(&publish(WARMUP, [0; 8])?)
            .await
            .context("warm-up publish")?;
    }
    let count = (rate as f64 * duration.as_secs_f64()).round() as usize;
    for _ in 0..count {
        ticker.tick().await;
        let stamp = base.elapsed().as_nanos() as i64;
        publisher
            .write_all(&publish(DATA, stamp.to_be_bytes())?)
            .await
            .context("publishing")?;
    }
    let samples = crate::latency::collect_samples(&mut samples_rx, count).await;
    reader.abort();
    LatencyResult::from_samples(samples, count, rate)
}
