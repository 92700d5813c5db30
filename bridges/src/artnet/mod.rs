//! Art-Net (artnet_protocol) ↔ CLASP (docs/bridges/artnet.md). Received ArtDmx frames are
//! merged per universe (HTP or LTP, sources time out after 4 s) and become params
//! `/artnet/{universe}/{channel}` (or one stream per frame at `/artnet/{universe}`);
//! changes under the namespace fill outbound universes that go out as ArtDmx at the refresh
//! rate and at least once a second. ArtPoll is answered with ArtPollReply.

pub mod packet;
mod udp;

use std::sync::Arc;
use std::time::Duration;

use clasp_actors::link::RouterLink;
use futures_util::future::LocalBoxFuture;

use crate::dmx_universe::core::DmxSettings;
use crate::dmx_universe::dest::check_common;
use crate::dmx_universe::{DmxMode, MergeMode, UniverseSet};
use crate::{Bridge, BridgeError, BridgeStats, Namespace};

/// Art-Net bridge settings: flags of `clasp artnet`, and a `[[bridge]] kind = "artnet"` table.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArtnetConfig {
    /// UDP port to listen on (real gear always uses 6454).
    #[arg(long = "listen", visible_alias = "port", default_value_t = packet::ARTNET_PORT)]
    pub port: u16,
    /// Interface address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub interface: String,
    /// Address prefix of this bridge's params.
    #[arg(long, default_value = "/artnet")]
    pub namespace: Namespace,
    /// Universes (15-bit port-addresses) received and sent, e.g. `0-15,20`.
    #[arg(long, default_value = "0-15")]
    pub universes: UniverseSet,
    /// `channel`: changed channels as params; `universe`: each frame as one stream.
    #[arg(long, value_enum, default_value_t = DmxMode::Channel)]
    pub mode: DmxMode,
    /// Levels as 0.0–1.0 floats instead of 0–255 ints.
    #[arg(long)]
    pub normalize: bool,
    /// How sources of one universe merge: `htp` (highest level) or `ltp` (latest change).
    #[arg(long, value_enum, default_value_t = MergeMode::Htp)]
    pub merge: MergeMode,
    /// Seconds of silence after which a source leaves the merge.
    #[arg(long, default_value_t = 4.0, value_name = "SECONDS")]
    pub source_timeout: f64,
    /// Where ArtDmx goes (host or host:port, repeatable); none: broadcast.
    #[arg(long = "dest", value_name = "HOST[:PORT]")]
    pub dest: Vec<String>,
    /// The broadcast address used when there is no `--dest`.
    #[arg(long, default_value = "255.255.255.255")]
    pub broadcast: String,
    /// Most ArtDmx frames per second per universe (changes); idle universes are re-sent
    /// once a second.
    #[arg(long, default_value_t = 44.0, value_name = "HZ")]
    pub refresh_rate: f64,
    /// The node's short name in ArtPollReply.
    #[arg(long, default_value = "CLASP")]
    pub short_name: String,
    /// The node's long name in ArtPollReply.
    #[arg(long, default_value = "CLASP Art-Net bridge")]
    pub long_name: String,
}

impl Default for ArtnetConfig {
    fn default() -> Self {
        Self {
            port: packet::ARTNET_PORT,
            interface: "0.0.0.0".into(),
            namespace: "/artnet".parse().unwrap_or_default(),
            universes: UniverseSet::range(0, 15),
            mode: DmxMode::Channel,
            normalize: false,
            merge: MergeMode::Htp,
            source_timeout: 4.0,
            dest: Vec::new(),
            broadcast: "255.255.255.255".into(),
            refresh_rate: 44.0,
            short_name: "CLASP".into(),
            long_name: "CLASP Art-Net bridge".into(),
        }
    }
}

impl ArtnetConfig {
    fn settings(&self) -> DmxSettings {
        DmxSettings {
            namespace: self.namespace.clone(),
            universes: self.universes.clone(),
            mode: self.mode,
            normalize: self.normalize,
            merge: self.merge,
            source_timeout: Duration::from_secs_f64(self.source_timeout),
            refresh_hz: self.refresh_rate,
        }
    }

    /// `host:port` to bind, with an IPv6 host in brackets.
    fn listen_addr(&self) -> String {
        crate::listen::host_port(&self.interface, self.port)
    }
}

/// The Art-Net bridge.
pub struct ArtnetBridge {
    config: Arc<ArtnetConfig>,
}

impl ArtnetBridge {
    /// Checks the settings: universes within 0–32767, timeouts, rates and destinations.
    pub fn new(config: ArtnetConfig) -> Result<Self, BridgeError> {
        config.universes.check_within(0, packet::MAX_UNIVERSE)?;
        check_common(config.source_timeout, config.refresh_rate, &config.dest)?;
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl Bridge for ArtnetBridge {
    fn kind(&self) -> &'static str {
        "artnet"
    }

    fn name(&self) -> String {
        format!("artnet:{}", self.config.namespace)
    }

    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        let config = self.config.clone();
        Box::pin(async move { udp::run(&config, link, stats).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        artnet: ArtnetConfig,
    }

    #[test]
    fn flags_and_defaults_agree() {
        let d = Cli::parse_from(["x"]).artnet;
        let def = ArtnetConfig::default();
        assert_eq!(
            (
                d.port,
                &d.interface,
                &d.namespace,
                &d.universes,
                d.mode,
                d.merge
            ),
            (
                def.port,
                &def.interface,
                &def.namespace,
                &def.universes,
                def.mode,
                def.merge
            )
        );
        assert_eq!(
            (
                d.source_timeout,
                d.refresh_rate,
                &d.broadcast,
                &d.short_name,
                &d.long_name
            ),
            (
                def.source_timeout,
                def.refresh_rate,
                &def.broadcast,
                &def.short_name,
                &def.long_name
            )
        );
        assert!(ArtnetBridge::new(d).is_ok());
        let c = Cli::parse_from(["x", "--universes", "40000"]).artnet;
        assert!(ArtnetBridge::new(c).is_err());
        let c = Cli::parse_from(["x", "--dest", "host:0"]).artnet;
        assert!(ArtnetBridge::new(c).is_err());
    }
}
