//! mDNS (DI-1) with the mdns-sd crate: the relay advertises `_clasp._tcp.local.` with a TXT
//! record describing it; clients browse for it.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};

use super::{DiscoveryError, Found, Source, FEATURE_LETTERS, SERVICE_TYPE};

/// What a relay says about itself in its TXT record.
#[derive(Debug, Clone)]
pub struct Advert {
    /// Relay name (also the instance name).
    pub name: String,
    /// The address the relay is bound to (`0.0.0.0`: every interface).
    pub host: String,
    /// WebSocket port.
    pub ws_port: u16,
    /// Whether HELLO needs a token.
    pub auth: bool,
    /// Whether the port speaks TLS (`wss://`).
    pub tls: bool,
}

impl Advert {
    /// TXT keys: `version` (2, the TXT format of FEATURES DI-1), `name`, `ws`, `auth`
    /// (0/1), `tls` (0/1), `features` (letters p,e,s,t,g), `relay` (software version).
    pub fn txt(&self) -> Vec<(String, String)> {
        vec![
            ("version".into(), "2".into()),
            ("name".into(), self.name.clone()),
            ("ws".into(), self.ws_port.to_string()),
            ("auth".into(), u8::from(self.auth).to_string()),
            ("tls".into(), u8::from(self.tls).to_string()),
            ("features".into(), FEATURE_LETTERS.into()),
            ("relay".into(), env!("CARGO_PKG_VERSION").into()),
        ]
    }
}

/// Restricts a daemon to the interface a relay is bound to: a relay on 127.0.0.1 is
/// advertised on loopback only, one on a given address only there, one on 0.0.0.0 (or
/// `::`) everywhere.
fn limit_interfaces(daemon: &ServiceDaemon, bound: Option<IpAddr>) -> Result<(), DiscoveryError> {
    let Some(ip) = bound.filter(|ip| !ip.is_unspecified()) else {
        return Ok(());
    };
    daemon.disable_interface(IfKind::All)?;
    let kind = match ip {
        IpAddr::V4(v4) if v4.is_loopback() => IfKind::LoopbackV4,
        IpAddr::V6(v6) if v6.is_loopback() => IfKind::LoopbackV6,
        other => IfKind::Addr(other),
    };
    daemon.enable_interface(kind)?;
    Ok(())
}

/// A host name for the A records: the relay's name made DNS-safe, plus its port, so two
/// relays on one machine (or in two namespaces of one machine) never claim the same one.
fn host_name(name: &str, port: u16) -> String {
    let mut label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if label.trim_matches('-').is_empty() {
        label = "clasp".into();
    }
    format!("{label}-{port}.local.")
}

/// The instance label: the name cut to DNS's 63-byte label limit at a character boundary
/// (the TXT `name` keeps it whole, and browsers read that first).
fn instance_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if out.len() + c.len_utf8() > 63 {
            break;
        }
        out.push(c);
    }
    out
}

/// Starts advertising; the returned daemon keeps answering until it is shut down.
pub fn advertise(advert: &Advert) -> Result<(ServiceDaemon, String), DiscoveryError> {
    let daemon = ServiceDaemon::new()?;
    let bound: Option<IpAddr> = if advert.host.eq_ignore_ascii_case("localhost") {
        Some(IpAddr::from([127, 0, 0, 1]))
    } else {
        advert.host.parse().ok()
    };
    limit_interfaces(&daemon, bound)?;
    let txt = advert.txt();
    let host = host_name(&advert.name, advert.ws_port);
    let instance = instance_name(&advert.name);
    let info = match bound.filter(|ip| !ip.is_unspecified()) {
        Some(ip) => ServiceInfo::new(
            SERVICE_TYPE,
            &instance,
            &host,
            ip,
            advert.ws_port,
            txt.as_slice(),
        )?,
        None => ServiceInfo::new(
            SERVICE_TYPE,
            &instance,
            &host,
            (),
            advert.ws_port,
            txt.as_slice(),
        )?
        .enable_addr_auto(),
    };
    let fullname = info.get_fullname().to_string();
    daemon.register(info)?;
    tracing::info!(service = %fullname, port = advert.ws_port, "mdns: advertising");
    Ok((daemon, fullname))
}

/// Browses for relays for up to `timeout` (returning early once one called `stop_at` is
/// resolved). `interface` limits the browse to the interface with that address.
pub fn browse(
    timeout: Duration,
    interface: Option<IpAddr>,
    stop_at: Option<&str>,
) -> Result<Vec<Found>, DiscoveryError> {
    let daemon = ServiceDaemon::new()?;
    let result = browse_with(&daemon, timeout, interface, stop_at);
    // The daemon's thread ends on shutdown; its status receiver is not needed.
    let _ = daemon.shutdown();
    result
}

