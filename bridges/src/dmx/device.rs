//! One run of the DMX bridge: opens the serial device, keeps the output frame current from
//! the router and sends it on time, turns received frames into SETs, and when the device
//! fails (unplugged: EIO, or gone from /dev) reports it and reopens it once a second,
//! keeping the levels it had so the rig resumes where it was instead of blacking out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clasp_actors::client::{ClientError, Update};
use clasp_actors::link::{LinkSubscription, RouterLink};
use clasp_proto::Value;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPort, SerialStream};

use super::pro::{self, ProMessage, ProParser};
use super::universe::{self, Universe};
use super::{DeviceKind, DmxConfig};
use crate::echo::EchoFilter;
use crate::noise::BadInput;
use crate::{BridgeError, BridgeStats};

/// How often a missing device is looked for again.
const REOPEN: Duration = Duration::from_secs(1);
/// A Pro repeats its last frame by itself; we resend it at least this often anyway, so a
/// widget that was power-cycled behind a hub gets the levels back within a second.
const KEEPALIVE: Duration = Duration::from_secs(1);
/// A write to a healthy USB device finishes in a few ms; one stuck this long is dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Open DMX break and mark-after-break (DMX512 minimums are 88 µs and 8 µs).
const BREAK: Duration = Duration::from_micros(110);
const MAB: Duration = Duration::from_micros(16);
/// Router writes in flight before the device is no longer read.
const WINDOW: usize = 1024;

type Pending = LocalBoxFuture<'static, Result<(), ClientError>>;

/// Why a device session ended.
enum Ended {
    /// The device failed: reopen it.
    Lost(String),
    /// The router link is gone: the bridge restarts.
    Link(BridgeError),
}

struct State<'a> {
    config: &'a DmxConfig,
    link: RouterLink,
    stats: Arc<BridgeStats>,
    universe: Universe,
    echo: EchoFilter<()>,
    bad: BadInput,
    inflight: FuturesOrdered<Pending>,
}

/// Runs until the router link fails; device failures are handled inside.
pub async fn run(
    config: &DmxConfig,
    link: RouterLink,
    stats: Arc<BridgeStats>,
) -> Result<(), BridgeError> {
    // With the current params first, so a restarted bridge sends the show's levels at once.
    let mut updates = if config.direction.output() {
        Some(link.subscribe(&config.namespace.subtree()).await?)
    } else {
        None
    };
    let mut st = State {
        config,
        link,
        stats,
        universe: Universe::new(config.channels),
        echo: EchoFilter::default(),
        bad: BadInput::default(),
        inflight: FuturesOrdered::new(),
    };
    let mut down_reported = false;
    loop {
        match open(config) {
            Ok(port) => {
                st.stats.set_up(true);
                tracing::info!(bridge = %st.stats.name, port = %config.port, device = ?config.device, "DMX device open");
                match st.session(port, &mut updates).await {
                    Ended::Link(e) => return Err(e),
                    Ended::Lost(why) => {
                        st.stats.set_up(false);
                        st.stats
                            .set_error(format!("DMX device {}: {why}", config.port));
                        tracing::warn!(bridge = %st.stats.name, port = %config.port, error = %why,
                            "DMX device lost; reopening it when it returns");
                        st.universe.reset_input();
                        st.universe.touch();
                        down_reported = true;
                    }
                }
            }
            Err(e) => {
                if !down_reported {
                    st.stats.set_up(false);
                    st.stats
                        .set_error(format!("DMX device {}: {e}", config.port));
                    tracing::warn!(bridge = %st.stats.name, port = %config.port, error = %e,
                        "cannot open the DMX device; retrying every second");
                    down_reported = true;
                }
            }
        }
        // Keep following the router while the device is away.
        let until = tokio::time::sleep(REOPEN);
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => break,
                Some(r) = st.inflight.next(), if !st.inflight.is_empty() => {
                    st.settle(r)?;
                }
                u = next(&mut updates) => {
                    st.apply(u)?;
                }
            }
        }
    }
}

fn open(config: &DmxConfig) -> Result<SerialStream, tokio_serial::Error> {
    let stop_bits = match config.device {
        DeviceKind::Pro => tokio_serial::StopBits::One,
        DeviceKind::Open => tokio_serial::StopBits::Two,
    };
    let builder = tokio_serial::new(&config.port, config.baud())
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(stop_bits)
        .flow_control(tokio_serial::FlowControl::None);
    SerialStream::open(&builder)
}

/// The next router update, or never when output is off.
async fn next(updates: &mut Option<LinkSubscription>) -> Option<Update> {
    match updates {
        Some(u) => u.next().await,
        None => std::future::pending().await,
    }
}

