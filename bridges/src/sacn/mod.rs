//! sACN / E1.31 ↔ CLASP (docs/bridges/sacn.md). Data packets received by multicast
//! (239.255.hi.lo, joined per universe) or unicast are merged per universe (the highest
//! priority wins, equal priorities merge HTP or LTP; late sequence numbers, preview data
//! and other start codes are dropped; a terminated or 2.5 s silent source leaves) and
//! become params `/sacn/{universe}/{channel}` (or a stream per frame at `/sacn/{universe}`).
//! Changes under the namespace go out with our priority, source name and stable CID, at the
//! refresh rate and at least once a second, and are terminated when the bridge stops.
//!
//! Packets are parsed and built with the `sacn` crate's packet types over our own tokio
//! socket: the crate's `SacnReceiver` blocks its thread in `recv` and merges sources its
//! own way, while this bridge is one async task that also sends on the same socket and
//! needs HTP/LTP with per-source priority and timeouts the same as Art-Net's.

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

/// sACN bridge settings: flags of `clasp sacn`, and a `[[bridge]] kind = "sacn"` table.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SacnConfig {
    /// UDP port to listen on (E1.31 uses 5568).
    #[arg(long = "listen", visible_alias = "port", default_value_t = packet::SACN_PORT)]
    pub port: u16,
    /// Interface address to listen on (0.0.0.0 to receive multicast).
    #[arg(long, default_value = "0.0.0.0")]
    pub interface: String,
    /// Interface address multicast groups are joined and sent on (0.0.0.0: the default).
    #[arg(long, default_value = "0.0.0.0")]
    pub multicast_interface: String,
    /// Address prefix of this bridge's params.
    #[arg(long, default_value = "/sacn")]
    pub namespace: Namespace,
    /// Universes (1–63999) received and sent, e.g. `1-16,100`; one multicast group each.
    #[arg(long, default_value = "1-16")]
    pub universes: UniverseSet,
    /// `channel`: changed channels as params; `universe`: each frame as one stream.
    #[arg(long, value_enum, default_value_t = DmxMode::Channel)]
    pub mode: DmxMode,
    /// Levels as 0.0–1.0 floats instead of 0–255 ints.
    #[arg(long)]
    pub normalize: bool,
    /// How sources of equal priority merge: `htp` (highest level) or `ltp` (latest change).
    #[arg(long, value_enum, default_value_t = MergeMode::Htp)]
    pub merge: MergeMode,
    /// Seconds of silence after which a source leaves the merge (E1.31: 2.5).
    #[arg(long, default_value_t = 2.5, value_name = "SECONDS")]
    pub source_timeout: f64,
    /// Priority of the packets we send (0–200).
    #[arg(long, default_value_t = 100)]
    pub priority: u8,
    /// Source name of the packets we send (at most 63 bytes).
    #[arg(long, default_value = "clasp-sacn")]
    pub source_name: String,
    /// Component id (UUID) of the packets we send; default: derived from the host name,
    /// source name and port, so it is the same after a restart.
    #[arg(long, value_name = "UUID")]
    pub cid: Option<String>,
    /// Unicast destinations (host or host:port, repeatable); none: multicast per universe.
    #[arg(long = "dest", value_name = "HOST[:PORT]")]
    pub dest: Vec<String>,
    /// Most frames per second per universe (changes); idle universes are re-sent once a
    /// second.
    #[arg(long, default_value_t = 44.0, value_name = "HZ")]
    pub refresh_rate: f64,
}

impl Default for SacnConfig {
    fn default() -> Self {
        Self {
            port: packet::SACN_PORT,
            interface: "0.0.0.0".into(),
            multicast_interface: "0.0.0.0".into(),
            namespace: "/sacn".parse().unwrap_or_default(),
            universes: UniverseSet::range(1, 16),
            mode: DmxMode::Channel,
            normalize: false,
            merge: MergeMode::Htp,
            source_timeout: 2.5,
            priority: 100,
            source_name: "clasp-sacn".into(),
            cid: None,
            dest: Vec::new(),
            refresh_rate: 44.0,
        }
    }
}

impl SacnConfig {
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
}

/// The sACN bridge.
pub struct SacnBridge {
    config: Arc<SacnConfig>,
    source: packet::SourceInfo,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

impl SacnBridge {
    /// Checks the settings: universes within 1–63999, priority, source name, CID, interface
    /// addresses, timeouts, rates and destinations.
    pub fn new(config: SacnConfig) -> Result<Self, BridgeError> {
        config
            .universes
            .check_within(packet::MIN_UNIVERSE, packet::MAX_UNIVERSE)?;
        check_common(config.source_timeout, config.refresh_rate, &config.dest)?;
        if config.priority > packet::MAX_PRIORITY {
            return Err(BridgeError::config(
                "priority",
                format!("{}: expected 0-200", config.priority),
            ));
        }
        if config.source_name.len() > 63 {
            return Err(BridgeError::config(
                "source-name",
                "at most 63 bytes".to_string(),
            ));
        }
        for (setting, ip) in [
            ("interface", &config.interface),
            ("multicast-interface", &config.multicast_interface),
        ] {
            ip.parse::<std::net::Ipv4Addr>().map_err(|e| {
                BridgeError::config(setting, format!("{ip:?}: an IPv4 address: {e}"))
            })?;
        }
        let cid = match &config.cid {
            Some(text) => *uuid::Uuid::parse_str(text)
                .map_err(|e| BridgeError::config("cid", format!("{text:?}: {e}")))?
                .as_bytes(),
            None => packet::stable_cid(&host_name(), &config.source_name, config.port),
        };
        let source = packet::SourceInfo {
            cid,
            name: config.source_name.clone(),
            priority: config.priority,
        };
        Ok(Self {
            config: Arc::new(config),
            source,
        })
    }

    /// The component id the bridge sends with.
    pub fn cid(&self) -> uuid::Uuid {
        uuid::Uuid::from_bytes(self.source.cid)
    }
}

impl Bridge for SacnBridge {
    fn kind(&self) -> &'static str {
        "sacn"
    }

    fn name(&self) -> String {
        format!("sacn:{}", self.config.namespace)
    }

    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        let (config, source) = (self.config.clone(), self.source.clone());
        Box::pin(async move { udp::run(&config, source, link, stats).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sacn: SacnConfig,
    }

    #[test]
    fn flags_and_defaults_agree() {
        let d = Cli::parse_from(["x"]).sacn;
        let def = SacnConfig::default();
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
                d.priority,
                &d.source_name,
                d.refresh_rate,
                &d.multicast_interface
            ),
            (
                def.source_timeout,
                def.priority,
                &def.source_name,
                def.refresh_rate,
                &def.multicast_interface
            )
        );
        let a = SacnBridge::new(d).unwrap();
        let b = SacnBridge::new(SacnConfig::default()).unwrap();
        assert_eq!(a.cid(), b.cid(), "the CID is stable");
        for bad in [
            vec!["x", "--universes", "0-3"],
            vec!["x", "--universes", "64000"],
            vec!["x", "--priority", "201"],
            vec!["x", "--cid", "nope"],
            vec!["x", "--interface", "::1"],
        ] {
            let c = Cli::parse_from(bad.clone()).sacn;
            assert!(SacnBridge::new(c).is_err(), "{bad:?}");
        }
        let c = Cli::parse_from(["x", "--cid", "5d0c2b0e-1f1a-4c8e-9a55-000000000001"]).sacn;
        assert_eq!(
            SacnBridge::new(c).unwrap().cid().to_string(),
            "5d0c2b0e-1f1a-4c8e-9a55-000000000001"
        );
    }
}