fn browse_with(
    daemon: &ServiceDaemon,
    timeout: Duration,
    interface: Option<IpAddr>,
    stop_at: Option<&str>,
) -> Result<Vec<Found>, DiscoveryError> {
    limit_interfaces(daemon, interface)?;
    if !interface.is_some_and(|ip| ip.is_ipv6()) {
        // URLs are built from IPv4 addresses; browsing over IPv6 too can resolve a relay
        // with only its link-local IPv6 address first, which no URL can use.
        daemon.disable_interface(IfKind::IPv6)?;
    }
    let events = daemon.browse(SERVICE_TYPE)?;
    let deadline = Instant::now() + timeout;
    let mut found = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Ok(event) = events.recv_timeout(left) else {
            break;
        };
        if let ServiceEvent::ServiceResolved(service) = event {
            let Some(relay) = from_resolved(&service) else {
                continue;
            };
            let hit = stop_at.is_some_and(|n| n == relay.name);
            if !found.contains(&relay) {
                found.push(relay);
            }
            if hit {
                break;
            }
        }
    }
    let _ = daemon.stop_browse(SERVICE_TYPE);
    Ok(found)
}

/// What a [`Listener`] reports (DI-5's DiscoveryListener, for mDNS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerEvent {
    /// A relay appeared (or its address changed).
    Found(Found),
    /// A relay said goodbye or its record expired; the instance name.
    Lost(String),
}

/// Keeps browsing mDNS and reports relays as they come and go, until dropped.
pub struct Listener {
    daemon: ServiceDaemon,
    events: mdns_sd::Receiver<ServiceEvent>,
}

impl Listener {
    /// Starts browsing (on the interface with address `interface`, or everywhere).
    pub fn start(interface: Option<IpAddr>) -> Result<Self, DiscoveryError> {
        let daemon = ServiceDaemon::new()?;
        limit_interfaces(&daemon, interface)?;
        if !interface.is_some_and(|ip| ip.is_ipv6()) {
            daemon.disable_interface(IfKind::IPv6)?;
        }
        let events = daemon.browse(SERVICE_TYPE)?;
        Ok(Self { daemon, events })
    }

    /// The next event within `timeout` (`None`: nothing happened). Blocking.
    pub fn next(&self, timeout: Duration) -> Option<ListenerEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left).ok()? {
                ServiceEvent::ServiceResolved(service) => {
                    if let Some(found) = from_resolved(&service) {
                        return Some(ListenerEvent::Found(found));
                    }
                }
                ServiceEvent::ServiceRemoved(_, fullname) => {
                    return Some(ListenerEvent::Lost(instance_of(&fullname)));
                }
                _ => {}
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// The instance part of a full service name, unescaped.
fn instance_of(fullname: &str) -> String {
    fullname
        .strip_suffix(&format!(".{SERVICE_TYPE}"))
        .unwrap_or(fullname)
        .replace("\\.", ".")
        .replace("\\\\", "\\")
}

/// A resolved service as a relay: the TXT `name` (else the instance name), and a URL on
/// its first IPv4 address (else IPv6) with the TXT `ws` port (else the SRV port).
fn from_resolved(service: &mdns_sd::ResolvedService) -> Option<Found> {
    let name = service
        .get_property_val_str("name")
        .map(str::to_string)
        .unwrap_or_else(|| instance_of(&service.fullname));
    let port = service
        .get_property_val_str("ws")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(service.port);
    let mut v4: Vec<_> = service.get_addresses_v4().into_iter().collect();
    v4.sort();
    // IPv4 first; an IPv6 address only if it is routable (a link-local one needs a scope
    // id that a URL cannot carry). A service with neither is skipped: a later answer with
    // more addresses resolves it again.
    let host = match v4.first() {
        Some(ip) => ip.to_string(),
        None => {
            let v6 = service
                .addresses
                .iter()
                .map(|a| a.to_ip_addr())
                .filter(|ip| match ip {
                    IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
                    IpAddr::V4(_) => true,
                })
                .min()?;
            format!("[{v6}]")
        }
    };
    let scheme = if service.get_property_val_str("tls") == Some("1") {
        "wss"
    } else {
        "ws"
    };
    Some(Found {
        name,
        url: format!("{scheme}://{host}:{port}"),
        source: Source::Mdns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_dns_safe_and_unique_per_port() {
        assert_eq!(host_name("CLASP Relay", 7330), "clasp-relay-7330.local.");
        assert_eq!(host_name("ÿ", 1), "clasp-1.local.");
    }

    #[test]
    fn long_names_fit_a_dns_label() {
        let long = "é".repeat(40);
        let cut = instance_name(&long);
        assert!(cut.len() <= 63 && long.starts_with(&cut), "{cut}");
        assert_eq!(instance_name("Stage Left"), "Stage Left");
    }
}
