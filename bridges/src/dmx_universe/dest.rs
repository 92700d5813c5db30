//! Outbound destinations and the checks both DMX-over-IP bridges make on their settings.

use std::net::SocketAddr;
use std::time::Duration;

use crate::BridgeError;

/// How long one destination lookup may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// `host` → `host:<port>`; `host:port`, `ip`, `[v6]:port` and `v6` made whole.
pub fn with_port(spec: &str, port: u16) -> String {
    if let Ok(addr) = spec.parse::<SocketAddr>() {
        return addr.to_string();
    }
    if let Ok(ip) = spec.parse::<std::net::IpAddr>() {
        return SocketAddr::new(ip, port).to_string();
    }
    match spec.rsplit_once(':') {
        Some(_) => spec.to_string(),
        None => format!("{spec}:{port}"),
    }
}

/// Whether `spec` (after [`with_port`]) is an address or `name:port` with a port above 0.
fn valid(spec: &str) -> bool {
    let full = with_port(spec, 1);
    if let Ok(addr) = full.parse::<SocketAddr>() {
        return addr.port() > 0;
    }
    full.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty() && !h.contains([':', '[', ']']) && matches!(p.parse::<u16>(), Ok(p) if p > 0)
    })
}

/// Checks the settings the Art-Net and sACN bridges share.
pub fn check_common(
    source_timeout: f64,
    refresh_rate: f64,
    dest: &[String],
) -> Result<(), BridgeError> {
    if !(source_timeout.is_finite() && (0.1..=3600.0).contains(&source_timeout)) {
        return Err(BridgeError::config(
            "source-timeout",
            format!("{source_timeout}: expected 0.1-3600 seconds"),
        ));
    }
    if !(refresh_rate.is_finite() && (1.0..=1000.0).contains(&refresh_rate)) {
        return Err(BridgeError::config(
            "refresh-rate",
            format!("{refresh_rate}: expected 1-1000 Hz"),
        ));
    }
    for d in dest {
        if !valid(d) {
            return Err(BridgeError::config(
                "dest",
                format!("{d:?}: expected host[:port]"),
            ));
        }
    }
    Ok(())
}

/// Resolves destinations (`host[:port]`, `default_port` when none), IPv4 first for an IPv4
/// socket. A name that does not resolve fails the run, which is retried with backoff.
pub async fn resolve(
    specs: &[String],
    default_port: u16,
    ipv4: bool,
) -> Result<Vec<SocketAddr>, BridgeError> {
    let mut out = Vec::new();
    for spec in specs {
        let full = with_port(spec, default_port);
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(&full))
            .await
            .map_err(|_| {
                BridgeError::io(
                    format!("resolve {full}"),
                    std::io::ErrorKind::TimedOut.into(),
                )
            })?
            .map_err(|e| BridgeError::io(format!("resolve {full}"), e))?;
        let addrs: Vec<SocketAddr> = found.collect();
        if let Some(a) = addrs.iter().find(|a| a.is_ipv4() == ipv4).or(addrs.first()) {
            out.push(*a);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_added_when_missing() {
        assert_eq!(with_port("10.0.0.2", 6454), "10.0.0.2:6454");
        assert_eq!(with_port("10.0.0.2:7000", 6454), "10.0.0.2:7000");
        assert_eq!(with_port("host", 5568), "host:5568");
        assert_eq!(with_port("[::1]:9", 5568), "[::1]:9");
        assert_eq!(with_port("::1", 5568), "[::1]:5568");
        assert!(check_common(4.0, 44.0, &["a".into(), "b:7".into()]).is_ok());
        for bad in ["", "b:0", ":7", "b:x", "1.2.3.4:0"] {
            assert!(check_common(4.0, 44.0, &[bad.into()]).is_err(), "{bad}");
        }
        assert!(check_common(0.0, 44.0, &[]).is_err());
        assert!(check_common(4.0, 0.0, &[]).is_err());
    }
}
