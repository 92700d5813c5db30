//! The sACN socket loop: one UDP socket joined to each universe's multicast group receives
//! data packets (multicast and unicast) and sends ours, unicast or multicast.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clasp_actors::client::ClientError;
use clasp_actors::link::RouterLink;
use futures_util::StreamExt;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::packet::{self, Received, SourceInfo};
use super::SacnConfig;
use crate::dmx_universe::core::DmxCore;
use crate::dmx_universe::dest;
use crate::dmx_universe::merge;
use crate::{BridgeError, BridgeStats};

/// Largest UDP payload read (a full data packet is 638 bytes).
const MAX_DATAGRAM: usize = 2048;
/// How often silent sources are dropped from the merge.
const EXPIRE_EVERY: Duration = Duration::from_millis(100);
/// Multicast groups joined at most (the kernel's default limit is 20 per socket).
const MAX_GROUPS: usize = 256;
/// Stream-terminated packets sent per universe when the bridge stops (E1.31 6.2.6).
const TERMINATE_COUNT: usize = 3;

/// The socket: reusable address (other sACN software on the host may listen too),
/// multicast sent on the chosen interface and looped back to local receivers.
fn open(config: &SacnConfig, mcast_if: Ipv4Addr) -> Result<std::net::UdpSocket, BridgeError> {
    let listen = format!("{}:{}", config.interface, config.port);
    let io = |what: &str| {
        let listen = listen.clone();
        let what = what.to_string();
        move |e| BridgeError::io(format!("{what} UDP {listen}"), e)
    };
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| BridgeError::config("interface", format!("{listen}: {e}")))?;
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(io("open"))?;
    socket.set_reuse_address(true).map_err(io("reuse"))?;
    socket.set_nonblocking(true).map_err(io("non-blocking"))?;
    socket.bind(&addr.into()).map_err(io("bind"))?;
    socket
        .set_multicast_loop_v4(true)
        .map_err(io("multicast loop on"))?;
    socket
        .set_multicast_if_v4(&mcast_if)
        .map_err(io("multicast interface on"))?;
    socket
        .set_multicast_ttl_v4(8)
        .map_err(io("multicast TTL on"))?;
    Ok(socket.into())
}

/// Serves sACN until the socket or the router link fails.
pub async fn run(
    config: &SacnConfig,
    source: SourceInfo,
    link: RouterLink,
    stats: Arc<BridgeStats>,
) -> Result<(), BridgeError> {
    let bridge = stats.name.clone();
    let mcast_if: Ipv4Addr = config
        .multicast_interface
        .parse()
        .map_err(|e| BridgeError::config("multicast-interface", format!("{e}")))?;
    let std_socket = open(config, mcast_if)?;
    let spare = std_socket
        .try_clone()
        .map_err(|e| BridgeError::io("clone the sACN socket", e))?;
    let socket = UdpSocket::from_std(std_socket)
        .map_err(|e| BridgeError::io("register the sACN socket", e))?;
    let dests = dest::resolve(&config.dest, packet::SACN_PORT, true).await?;

    let mut joined = Vec::new();
    let mut failed = 0usize;
    for universe in (packet::MIN_UNIVERSE..=packet::MAX_UNIVERSE)
        .filter(|u| config.universes.contains(*u))
        .take(MAX_GROUPS)
    {
        let group = packet::multicast_group(universe);
        match socket.join_multicast_v4(group, mcast_if) {
            Ok(()) => joined.push(group),
            Err(e) => {
                if failed == 0 {
                    tracing::warn!(bridge, %group, error = %e, "cannot join the sACN multicast group; unicast still works");
                }
                failed += 1;
            }
        }
    }
    let mut core: DmxCore<[u8; 16]> = DmxCore::new(link, stats, config.settings());
    let mut updates = core.subscribe().await?;
    core.stats().set_up(true);
    tracing::info!(bridge, port = config.port, interface = %config.interface, groups = joined.len(),
        failed_groups = failed, ?dests, universes = %config.universes, "sACN bridge listening");

    let mut sender = Sender {
        spare,
        joined,
        mcast_if,
        dests,
        source,
        sequence: HashMap::new(),
        bridge: bridge.clone(),
    };
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
                    sender.flush(&socket, &mut core, Instant::now()).await;
                }
            }
            received = socket.recv_from(&mut buf), if core.has_room() => {
                let (n, from) = match received {
                    Ok(r) => r,
                    Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused) => continue,
                    Err(e) => return Err(BridgeError::io(format!("receive on UDP {}", config.port), e)),
                };
                match packet::decode(buf.get(..n).unwrap_or_default()) {
                    Ok(Received::Data(frame)) if frame.cid == sender.source.cid => {}
                    Ok(Received::Data(frame)) => {
                        if frame.terminated {
                            core.terminated(frame.universe, &frame.cid);
                            continue;
                        }
                        let got = core.frame(frame.universe, &frame.cid, frame.priority,
                            Some(frame.sequence), &frame.levels, Instant::now());
                        if got == merge::Received::TooManySources {
                            core.bad_input(&from.to_string(), &"too many sources for one universe");
                        }
                    }
                    Ok(Received::Other) => {}
                    Err(e) => core.bad_input(&from.to_string(), &e),
                }
            }
            _ = tokio::time::sleep_until(next.into()) => {
                sender.flush(&socket, &mut core, Instant::now()).await;
            }
            _ = expire.tick() => core.expire(Instant::now()),
        }
    }
}

