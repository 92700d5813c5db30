//! The Art-Net socket loop: one UDP socket receives ArtDmx and ArtPoll and sends ArtDmx
//! and ArtPollReply, as Art-Net nodes do on port 6454.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clasp_actors::client::ClientError;
use clasp_actors::link::RouterLink;
use futures_util::StreamExt;
use tokio::net::UdpSocket;

use super::packet::{self, NodeInfo, Received};
use super::ArtnetConfig;
use crate::dmx_universe::core::DmxCore;
use crate::dmx_universe::dest;
use crate::dmx_universe::merge::{self, Frame};
use crate::{BridgeError, BridgeStats};

/// Largest UDP payload read.
const MAX_DATAGRAM: usize = 2048;
/// How often silent sources are dropped from the merge.
const EXPIRE_EVERY: Duration = Duration::from_millis(100);
/// Art-Net sources all have one priority.
const PRIORITY: u8 = 100;
/// Most universes listed in ArtPollReplies.
const MAX_LISTED: usize = 256;

/// Serves Art-Net until the socket or the router link fails.
pub async fn run(
    config: &ArtnetConfig,
    link: RouterLink,
    stats: Arc<BridgeStats>,
) -> Result<(), BridgeError> {
    let bridge = stats.name.clone();
    let listen = config.listen_addr();
    let socket = UdpSocket::bind(&listen)
        .await
        .map_err(|e| BridgeError::io(format!("bind UDP {listen}"), e))?;
    socket
        .set_broadcast(true)
        .map_err(|e| BridgeError::io(format!("broadcast on UDP {listen}"), e))?;
    let local = socket
        .local_addr()
        .map_err(|e| BridgeError::io(format!("UDP {listen}"), e))?;
    let dests = if config.dest.is_empty() {
        dest::resolve(
            std::slice::from_ref(&config.broadcast),
            packet::ARTNET_PORT,
            local.is_ipv4(),
        )
        .await?
    } else {
        dest::resolve(&config.dest, packet::ARTNET_PORT, local.is_ipv4()).await?
    };
    let mut core: DmxCore<SocketAddr> = DmxCore::new(link, stats, config.settings());
    let mut updates = core.subscribe().await?;
    core.stats().set_up(true);
    tracing::info!(bridge, %listen, ?dests, universes = %config.universes, "Art-Net bridge listening");

    let mut sender = Sender {
        socket: &socket,
        dests,
        sequence: HashMap::new(),
        own: HashMap::new(),
        local_port: local.port(),
    };
    let mut replies = 0u32;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut expire = tokio::time::interval(EXPIRE_EVERY);
    let far = Duration::from_secs(3600);
    loop {
        let next = core.out.next_due().unwrap_or_else(|| Instant::now() + far);
        tokio::select! {
            biased;
            Some(result) = core.inflight.next(), if !core.inflight.is_empty() => {
                core.settle(result)?;
            }
            update = updates.next() => {
                let Some(update) = update else {
                    return Err(BridgeError::Link(ClientError::Closed));
                };
                if core.outbound(&update).is_some() {
                    sender.flush(&mut core, Instant::now()).await;
                }
            }
            received = socket.recv_from(&mut buf), if core.has_room() => {
                let (n, from) = match received {
                    Ok(r) => r,
                    // ICMP "port unreachable" for an earlier send, reported on some systems.
                    Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused) => continue,
                    Err(e) => return Err(BridgeError::io(format!("receive on UDP {listen}"), e)),
                };
                match packet::decode(buf.get(..n).unwrap_or_default()) {
                    Ok(Received::Dmx { universe, sequence, data }) => {
                        if sender.is_own(from, universe, sequence, &data) {
                            continue;
                        }
                        let seq = (sequence != 0).then_some(sequence);
                        let got = core.frame(universe, &from, PRIORITY, seq, &data, Instant::now());
                        if got == merge::Received::TooManySources {
                            core.bad_input(&from.to_string(), &"too many sources for one universe");
                        }
                    }
                    Ok(Received::Poll) => {
                        replies = replies.wrapping_add(1);
                        let node = NodeInfo {
                            address: node_address(local.ip(), from),
                            short_name: config.short_name.clone(),
                            long_name: config.long_name.clone(),
                            replies,
                        };
                        let listed = listed_universes(config, &core);
                        for reply in packet::poll_replies(&node, &listed) {
                            if let Err(e) = socket.send_to(&reply, from).await {
                                tracing::debug!(bridge, %from, error = %e, "ArtPollReply not sent");
                            }
                        }
                    }
                    Ok(Received::Other) => {}
                    Err(e) => core.bad_input(&from.to_string(), &e),
                }
            }
            _ = tokio::time::sleep_until(next.into()) => {
                sender.flush(&mut core, Instant::now()).await;
            }
            _ = expire.tick() => core.expire(Instant::now()),
        }
    }
}

