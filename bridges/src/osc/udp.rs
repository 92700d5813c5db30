//! OSC over UDP: one socket both receives and sends (peers see replies come from the port
//! they send to, as OSC devices expect).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::net::UdpSocket;

use super::core::Core;
use super::peers::Peers;
use super::OscConfig;
use crate::BridgeError;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;
/// How often silent peers are forgotten and unresolved targets looked up again.
const TICK: Duration = Duration::from_secs(1);
/// How long one target name lookup may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A `--send` target and its address once resolved.
struct Target {
    spec: String,
    addr: Option<SocketAddr>,
    next_try: Instant,
}

impl Target {
    /// Looks the target up, preferring an address the socket can send to (`localhost`
    /// may give `::1` first to an IPv4 socket).
    async fn resolve(&mut self, bridge: &str, ipv4: bool) {
        let found =
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(&self.spec)).await;
        match found {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                self.addr = addrs
                    .iter()
                    .find(|a| a.is_ipv4() == ipv4)
                    .or(addrs.first())
                    .copied();
            }
            Ok(Err(e)) => {
                tracing::warn!(bridge, target = %self.spec, error = %e, "cannot resolve OSC target; retrying in 30 s")
            }
            Err(_) => {
                tracing::warn!(bridge, target = %self.spec, "OSC target lookup timed out; retrying in 30 s")
            }
        }
        if self.addr.is_none() {
            self.next_try = Instant::now() + Duration::from_secs(30);
        }
    }
}

/// Serves OSC over UDP until the socket or the router link fails.
pub async fn run(config: &OscConfig, mut core: Core) -> Result<(), BridgeError> {
    let bridge = core.stats().name.clone();
    let listen = config.listen_addr();
    let socket = UdpSocket::bind(&listen)
        .await
        .map_err(|e| BridgeError::io(format!("bind UDP {listen}"), e))?;
    let mut updates = core.subscribe().await?;
    let mut targets: Vec<Target> = config
        .send
        .iter()
        .map(|spec| Target {
            spec: spec.clone(),
            addr: None,
            next_try: Instant::now(),
        })
        .collect();
    let ipv4 = socket
        .local_addr()
        .map_err(|e| BridgeError::io(format!("UDP {listen}"), e))?
        .is_ipv4();
    for t in &mut targets {
        t.resolve(&bridge, ipv4).await;
    }
    let mut peers = Peers::new(config.peer_timeout(), config.max_peers);
    core.stats().set_up(true);
    tracing::info!(bridge, %listen, targets = ?config.send, "OSC bridge listening (UDP)");

    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut tick = tokio::time::interval(TICK);
    let mut destinations: Vec<SocketAddr> = Vec::new();
    loop {
        tokio::select! {
            biased;
            Some(result) = core.inflight.next(), if !core.inflight.is_empty() => {
                core.settle(result)?;
            }
            update = updates.next() => {
                let Some(update) = update else {
                    return Err(BridgeError::Link(clasp_actors::client::ClientError::Closed));
                };
                let Some((packet, origin)) = core.outbound(&update) else { continue };
                destinations.clear();
                destinations.extend(targets.iter().filter_map(|t| t.addr));
                if config.reply {
                    destinations.extend(peers.iter());
                }
                destinations.sort_unstable();
                destinations.dedup();
                for dest in destinations.iter().filter(|d| Some(**d) != origin) {
                    match socket.send_to(&packet, dest).await {
                        Ok(_) => crate::BridgeStats::bump(&core.stats().sent),
                        Err(e) => tracing::debug!(bridge, %dest, error = %e, "OSC send failed"),
                    }
                }
            }
            received = socket.recv_from(&mut buf), if core.has_room() => {
                match received {
                    Ok((n, from)) => {
                        let ok = core.inbound(from, buf.get(..n).unwrap_or_default());
                        if ok && config.reply {
                            peers.heard(from, Instant::now());
                        }
                    }
                    // ICMP "port unreachable" for an earlier send, reported on some systems.
                    Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused) => {}
                    Err(e) => return Err(BridgeError::io(format!("receive on UDP {listen}"), e)),
                }
            }
            _ = tick.tick() => {
                peers.expire(Instant::now());
                for t in targets.iter_mut().filter(|t| t.addr.is_none() && t.next_try <= Instant::now()) {
                    t.resolve(&bridge, ipv4).await;
                }
            }
        }
    }
}