/// Sends due universes with a sequence number each; when dropped (the bridge stops or
/// restarts) it terminates every stream it sent and leaves the multicast groups.
struct Sender {
    /// The same socket, usable without the runtime (in `drop`).
    spare: std::net::UdpSocket,
    joined: Vec<Ipv4Addr>,
    mcast_if: Ipv4Addr,
    dests: Vec<SocketAddr>,
    source: SourceInfo,
    sequence: HashMap<u16, u8>,
    bridge: String,
}

impl Sender {
    fn targets(&self, universe: u16) -> Vec<SocketAddr> {
        if self.dests.is_empty() {
            vec![SocketAddr::V4(SocketAddrV4::new(
                packet::multicast_group(universe),
                packet::SACN_PORT,
            ))]
        } else {
            self.dests.clone()
        }
    }

    fn next_sequence(&mut self, universe: u16) -> u8 {
        let seq = self.sequence.entry(universe).or_insert(0);
        let now = *seq;
        *seq = seq.wrapping_add(1);
        now
    }

    async fn flush(&mut self, socket: &UdpSocket, core: &mut DmxCore<[u8; 16]>, now: Instant) {
        for universe in core.out.due(now) {
            let Some(levels) = core.out.levels(universe).copied() else {
                continue;
            };
            let seq = self.next_sequence(universe);
            match packet::encode(&self.source, universe, seq, false, &levels) {
                Ok(bytes) => {
                    for dest in self.targets(universe) {
                        match socket.send_to(&bytes, dest).await {
                            Ok(_) => BridgeStats::bump(&core.stats().sent),
                            Err(e) => {
                                tracing::debug!(bridge = %self.bridge, %dest, error = %e, "sACN packet not sent")
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(bridge = %self.bridge, universe, error = %e, "sACN packet not encoded")
                }
            }
            core.out.sent(universe, now);
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let universes: Vec<u16> = self.sequence.keys().copied().collect();
        for universe in universes {
            for _ in 0..TERMINATE_COUNT {
                let seq = self.next_sequence(universe);
                let Ok(bytes) = packet::encode(&self.source, universe, seq, true, &[0; 512]) else {
                    continue;
                };
                for dest in self.targets(universe) {
                    let _ = self.spare.send_to(&bytes, dest);
                }
            }
        }
        for group in &self.joined {
            let _ = self.spare.leave_multicast_v4(group, &self.mcast_if);
        }
    }
}
