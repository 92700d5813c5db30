//! Bridges from the command line: the relay flags that embed them (`clasp relay --osc-port
//! 8000 --mqtt-port 1883 ...`) and the standalone subcommands (`clasp osc --listen 8000
//! --target ws://host:7330`) that run one bridge as a client of a remote relay.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser as _, Subcommand};
use clasp_actors::health::ActorTable;
use clasp_actors::link::RouterLink;
use clasp_actors::relay::{HttpMount, Relay};
use clasp_bridges::artnet::{ArtnetBridge, ArtnetConfig};
use clasp_bridges::dmx::{DeviceKind, DmxBridge, DmxConfig};
use clasp_bridges::http::{HttpBridge, HttpConfig};
use clasp_bridges::midi::{MidiBridge, MidiConfig};
use clasp_bridges::mqtt::{MqttClientBridge, MqttClientConfig, MqttServerBridge, MqttServerConfig};
use clasp_bridges::osc::{OscBridge, OscConfig};
use clasp_bridges::sacn::{SacnBridge, SacnConfig};
use clasp_bridges::wsjson::{WsJsonBridge, WsJsonConfig};
use clasp_bridges::{spawn, BridgeHandle, BridgeRegistry, LinkSource, Namespace};

use crate::cli::RelayArgs;
use crate::client_cmd::Conn;

/// Relay flags that run bridges inside the relay process (FEATURES BR-2).
#[derive(Debug, Clone, Args)]
pub struct EmbeddedBridges {
    /// Run the OSC bridge on this UDP port.
    #[arg(long, env = "CLASP_OSC_PORT")]
    pub osc_port: Option<u16>,
    /// Address prefix of the embedded OSC bridge.
    #[arg(long, default_value = "/osc")]
    pub osc_namespace: Namespace,
    /// Where the embedded OSC bridge sends changes (host:port, repeatable).
    #[arg(long = "osc-send", value_name = "HOST:PORT")]
    pub osc_send: Vec<String>,
    /// Be an MQTT broker for plain MQTT clients on this TCP port.
    #[arg(long, env = "CLASP_MQTT_PORT")]
    pub mqtt_port: Option<u16>,
    /// Address prefix of the embedded MQTT broker (and of `--mqtt-broker`).
    #[arg(long, default_value = "/mqtt")]
    pub mqtt_namespace: Namespace,
    /// Bridge to an external MQTT broker (mqtt://host:1883 or mqtts://...).
    #[arg(long, value_name = "URL")]
    pub mqtt_broker: Option<String>,
    /// Also serve the REST API on a port of its own (it is always on the relay's port).
    #[arg(long)]
    pub http_port: Option<u16>,
    /// Serve the JSON WebSocket bridge at this path of the relay's port (e.g. /json).
    #[arg(long, value_name = "PATH")]
    pub ws_json_path: Option<String>,
    /// Serve the JSON WebSocket bridge on a port of its own.
    #[arg(long)]
    pub ws_json_port: Option<u16>,
    /// Run the DMX bridge on this USB serial device (e.g. /dev/ttyUSB0).
    #[arg(long, env = "CLASP_DMX_PORT", value_name = "PATH")]
    pub dmx_port: Option<String>,
    /// Kind of DMX interface on --dmx-port: `pro` (ENTTEC DMX USB Pro) or `open` (Open DMX).
    #[arg(long, value_enum, default_value_t = DeviceKind::Pro)]
    pub dmx_device: DeviceKind,
    /// Address prefix of the embedded DMX bridge.
    #[arg(long, default_value = "/dmx")]
    pub dmx_namespace: Namespace,
    /// Run the MIDI bridge on this port (name, index, or raw device/FIFO path).
    #[arg(long, env = "CLASP_MIDI_DEVICE", value_name = "NAME|INDEX|PATH")]
    pub midi_device: Option<String>,
    /// Address prefix of the embedded MIDI bridge.
    #[arg(long, default_value = "/midi")]
    pub midi_namespace: Namespace,
    /// Run the Art-Net bridge on this UDP port (real gear uses 6454).
    #[arg(long, env = "CLASP_ARTNET_PORT")]
    pub artnet_port: Option<u16>,
    /// Address prefix of the embedded Art-Net bridge.
    #[arg(long, default_value = "/artnet")]
    pub artnet_namespace: Namespace,
    /// Art-Net universes received and sent (e.g. 0-15,20).
    #[arg(long, default_value = "0-15")]
    pub artnet_universes: clasp_bridges::dmx_universe::UniverseSet,
    /// Where the embedded Art-Net bridge sends ArtDmx (host[:port], repeatable); none: broadcast.
    #[arg(long = "artnet-dest", value_name = "HOST[:PORT]")]
    pub artnet_dest: Vec<String>,
    /// Run the sACN (E1.31) bridge on this UDP port (E1.31 uses 5568).
    #[arg(long, env = "CLASP_SACN_PORT")]
    pub sacn_port: Option<u16>,
    /// Address prefix of the embedded sACN bridge.
    #[arg(long, default_value = "/sacn")]
    pub sacn_namespace: Namespace,
    /// sACN universes received and sent (e.g. 1-16).
    #[arg(long, default_value = "1-16")]
    pub sacn_universes: clasp_bridges::dmx_universe::UniverseSet,
    /// Where the embedded sACN bridge sends (host[:port], repeatable); none: multicast.
    #[arg(long = "sacn-dest", value_name = "HOST[:PORT]")]
    pub sacn_dest: Vec<String>,
}

