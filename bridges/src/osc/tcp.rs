//! OSC over TCP with SLIP framing (OSC 1.1): the bridge accepts peers on its port and
//! connects out to each `--send` target (reconnecting with backoff). Both kinds of stream
//! carry packets both ways; each stream is one peer for replies and echo suppression.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::core::Core;
use super::slip::{self, Frame};
use super::OscConfig;
use crate::{BridgeError, BridgeStats};

/// Largest packet accepted in one SLIP frame.
const MAX_FRAME: usize = 65_536;
/// Outbound packets queued per stream; a peer that does not read loses the newest.
const QUEUE: usize = 1024;
/// Reconnect delays of a target: doubling up to the maximum.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// A framed packet, and the peer it came from (which must not get it back).
type Packet = (Arc<Vec<u8>>, Option<SocketAddr>);

/// What stream tasks tell the bridge loop.
enum Event {
    Packet(SocketAddr, Vec<u8>),
    Bad(SocketAddr, &'static str),
    Closed(SocketAddr),
}

/// Serves OSC over TCP until the listener or the router link fails.
pub async fn run(config: &OscConfig, mut core: Core) -> Result<(), BridgeError> {
    let bridge = core.stats().name.clone();
    let listen = config.listen_addr();
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| BridgeError::io(format!("bind TCP {listen}"), e))?;
    let mut updates = core.subscribe().await?;
    let (events_tx, mut events) = mpsc::channel::<Event>(QUEUE);
    // Dropping the set (the run ends) aborts every stream task.
    let mut tasks = JoinSet::new();
    let mut targets: Vec<mpsc::Sender<Packet>> = Vec::new();
    for spec in &config.send {
        let (tx, rx) = mpsc::channel(QUEUE);
        targets.push(tx);
        tasks.spawn_local(target(spec.clone(), bridge.clone(), rx, events_tx.clone()));
    }
    let mut peers: HashMap<SocketAddr, mpsc::Sender<Packet>> = HashMap::new();
    core.stats().set_up(true);
    tracing::info!(bridge, %listen, targets = ?config.send, "OSC bridge listening (TCP, SLIP)");

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
                let framed = Arc::new(slip::encode(&packet));
                let to_peers = peers
                    .iter()
                    .filter(|(addr, _)| config.reply && Some(**addr) != origin)
                    .map(|(_, tx)| tx);
                // A target's stream is a peer too: its task skips the values that came from it.
                for tx in to_peers.chain(targets.iter()) {
                    if tx.try_send((framed.clone(), origin)).is_ok() {
                        BridgeStats::bump(&core.stats().sent);
                    }
                }
            }
            accepted = listener.accept() => {
                let (stream, addr) = accepted
                    .map_err(|e| BridgeError::io(format!("accept on TCP {listen}"), e))?;
                if peers.len() >= config.max_peers {
                    tracing::warn!(bridge, peer = %addr, max = config.max_peers, "too many OSC TCP peers; connection refused");
                    continue;
                }
                let (tx, mut rx) = mpsc::channel(QUEUE);
                peers.insert(addr, tx);
                let events = events_tx.clone();
                tasks.spawn_local(async move {
                    serve(stream, addr, &mut rx, &events).await;
                    let _ = events.send(Event::Closed(addr)).await;
                });
            }
            event = events.recv(), if core.has_room() => {
                match event {
                    Some(Event::Packet(addr, bytes)) => { core.inbound(addr, &bytes); }
                    Some(Event::Bad(addr, why)) => core.bad_input(addr, &why),
                    Some(Event::Closed(addr)) => { peers.remove(&addr); }
                    None => {}
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Carries one stream until it closes: frames in become events, packets queued in `out`
/// are written.
async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    out: &mut mpsc::Receiver<Packet>,
    events: &mpsc::Sender<Event>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let read = async {
        let mut decoder = slip::Decoder::new(MAX_FRAME);
        let mut buf = vec![0u8; 16_384];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            for frame in decoder.push(buf.get(..n).unwrap_or_default()) {
                let event = match frame {
                    Frame::Packet(p) => Event::Packet(addr, p),
                    Frame::Bad(why) => Event::Bad(addr, why),
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    };
    let write = async {
        while let Some((packet, origin)) = out.recv().await {
            if origin == Some(addr) {
                continue;
            }
            if writer.write_all(&packet).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = read => {}
        _ = write => {}
    }
}

/// Keeps a connection to one `--send` target, reconnecting with backoff; packets queued
/// while it is down are dropped.
async fn target(
    spec: String,
    bridge: String,
    mut out: mpsc::Receiver<Packet>,
    events: mpsc::Sender<Event>,
) {
    let mut delay = FIRST_RETRY;
    loop {
        match TcpStream::connect(&spec).await {
            Ok(stream) => {
                let addr = stream
                    .peer_addr()
                    .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                tracing::info!(bridge, target = %spec, "connected to OSC TCP target");
                delay = FIRST_RETRY;
                serve(stream, addr, &mut out, &events).await;
                tracing::info!(bridge, target = %spec, "OSC TCP target disconnected");
            }
            Err(e) => {
                tracing::debug!(bridge, target = %spec, error = %e, ?delay, "cannot connect to OSC TCP target")
            }
        }
        let until = tokio::time::Instant::now() + delay;
        // Drain (drop) what is queued while the target is unreachable.
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                packet = out.recv() => if packet.is_none() { return },
            }
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
}