impl State<'_> {
    async fn session(
        &mut self,
        mut port: SerialStream,
        updates: &mut Option<LinkSubscription>,
    ) -> Ended {
        let config = self.config;
        let output = config.direction.output();
        let input = config.direction.input() && config.device == DeviceKind::Pro;
        let mut tick = tokio::time::interval(config.period());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_sent: Option<Instant> = None;
        let mut parser = ProParser::default();
        let mut buf = [0u8; 2048];
        loop {
            tokio::select! {
                biased;
                Some(r) = self.inflight.next(), if !self.inflight.is_empty() => {
                    if let Err(e) = self.settle(r) { return Ended::Link(e) }
                }
                _ = tick.tick(), if output => {
                    let due = match config.device {
                        DeviceKind::Open => true,
                        DeviceKind::Pro => self.universe.dirty()
                            || last_sent.is_none_or(|t| t.elapsed() >= KEEPALIVE),
                    };
                    if due {
                        if let Err(why) = self.send_frame(&mut port).await {
                            return Ended::Lost(why);
                        }
                        last_sent = Some(Instant::now());
                    }
                }
                u = next(updates) => {
                    if let Err(e) = self.apply(u) { return Ended::Link(e) }
                    // A Pro change goes out at once when the last frame is a period old, so
                    // a lone cue is not held for the next tick; the rate stays within
                    // --refresh. (Open DMX frames are a steady stream: it keeps the tick.)
                    let idle = last_sent.is_none_or(|t| t.elapsed() >= config.period());
                    if config.device == DeviceKind::Pro && self.universe.dirty() && idle {
                        if let Err(why) = self.send_frame(&mut port).await {
                            return Ended::Lost(why);
                        }
                        last_sent = Some(Instant::now());
                        tick.reset();
                    }
                }
                r = port.read(&mut buf), if input && self.inflight.len() < WINDOW => {
                    match r {
                        Ok(0) => return Ended::Lost("end of file".into()),
                        Ok(n) => self.received(&mut parser, buf.get(..n).unwrap_or_default()),
                        Err(e) => return Ended::Lost(e.to_string()),
                    }
                }
            }
        }
    }

    async fn send_frame(&mut self, port: &mut SerialStream) -> Result<(), String> {
        let bytes = match self.config.device {
            DeviceKind::Pro => pro::encode_send_dmx(self.universe.frame()),
            DeviceKind::Open => {
                // Break, mark-after-break, then start code 0 and all 512 slots.
                port.set_break().map_err(|e| format!("break: {e}"))?;
                std::thread::sleep(BREAK);
                port.clear_break().map_err(|e| format!("break: {e}"))?;
                std::thread::sleep(MAB);
                let mut frame = Vec::with_capacity(513);
                frame.push(0);
                frame.extend_from_slice(self.universe.full_frame());
                frame
            }
        };
        match tokio::time::timeout(WRITE_TIMEOUT, port.write_all(&bytes)).await {
            Ok(Ok(())) => {
                self.universe.sent();
                BridgeStats::bump(&self.stats.sent);
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("a frame write took over {WRITE_TIMEOUT:?}")),
        }
    }

    /// A router update: the level of one channel.
    fn apply(&mut self, update: Option<Update>) -> Result<(), BridgeError> {
        let Some(update) = update else {
            return Err(BridgeError::Link(ClientError::Closed));
        };
        let address = update.address.as_str();
        let Some(path) = self.config.namespace.strip(address) else {
            return Ok(());
        };
        let Some(channel) = universe::channel(path, self.config.channels) else {
            tracing::debug!(bridge = %self.stats.name, address, "not a bridged DMX channel");
            return Ok(());
        };
        if self.echo.origin(address, &update.value).is_some() {
            return Ok(());
        }
        match universe::level(&update.value) {
            Ok(level) => {
                self.universe.set(channel, level);
            }
            Err(e) => {
                tracing::debug!(bridge = %self.stats.name, address, error = %e, "not sent as DMX")
            }
        }
        Ok(())
    }

    /// Bytes from a Pro: changed channels become SETs; bad messages are counted.
    fn received(&mut self, parser: &mut ProParser, bytes: &[u8]) {
        let channels = self.config.channels;
        for msg in parser.feed(bytes) {
            let changes = match msg {
                Ok(ProMessage::Frame(slots)) => self.universe.received_frame(&slots, channels),
                Ok(ProMessage::Changes(list)) => self.universe.received_changes(&list, channels),
                Ok(ProMessage::Ignored(label)) => {
                    tracing::trace!(bridge = %self.stats.name, label, "Pro message ignored");
                    continue;
                }
                Err(e) => {
                    self.bad.report(&self.stats, &self.config.port, &e);
                    continue;
                }
            };
            for (channel, level) in changes {
                let Ok(address) = self.config.namespace.address(&channel.to_string()) else {
                    continue;
                };
                let address = address.as_str().to_string();
                let value = Value::Int(i64::from(level));
                self.echo.inbound(&address, (), &value);
                BridgeStats::bump(&self.stats.received);
                let link = self.link.clone();
                self.inflight.push_back(Box::pin(async move {
                    link.set(&address, value).await.map(drop)
                }));
            }
        }
    }

    fn settle(&self, result: Result<(), ClientError>) -> Result<(), BridgeError> {
        match result {
            Ok(()) => Ok(()),
            Err(ClientError::Closed) => Err(BridgeError::Link(ClientError::Closed)),
            Err(e) => {
                BridgeStats::bump(&self.stats.refused);
                tracing::debug!(bridge = %self.stats.name, error = %e, "write refused");
                Ok(())
            }
        }
    }
}
