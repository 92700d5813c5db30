//! MIDI ↔ CLASP (docs/bridges/midi.md). Messages from a MIDI port (midir, JACK backend) or
//! a raw MIDI byte stream become params and events under the namespace (see [`map`]); changes
//! under the namespace go out as MIDI. Several devices run as several bridges, each with
//! its own namespace (`/midi/launchpad`).

pub mod io;
pub mod map;
pub mod parse;

use std::sync::Arc;

use clasp_actors::client::{ClientError, Update};
use clasp_actors::link::RouterLink;
use clasp_proto::SignalType;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;

use crate::echo::EchoFilter;
use crate::noise::BadInput;
use crate::{Bridge, BridgeError, BridgeStats, Namespace};

pub use io::list;

/// Router writes in flight before the device is no longer read.
const WINDOW: usize = 1024;

/// MIDI bridge settings: flags of `clasp midi`, and a `[[bridge]] kind = "midi"` table.
#[derive(Debug, Clone, Default, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MidiConfig {
    /// Port name (a part of it), index from `--list`, or the path of a raw MIDI device,
    /// pty or FIFO (`/dev/snd/midiC0D0`). Default: the first port.
    #[arg(long, value_name = "NAME|INDEX|PATH")]
    pub device: Option<String>,
    /// Create a virtual input and output port of this name instead of opening a device.
    #[arg(long = "virtual", value_name = "NAME", conflicts_with = "device")]
    #[serde(rename = "virtual")]
    pub virtual_port: Option<String>,
    /// Address prefix of this device's params and events.
    #[arg(long, default_value = "/midi")]
    pub namespace: Namespace,
    /// Do not send a value back to the device it came from.
    #[arg(long)]
    pub no_echo: bool,
    /// Controllers 0-31 sent and received as 14-bit pairs (MSB n, LSB n+32), e.g. `1,7`.
    #[arg(long, value_delimiter = ',', value_name = "N")]
    pub cc14: Vec<u8>,
    /// List the MIDI ports and exit.
    #[arg(long)]
    #[serde(skip)]
    pub list: bool,
}

impl MidiConfig {
    fn namespace(&self) -> Namespace {
        self.namespace.clone()
    }
}

/// The MIDI bridge.
pub struct MidiBridge {
    config: Arc<MidiConfig>,
}

impl MidiBridge {
    /// Checks the settings.
    pub fn new(mut config: MidiConfig) -> Result<Self, BridgeError> {
        if let Some(bad) = config.cc14.iter().find(|n| **n > 31) {
            return Err(BridgeError::config(
                "cc14",
                format!("{bad}: a 14-bit pair's MSB controller is 0-31"),
            ));
        }
        if config.namespace.as_str().is_empty() {
            // clap gives the default; a config table without the key would leave it empty.
            config.namespace = "/midi".parse()?;
        }
        if config.device.is_some() && config.virtual_port.is_some() {
            return Err(BridgeError::config(
                "virtual",
                "give either --device or --virtual",
            ));
        }
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl Bridge for MidiBridge {
    fn kind(&self) -> &'static str {
        "midi"
    }

    fn name(&self) -> String {
        format!("midi:{}", self.config.namespace())
    }

    /// A device may be unplugged at start: the relay serves its clients meanwhile.
    fn gates_readiness(&self) -> bool {
        false
    }

    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        let config = self.config.clone();
        Box::pin(async move { run(&config, link, stats).await })
    }
}

async fn run(
    config: &MidiConfig,
    link: RouterLink,
    stats: Arc<BridgeStats>,
) -> Result<(), BridgeError> {
    let ns = config.namespace();
    let cc14 = map::Cc14::new(&config.cc14);
    let (mut input, mut output) = io::open(config, &stats)?;
    let mut updates = link.subscribe_live(&ns.subtree()).await?;
    let device = config
        .device
        .clone()
        .or_else(|| config.virtual_port.clone())
        .unwrap_or_else(|| "first port".into());
    stats.set_up(true);
    tracing::info!(bridge = %stats.name, device, "MIDI bridge running");
    let mut parser = parse::Parser::default();
    let mut decoder = map::Decoder::new(cc14);
    let mut echo: EchoFilter<()> = EchoFilter::default();
    let mut bad = BadInput::default();
    let mut inflight: FuturesOrdered<LocalBoxFuture<'static, Result<(), ClientError>>> =
        FuturesOrdered::new();
    let mut buf = Vec::with_capacity(1024);
    loop {
        tokio::select! {
            biased;
            Some(r) = inflight.next(), if !inflight.is_empty() => match r {
                Ok(()) => {}
                Err(ClientError::Closed) => return Err(BridgeError::Link(ClientError::Closed)),
                Err(e) => {
                    BridgeStats::bump(&stats.refused);
                    tracing::debug!(bridge = %stats.name, error = %e, "write refused");
                }
            },
            update = updates.next() => {
                let Some(update) = update else {
                    return Err(BridgeError::Link(ClientError::Closed));
                };
                if let Some(bytes) = outbound(config, &ns, cc14, &mut echo, &stats, &update) {
                    if output.send(&bytes).await? {
                        BridgeStats::bump(&stats.sent);
                    }
                }
            }
            r = input.read(&mut buf), if inflight.len() < WINDOW => {
                r?;
                for msg in parser.feed(&buf) {
                    let msg = match msg {
                        Ok(m) => m,
                        Err(e) => {
                            bad.report(&stats, &device, &e);
                            continue;
                        }
                    };
                    let Some(inb) = decoder.decode(&msg) else { continue };
                    let Ok(address) = ns.address(&inb.path) else { continue };
                    let address = address.as_str().to_string();
                    if config.no_echo {
                        echo.inbound(&address, (), &inb.value);
                    }
                    BridgeStats::bump(&stats.received);
                    let link = link.clone();
                    inflight.push_back(Box::pin(async move {
                        match inb.signal {
                            SignalType::Param => link.set(&address, inb.value).await.map(drop),
                            signal => link.publish(signal, &address, inb.value).await,
                        }
                    }));
                }
            }
        }
    }
}

/// The MIDI bytes of a router update under the namespace, unless it must not go out.
fn outbound(
    config: &MidiConfig,
    ns: &Namespace,
    cc14: map::Cc14,
    echo: &mut EchoFilter<()>,
    stats: &BridgeStats,
    update: &Update,
) -> Option<Vec<u8>> {
    // Over WebSocket the subscription starts with a snapshot: only live changes go out.
    if update.signal == SignalType::Param && (update.writer.is_some() || update.timestamp.is_some())
    {
        return None;
    }
    let address = update.address.as_str();
    let path = ns.strip(address)?;
    if config.no_echo && echo.origin(address, &update.value).is_some() {
        return None;
    }
    match map::encode(path, &update.value, cc14) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::debug!(bridge = %stats.name, address, error = %e, "not sent as MIDI");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        midi: MidiConfig,
    }

    #[test]
    fn flags() {
        let c = Cli::parse_from(["x", "--device", "Launchpad", "--cc14", "1,7", "--no-echo"]).midi;
        assert_eq!(c.device.as_deref(), Some("Launchpad"));
        assert_eq!(c.cc14, [1, 7]);
        assert!(c.no_echo);
        assert_eq!(c.namespace.as_str(), "/midi");
        assert!(MidiBridge::new(c).is_ok());
        let c = Cli::parse_from(["x", "--cc14", "40"]).midi;
        assert!(MidiBridge::new(c).is_err());
        assert!(Cli::try_parse_from(["x", "--device", "a", "--virtual", "b"]).is_err());
    }
}