impl EmbeddedBridges {
    /// The routes the bridges add to the relay's own port.
    fn mounts(&self, host: &str) -> Vec<HttpMount> {
        let mut mounts = vec![clasp_bridges::http::mount(HttpConfig {
            bind: host.to_string(),
            ..HttpConfig::default()
        })];
        if let Some(path) = &self.ws_json_path {
            mounts.push(clasp_bridges::wsjson::mount(
                path.clone(),
                WsJsonConfig {
                    bind: host.to_string(),
                    ..WsJsonConfig::default()
                },
            ));
        }
        mounts
    }

    /// Checks the bridge flags without starting anything.
    pub fn check(&self) -> anyhow::Result<()> {
        for spec in self.specs("0.0.0.0") {
            spec.check()?;
        }
        Ok(())
    }

    /// The bridges these flags ask for that run on ports of their own, bound to `host`.
    // Each config has more settings than the relay exposes as flags; the defaults fill them.
    #[allow(clippy::needless_update)]
    fn specs(&self, host: &str) -> Vec<BridgeSpec> {
        let bind = host.to_string();
        let mut specs = Vec::new();
        if let Some(port) = self.osc_port {
            specs.push(BridgeSpec::Osc(OscConfig {
                port,
                bind: bind.clone(),
                namespace: self.osc_namespace.clone(),
                send: self.osc_send.clone(),
                ..OscConfig::default()
            }));
        }
        if let Some(port) = self.mqtt_port {
            specs.push(BridgeSpec::MqttServer(MqttServerConfig {
                port,
                bind: bind.clone(),
                namespace: self.mqtt_namespace.clone(),
                ..MqttServerConfig::default()
            }));
        }
        if let Some(broker) = &self.mqtt_broker {
            specs.push(BridgeSpec::Mqtt(MqttClientConfig {
                broker: broker.clone(),
                namespace: self.mqtt_namespace.clone(),
                ..MqttClientConfig::default()
            }));
        }
        if let Some(port) = self.http_port {
            specs.push(BridgeSpec::Http(HttpConfig {
                port,
                bind: bind.clone(),
                ..HttpConfig::default()
            }));
        }
        if let Some(port) = self.ws_json_port {
            specs.push(BridgeSpec::Websocket(WsJsonConfig {
                port,
                bind: bind.clone(),
                ..WsJsonConfig::default()
            }));
        }
        if let Some(port) = &self.dmx_port {
            specs.push(BridgeSpec::Dmx(DmxConfig {
                port: port.clone(),
                device: self.dmx_device,
                namespace: self.dmx_namespace.clone(),
                ..DmxConfig::default()
            }));
        }
        if let Some(device) = &self.midi_device {
            specs.push(BridgeSpec::Midi(MidiConfig {
                device: Some(device.clone()),
                namespace: self.midi_namespace.clone(),
                ..MidiConfig::default()
            }));
        }
        if let Some(port) = self.artnet_port {
            specs.push(BridgeSpec::Artnet(ArtnetConfig {
                port,
                interface: bind.clone(),
                namespace: self.artnet_namespace.clone(),
                universes: self.artnet_universes.clone(),
                dest: self.artnet_dest.clone(),
                ..ArtnetConfig::default()
            }));
        }
        if let Some(port) = self.sacn_port {
            specs.push(BridgeSpec::Sacn(SacnConfig {
                port,
                interface: bind,
                namespace: self.sacn_namespace.clone(),
                universes: self.sacn_universes.clone(),
                dest: self.sacn_dest.clone(),
                ..SacnConfig::default()
            }));
        }
        specs
    }
}

