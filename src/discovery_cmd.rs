//! Discovery on the command line: the `clasp relay` flags that make a relay findable, and
//! `clasp discover`, which lists the relays that mDNS, broadcast and rendezvous find
//! (docs/discovery.md).

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;
use clasp_actors::discovery::register::RegisterConfig;
use clasp_actors::discovery::rendezvous::RendezvousConfig;
use clasp_actors::discovery::{DiscoverOptions, DiscoveryConfig};

/// `clasp relay` discovery flags (FEATURES DI-1..4).
#[derive(Debug, Clone, Args)]
pub struct DiscoveryArgs {
    /// Do not advertise the relay by mDNS (_clasp._tcp.local.).
    #[arg(long)]
    pub no_mdns: bool,
    /// UDP port where the relay answers broadcast HELLOs with a WELCOME (0 = off).
    #[arg(long, default_value_t = clasp_actors::discovery::DEFAULT_BROADCAST_PORT)]
    pub broadcast_port: u16,
    /// Serve the rendezvous registry (HTTP) on this port, e.g. 7340 (0 = off).
    #[arg(long, default_value_t = 0)]
    pub rendezvous_port: u16,
    /// Seconds a rendezvous entry lives without a refresh.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub rendezvous_ttl: u64,
    /// Most entries the rendezvous registry holds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub rendezvous_max: u64,
    /// Most rendezvous entries one client address may register (0 = no limit).
    #[arg(long, default_value_t = 10)]
    pub rendezvous_max_per_ip: usize,
    /// Register this relay with the rendezvous service at this URL (http://host:7340).
    #[arg(long, value_name = "URL")]
    pub rendezvous_url: Option<String>,
    /// Seconds between refreshes of the registration (keep it below the service's TTL).
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub rendezvous_refresh: u64,
    /// Tag to register with (repeatable).
    #[arg(long = "rendezvous-tag", value_name = "TAG")]
    pub rendezvous_tags: Vec<String>,
    /// WebSocket URL to register (default: ws://<this host's address toward the service>:<ws port>).
    #[arg(long, value_name = "URL")]
    pub rendezvous_advertise_url: Option<String>,
}

impl DiscoveryArgs {
    /// The relay's discovery settings.
    pub fn into_config(self) -> anyhow::Result<DiscoveryConfig> {
        if let Some(url) = &self.rendezvous_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                anyhow::bail!("--rendezvous-url {url:?}: expected http://host:port");
            }
        }
        Ok(DiscoveryConfig {
            mdns: !self.no_mdns,
            broadcast_port: (self.broadcast_port > 0).then_some(self.broadcast_port),
            rendezvous: (self.rendezvous_port > 0).then(|| RendezvousConfig {
                port: self.rendezvous_port,
                ttl: Duration::from_secs(self.rendezvous_ttl),
                max_entries: usize::try_from(self.rendezvous_max).unwrap_or(usize::MAX),
                max_per_ip: self.rendezvous_max_per_ip,
            }),
            register: self.rendezvous_url.map(|url| RegisterConfig {
                url,
                refresh: Duration::from_secs(self.rendezvous_refresh),
                tags: self.rendezvous_tags,
                advertise_url: self.rendezvous_advertise_url,
            }),
        })
    }
}

/// `clasp discover` flags. The global `--timeout` (seconds) bounds each source.
#[derive(Debug, Clone, Args)]
pub struct DiscoverArgs {
    /// One JSON array of {name, url, source} instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Do not browse mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Browse mDNS only on the interface with this address (default: every interface).
    #[arg(long, value_name = "ADDR")]
    pub interface: Option<IpAddr>,
    /// Do not send a broadcast HELLO.
    #[arg(long)]
    pub no_broadcast: bool,
    /// Where the broadcast HELLO goes (a subnet's broadcast address, or a relay's address).
    #[arg(long, value_name = "ADDR", default_value = "255.255.255.255")]
    pub broadcast_to: IpAddr,
    /// The responders' UDP port.
    #[arg(long, default_value_t = clasp_actors::discovery::DEFAULT_BROADCAST_PORT)]
    pub broadcast_port: u16,
    /// Also ask this rendezvous service (http://host:7340; repeatable).
    #[arg(long = "rendezvous", value_name = "URL")]
    pub rendezvous: Vec<String>,
    /// Only rendezvous entries with this tag.
    #[arg(long)]
    pub tag: Option<String>,
}

impl DiscoverArgs {
    /// The options the SDK's `discover` takes.
    pub fn options(&self, timeout: Duration) -> DiscoverOptions {
        DiscoverOptions {
            timeout,
            mdns: !self.no_mdns,
            mdns_interface: self.interface,
            broadcast_to: (!self.no_broadcast).then_some(self.broadcast_to),
            broadcast_port: self.broadcast_port,
            rendezvous: self.rendezvous.clone(),
            tag: self.tag.clone(),
        }
    }
}

/// Runs `clasp discover`: prints each relay found (`NAME<TAB>URL<TAB>SOURCE`, or JSON) and
/// each failing source on stderr. Exits 1 when nothing was found.
pub fn run(args: DiscoverArgs, timeout: Duration) -> anyhow::Result<i32> {
    let (found, errors) = clasp_actors::discovery::discover(&args.options(timeout));
    for e in &errors {
        eprintln!("clasp discover: {e}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&found)?);
    } else {
        for f in &found {
            println!("{}\t{}\t{}", f.name, f.url, f.source);
        }
        if found.is_empty() {
            eprintln!("clasp discover: no relay found within {timeout:?}");
        }
    }
    Ok(if found.is_empty() { 1 } else { 0 })
}
