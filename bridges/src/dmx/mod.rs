//! DMX512 over a USB serial interface ↔ CLASP (docs/bridges/dmx.md). Channel `n` of the
//! universe is the param `{namespace}/{n}` (0–255). Output: changes under the namespace
//! update the outgoing frame, sent at `--refresh` Hz. Input (ENTTEC Pro only): received
//! levels become SETs of the channels that changed. The device may vanish and come back
//! mid-show: the bridge reports it down and reopens it, keeping the levels it had.

mod device;
pub mod pro;
pub mod universe;

use std::sync::Arc;
use std::time::Duration;

use clasp_actors::link::RouterLink;
use futures_util::future::LocalBoxFuture;

use crate::{Bridge, BridgeError, BridgeStats, Namespace};

/// Which kind of interface is on the serial port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// ENTTEC DMX USB Pro (and compatibles): framed messages, input and output.
    #[default]
    Pro,
    /// ENTTEC Open DMX USB / plain FTDI: break + 513 raw bytes at 250 kbaud, output only.
    Open,
}

/// Which way levels flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// DMX in → CLASP.
    Input,
    /// CLASP → DMX out.
    Output,
    /// Both.
    #[default]
    Both,
}

impl Direction {
    fn input(self) -> bool {
        matches!(self, Direction::Input | Direction::Both)
    }
    fn output(self) -> bool {
        matches!(self, Direction::Output | Direction::Both)
    }
}

/// A range of DMX channels, `1-512` or `N` (= `1-N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    /// First channel (1-based).
    pub first: u16,
    /// Last channel, inclusive.
    pub last: u16,
}

impl Default for Channels {
    fn default() -> Self {
        Channels {
            first: 1,
            last: 512,
        }
    }
}

impl Channels {
    /// Whether channel `n` is bridged.
    pub fn contains(&self, n: u16) -> bool {
        (self.first..=self.last).contains(&n)
    }
}

impl std::str::FromStr for Channels {
    type Err = BridgeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || BridgeError::config("channels", format!("{s:?}: expected N or A-B within 1-512"));
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ),
            None => (1, s.trim().parse().map_err(|_| bad())?),
        };
        if first == 0 || last > 512 || first > last {
            return Err(bad());
        }
        Ok(Channels { first, last })
    }
}

impl std::fmt::Display for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl<'de> serde::Deserialize<'de> for Channels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// DMX bridge settings: flags of `clasp dmx`, and a `[[bridge]] kind = "dmx"` table.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DmxConfig {
    /// Serial device of the interface (e.g. /dev/ttyUSB0).
    #[arg(long, default_value = "/dev/ttyUSB0")]
    pub port: String,
    /// `pro` (ENTTEC DMX USB Pro framing) or `open` (ENTTEC Open DMX: break + raw frame).
    #[arg(long, value_enum, default_value_t = DeviceKind::Pro)]
    pub device: DeviceKind,
    /// Address prefix of the channels.
    #[arg(long, default_value = "/dmx")]
    pub namespace: Namespace,
    /// Output frames per second while levels change (Open DMX: always).
    #[arg(long, default_value_t = 40, value_name = "HZ")]
    pub refresh: u32,
    /// Channels bridged: `1-512`, `A-B`, or `N` (= `1-N`).
    #[arg(long, default_value = "1-512")]
    pub channels: Channels,
    /// `input`, `output` or `both` (input needs a Pro).
    #[arg(long, value_enum, default_value_t = Direction::Both)]
    pub direction: Direction,
    /// Serial line speed (0: 57 600 for a Pro, 250 000 for Open DMX).
    #[arg(long, default_value_t = 0)]
    pub baud: u32,
}

impl Default for DmxConfig {
    fn default() -> Self {
        Self {
            port: "/dev/ttyUSB0".into(),
            device: DeviceKind::Pro,
            namespace: "/dmx".parse().unwrap_or_default(),
            refresh: 40,
            channels: Channels::default(),
            direction: Direction::Both,
            baud: 0,
        }
    }
}

impl DmxConfig {
    fn baud(&self) -> u32 {
        match (self.baud, self.device) {
            (0, DeviceKind::Pro) => 57_600,
            (0, DeviceKind::Open) => 250_000,
            (b, _) => b,
        }
    }

    fn period(&self) -> Duration {
        Duration::from_secs(1) / self.refresh.max(1)
    }
}

/// The DMX bridge.
pub struct DmxBridge {
    config: Arc<DmxConfig>,
}

impl DmxBridge {
    /// Checks the settings.
    pub fn new(config: DmxConfig) -> Result<Self, BridgeError> {
        if config.port.trim().is_empty() {
            return Err(BridgeError::config("port", "no serial device given"));
        }
        if !(1..=1000).contains(&config.refresh) {
            return Err(BridgeError::config(
                "refresh",
                format!("{} Hz: expected 1-1000", config.refresh),
            ));
        }
        if config.device == DeviceKind::Open && config.direction == Direction::Input {
            return Err(BridgeError::config(
                "direction",
                "an Open DMX interface cannot receive DMX (use --device pro)",
            ));
        }
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl Bridge for DmxBridge {
    fn kind(&self) -> &'static str {
        "dmx"
    }

    fn name(&self) -> String {
        format!("dmx:{}", self.config.namespace)
    }

    /// A USB interface may be unplugged at start: the relay serves its clients meanwhile.
    fn gates_readiness(&self) -> bool {
        false
    }

    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        let config = self.config.clone();
        Box::pin(async move { device::run(&config, link, stats).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        dmx: DmxConfig,
    }

    #[test]
    fn flags_and_defaults_agree() {
        let d = Cli::parse_from(["x"]).dmx;
        let def = DmxConfig::default();
        assert_eq!(
            (
                d.port,
                d.device,
                d.namespace,
                d.refresh,
                d.channels,
                d.direction,
                d.baud
            ),
            (
                def.port,
                def.device,
                def.namespace,
                def.refresh,
                def.channels,
                def.direction,
                def.baud
            )
        );
        assert_eq!(DmxConfig::default().baud(), 57_600);
        let c = Cli::parse_from(["x", "--device", "open", "--direction", "output"]).dmx;
        assert_eq!(c.baud(), 250_000);
        assert!(DmxBridge::new(c).is_ok());
    }

    #[test]
    fn channel_ranges() {
        assert_eq!(
            "24".parse::<Channels>().ok(),
            Some(Channels { first: 1, last: 24 })
        );
        assert_eq!(
            "10-20".parse::<Channels>().ok(),
            Some(Channels {
                first: 10,
                last: 20
            })
        );
        for bad in ["0", "513", "20-10", "x", "1-"] {
            assert!(bad.parse::<Channels>().is_err(), "{bad}");
        }
    }

    #[test]
    fn open_dmx_cannot_only_receive() {
        let c = DmxConfig {
            device: DeviceKind::Open,
            direction: Direction::Input,
            ..DmxConfig::default()
        };
        assert!(DmxBridge::new(c).is_err());
        let c = DmxConfig {
            refresh: 0,
            ..DmxConfig::default()
        };
        assert!(DmxBridge::new(c).is_err());
    }
}