/// A `[[bridge]]` table of a config file: `kind` picks the bridge, the other keys are its
/// settings (the same names as its standalone flags).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BridgeSpec {
    /// OSC.
    Osc(OscConfig),
    /// Client of an external MQTT broker.
    Mqtt(MqttClientConfig),
    /// The embedded MQTT broker.
    MqttServer(MqttServerConfig),
    /// REST on a port of its own.
    Http(HttpConfig),
    /// JSON over WebSocket on a port of its own.
    Websocket(WsJsonConfig),
    /// DMX over a USB serial interface.
    Dmx(DmxConfig),
    /// MIDI (a JACK port or a raw MIDI byte stream).
    Midi(MidiConfig),
    /// Art-Net.
    Artnet(ArtnetConfig),
    /// sACN (E1.31).
    Sacn(SacnConfig),
}

impl BridgeSpec {
    /// Checks the settings without starting anything.
    pub fn check(&self) -> anyhow::Result<()> {
        self.clone().start(None, &ActorTable::default()).map(drop)
    }

    /// Starts the bridge (or only checks it when `source` is `None`).
    fn start(
        self,
        source: Option<&LinkSource>,
        actors: &ActorTable,
    ) -> anyhow::Result<Option<BridgeHandle>> {
        macro_rules! go {
            ($bridge:expr) => {{
                let bridge = $bridge?;
                Ok(source.map(|s| spawn(bridge, s.clone(), actors.clone())))
            }};
        }
        match self {
            BridgeSpec::Osc(c) => go!(OscBridge::new(c)),
            BridgeSpec::Mqtt(c) => go!(MqttClientBridge::new(c)),
            BridgeSpec::MqttServer(c) => go!(MqttServerBridge::new(c)),
            BridgeSpec::Http(c) => go!(HttpBridge::new(c)),
            BridgeSpec::Websocket(c) => go!(WsJsonBridge::new(c)),
            BridgeSpec::Dmx(c) => go!(DmxBridge::new(c)),
            BridgeSpec::Midi(c) => go!(MidiBridge::new(c)),
            BridgeSpec::Artnet(c) => go!(ArtnetBridge::new(c)),
            BridgeSpec::Sacn(c) => go!(SacnBridge::new(c)),
        }
    }
}

/// Runs a relay with the bridges its flags and config file ask for, until SIGTERM or SIGINT.
pub fn run_relay(
    args: RelayArgs,
    file_bridges: Vec<BridgeSpec>,
    log: crate::cli::LogHandle,
    argv: Vec<std::ffi::OsString>,
) -> anyhow::Result<()> {
    let reload_log_level = args.config.is_some();
    let host = args.host.clone();
    let registry = BridgeRegistry::default();
    let mut mounts = args.bridges.mounts(&host);
    mounts.push(crate::console::mount(registry.clone()));
    let bridges = args.bridges.clone();
    let config = args.into_config().context("invalid relay settings")?;
    let system = actix::System::new();
    system.block_on(async move {
        let relay = Relay::start_with(config, mounts).context("relay failed to start")?;
        let router = relay.router().clone();
        let source = LinkSource::Local(router.clone());
        router.metrics.add(std::sync::Arc::new(registry.clone()));
        let mut handles = Vec::new();
        for spec in bridges.specs(&host).into_iter().chain(file_bridges) {
            let handle = spec
                .start(Some(&source), &router.actors)
                .context("invalid bridge settings")?;
            if let Some(handle) = handle {
                registry.add(handle.stats().clone());
                handles.push(handle);
            }
        }
        if reload_log_level {
            actix::spawn(reload_log_level_on_hangup(log, argv));
        }
        relay.run_until_signal().await.context("relay failed")?;
        for handle in handles {
            handle.stop();
        }
        Ok(())
    })
}