/// The universes an ArtPollReply lists: those configured (the first 256).
fn listed_universes(config: &ArtnetConfig, core: &DmxCore<SocketAddr>) -> Vec<u16> {
    let mut listed: Vec<u16> = (0..=packet::MAX_UNIVERSE)
        .filter(|u| core.handles(*u))
        .take(MAX_LISTED)
        .collect();
    listed.extend(
        core.out
            .universes()
            .filter(|u| config.universes.contains(*u)),
    );
    listed.sort_unstable();
    listed.dedup();
    listed.truncate(MAX_LISTED);
    listed
}

/// Our IPv4 address as `peer` sees it: the bound one, or the one the kernel routes from.
fn node_address(bound: IpAddr, peer: SocketAddr) -> Ipv4Addr {
    if let IpAddr::V4(v4) = bound {
        if !v4.is_unspecified() {
            return v4;
        }
    }
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect(peer)?;
            s.local_addr()
        })
        .ok()
        .and_then(|a| match a.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .unwrap_or(Ipv4Addr::UNSPECIFIED)
}

/// Sends due universes, with a sequence number per universe, and remembers the last frame
/// of each so our own broadcasts coming back are not taken as a source.
struct Sender<'a> {
    socket: &'a UdpSocket,
    dests: Vec<SocketAddr>,
    sequence: HashMap<u16, u8>,
    own: HashMap<u16, (u8, Frame)>,
    local_port: u16,
}

impl Sender<'_> {
    async fn flush(&mut self, core: &mut DmxCore<SocketAddr>, now: Instant) {
        for universe in core.out.due(now) {
            let Some(levels) = core.out.levels(universe).copied() else {
                continue;
            };
            // 1..=255: 0 would mean "not sequenced".
            let seq = self.sequence.entry(universe).or_insert(0);
            *seq = seq.wrapping_add(1).max(1);
            let seq = *seq;
            match packet::encode_dmx(universe, seq, &levels) {
                Ok(bytes) => {
                    for dest in &self.dests {
                        match self.socket.send_to(&bytes, dest).await {
                            Ok(_) => BridgeStats::bump(&core.stats().sent),
                            Err(e) => {
                                tracing::debug!(bridge = %core.stats().name, %dest, error = %e, "ArtDmx not sent")
                            }
                        }
                    }
                    self.own.insert(universe, (seq, levels));
                }
                Err(e) => {
                    tracing::warn!(bridge = %core.stats().name, universe, error = %e, "ArtDmx not encoded")
                }
            }
            core.out.sent(universe, now);
        }
    }

    /// Whether a received frame is one we sent (a broadcast heard by our own socket).
    fn is_own(&self, from: SocketAddr, universe: u16, seq: u8, data: &[u8]) -> bool {
        from.port() == self.local_port
            && self
                .own
                .get(&universe)
                .is_some_and(|(s, levels)| *s == seq && levels.get(..data.len()) == Some(data))
    }
}
