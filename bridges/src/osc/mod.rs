//! OSC (rosc) ↔ CLASP (docs/bridges/osc.md). Inbound OSC messages become SETs of params
//! under the bridge's namespace (`/synth/volume 0.5` → `/osc/synth/volume` = 0.5), OSC
//! bundles become CLASP bundles run at their timetag; changes under the namespace go out as
//! OSC to the configured targets and to the peers that sent to us, never back to the peer
//! a value came from. UDP, or TCP with SLIP framing (OSC 1.1).

mod core;
pub mod map;
pub mod peers;
pub mod slip;
mod tcp;
mod udp;

use std::sync::Arc;
use std::time::Duration;

use clasp_actors::link::RouterLink;
use futures_util::future::LocalBoxFuture;

use crate::{Bridge, BridgeError, BridgeStats, Namespace};

/// How OSC packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One packet per datagram.
    #[default]
    Udp,
    /// A stream per peer, packets framed with SLIP (OSC 1.1).
    Tcp,
}

/// OSC bridge settings: flags of `clasp osc`, and a `[[bridge]] kind = "osc"` table.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OscConfig {
    /// UDP (or TCP) port to listen on.
    #[arg(long = "listen", visible_alias = "port", default_value_t = 9000)]
    pub port: u16,
    /// Interface to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
    /// Address prefix of this bridge's params.
    #[arg(long, default_value = "/osc")]
    pub namespace: Namespace,
    /// Where changes under the namespace are sent (host:port, repeatable).
    #[arg(long = "send", value_name = "HOST:PORT")]
    pub send: Vec<String>,
    /// `udp`, or `tcp` (SLIP-framed packets; `--send` targets are then TCP servers).
    #[arg(long, value_enum, default_value_t = Transport::Udp)]
    pub transport: Transport,
    /// Send changes back to the peers that sent us OSC (on by default; `--no-reply`).
    #[arg(
        long = "no-reply",
        action = clap::ArgAction::SetFalse,
        overrides_with = "reply_flag",
        help = "Send changes only to --send targets, not to the peers that sent us OSC"
    )]
    pub reply: bool,
    /// Turns replies back on after a `--no-reply` (the default).
    #[arg(long = "reply", overrides_with = "reply")]
    #[serde(skip)]
    pub reply_flag: bool,
    /// Seconds of silence after which a UDP peer no longer receives replies.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub peer_timeout: u64,
    /// Most peers replied to at once (UDP peers remembered, TCP connections accepted).
    #[arg(long, default_value_t = 64)]
    pub max_peers: usize,
}

impl Default for OscConfig {
    fn default() -> Self {
        Self {
            port: 9000,
            bind: "0.0.0.0".into(),
            namespace: "/osc".parse().unwrap_or_default(),
            send: Vec::new(),
            transport: Transport::Udp,
            reply: true,
            reply_flag: false,
            peer_timeout: 30,
            max_peers: 64,
        }
    }
}

impl OscConfig {
    fn peer_timeout(&self) -> Duration {
        Duration::from_secs(self.peer_timeout.max(1))
    }

    /// `host:port` to bind, with an IPv6 host in brackets (`--bind ::` → `[::]:9000`).
    fn listen_addr(&self) -> String {
        crate::listen::host_port(&self.bind, self.port)
    }
}

/// The OSC bridge.
pub struct OscBridge {
    config: Arc<OscConfig>,
}

impl OscBridge {
    /// Checks the settings: every `--send` is `host:port`.
    pub fn new(config: OscConfig) -> Result<Self, BridgeError> {
        for target in &config.send {
            check_target(target)?;
        }
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

fn check_target(target: &str) -> Result<(), BridgeError> {
    let bad = |why: &str| BridgeError::config("send", format!("{target:?}: {why}"));
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    if host.is_empty() {
        return Err(bad("no host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad("bad port")),
    }
}

impl Bridge for OscBridge {
    fn kind(&self) -> &'static str {
        "osc"
    }

    fn name(&self) -> String {
        format!("osc:{}", self.config.namespace)
    }

    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        let config = self.config.clone();
        Box::pin(async move {
            let core = core::Core::new(link, stats, config.namespace.clone());
            match config.transport {
                Transport::Udp => udp::run(&config, core).await,
                Transport::Tcp => tcp::run(&config, core).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        osc: OscConfig,
    }

    #[test]
    fn flags_and_defaults_agree() {
        let d = Cli::parse_from(["x"]).osc;
        let def = OscConfig::default();
        assert_eq!(
            (
                d.port,
                d.bind,
                d.namespace,
                d.transport,
                d.reply,
                d.peer_timeout,
                d.max_peers
            ),
            (
                def.port,
                def.bind,
                def.namespace,
                def.transport,
                def.reply,
                def.peer_timeout,
                def.max_peers
            )
        );
        assert!(!Cli::parse_from(["x", "--no-reply"]).osc.reply);
        assert!(Cli::parse_from(["x", "--no-reply", "--reply"]).osc.reply);
        let c = Cli::parse_from(["x", "--port", "8000", "--transport", "tcp"]).osc;
        assert_eq!((c.port, c.transport), (8000, Transport::Tcp));
        assert_eq!(c.listen_addr(), "0.0.0.0:8000");
        let c = Cli::parse_from(["x", "--bind", "::1"]).osc;
        assert_eq!(c.listen_addr(), "[::1]:9000");
    }

    #[test]
    fn targets_are_checked() {
        for good in ["127.0.0.1:9001", "localhost:1", "[::1]:9000"] {
            assert!(check_target(good).is_ok(), "{good}");
        }
        for bad in ["9001", ":9001", "host:", "host:0", "host:70000"] {
            assert!(check_target(bad).is_err(), "{bad}");
        }
    }
}