/// On SIGHUP, re-reads the config file and applies its log level (unless a flag, `CLASP_*`
/// or `RUST_LOG` sets it: the same precedence as at start). The relay itself reloads the
/// rules and the app config on the same signal.
async fn reload_log_level_on_hangup(log: crate::cli::LogHandle, argv: Vec<std::ffi::OsString>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let level = crate::config_file::expand(argv.clone())
                .map_err(anyhow::Error::from)
                .and_then(|(argv, _)| Ok(crate::cli::Cli::try_parse_from(argv)?))
                .and_then(|cli| match cli.command {
                    crate::cli::Command::Relay(a) => {
                        crate::cli::log_filter(&a.log_level, a.verbose)
                    }
                    _ => anyhow::bail!("not a relay command line"),
                });
            match level.and_then(|f| Ok(log.reload(f)?)) {
                Ok(()) => tracing::info!("SIGHUP: log level reloaded from the config file"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: log level not reloaded"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (log, argv);
}

/// The standalone bridges (FEATURES BR-1).
#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// OSC over UDP (or TCP) to and from a relay.
    Osc(Standalone<OscConfig>),
    /// An external MQTT broker to and from a relay.
    Mqtt(Standalone<MqttClientConfig>),
    /// A REST API (and Server-Sent Events) for a relay.
    Http(Standalone<HttpConfig>),
    /// A JSON-over-WebSocket API for a relay.
    #[command(name = "websocket", visible_alias = "ws")]
    Websocket(Standalone<WsJsonConfig>),
    /// A DMX USB serial interface (ENTTEC Pro or Open DMX) to and from a relay.
    Dmx(Standalone<DmxConfig>),
    /// A MIDI device (JACK port or raw byte stream) to and from a relay.
    Midi(Standalone<MidiConfig>),
    /// Art-Net (DMX over UDP) to and from a relay.
    Artnet(Standalone<ArtnetConfig>),
    /// sACN / E1.31 (DMX over UDP multicast) to and from a relay.
    Sacn(Standalone<SacnConfig>),
}

/// A standalone bridge's own flags plus the relay it serves.
#[derive(Debug, Args)]
pub struct Standalone<C: Args> {
    /// The relay to bridge to (defaults to --url).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Bridge settings.
    #[command(flatten)]
    pub config: C,
}

/// Connects to the relay and runs one bridge until SIGTERM or SIGINT. The client reconnects
/// by itself; the bridge is restarted with backoff when its own side fails.
pub fn run_standalone(conn: Conn, cmd: BridgeCommand) -> anyhow::Result<()> {
    if let BridgeCommand::Midi(s) = &cmd {
        if s.config.list {
            print!("{}", clasp_bridges::midi::list()?);
            return Ok(());
        }
    }
    let system = actix::System::new();
    system.block_on(async move {
        let target = match &cmd {
            BridgeCommand::Osc(s) => s.target.clone(),
            BridgeCommand::Mqtt(s) => s.target.clone(),
            BridgeCommand::Http(s) => s.target.clone(),
            BridgeCommand::Websocket(s) => s.target.clone(),
            BridgeCommand::Dmx(s) => s.target.clone(),
            BridgeCommand::Midi(s) => s.target.clone(),
            BridgeCommand::Artnet(s) => s.target.clone(),
            BridgeCommand::Sacn(s) => s.target.clone(),
        }
        .unwrap_or_else(|| conn.url.clone());
        let mut builder = clasp_actors::client::Client::builder(target.clone())
            .name("clasp-bridge")
            .reconnect(true)
            .timeout(Duration::from_secs(conn.timeout.max(1)));
        if let Some(token) = &conn.token {
            builder = builder.token(token.clone());
        }
        if let Some(ca) = &conn.ca_cert {
            builder = builder.ca_file(ca.clone());
        }
        let client = builder
            .connect()
            .await
            .with_context(|| format!("cannot connect to the relay at {target}"))?;
        let source = LinkSource::Remote(RouterLink::remote(client));
        let actors = ActorTable::default();
        let handle = match cmd {
            BridgeCommand::Osc(s) => spawn(OscBridge::new(s.config)?, source, actors),
            BridgeCommand::Mqtt(s) => spawn(MqttClientBridge::new(s.config)?, source, actors),
            BridgeCommand::Http(s) => spawn(HttpBridge::new(s.config)?, source, actors),
            BridgeCommand::Websocket(s) => spawn(WsJsonBridge::new(s.config)?, source, actors),
            BridgeCommand::Dmx(s) => spawn(DmxBridge::new(s.config)?, source, actors),
            BridgeCommand::Midi(s) => spawn(MidiBridge::new(s.config)?, source, actors),
            BridgeCommand::Artnet(s) => spawn(ArtnetBridge::new(s.config)?, source, actors),
            BridgeCommand::Sacn(s) => spawn(SacnBridge::new(s.config)?, source, actors),
        };
        shutdown_signal().await;
        handle.stop();
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
