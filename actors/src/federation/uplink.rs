//! The leaf end: dial the hubs in turn, run a [`FederationPeer`] over each connection, and
//! when it ends try the next hub; after a full round of failures wait, doubling from 1 s to
//! 30 s. The link keeps one entry (and its counters) across reconnects.

use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use clasp_proto::{decode_frame, FeatureSet};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;

use super::peer::{CloseLink, FederationPeer, FromRemote, Wire};
use super::registry::{LinkState, Role};
use crate::client::{Client, ClientError};
use crate::router::Router;

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Frames queued towards a hub before the link counts as fallen behind.
const SEND_QUEUE: usize = 65_536;
/// HELLO features of a federation peer (param, event, stream, federation: 0xE4).
const FEATURES: FeatureSet = FeatureSet(0xE4);

/// Starts dialling the configured hubs (nothing when there are none). Call inside the
/// relay's actix system.
pub fn start_uplink(router: &Router) {
    let fed = router.federation.clone();
    let hubs = fed.config().hubs.clone();
    if hubs.is_empty() {
        return;
    }
    let key = fed.open_link(Role::Uplink, &hubs[0]);
    let router = router.clone();
    actix_web::rt::spawn(async move {
        let mut backoff = BACKOFF_START;
        let mut turn = 0usize;
        loop {
            let url = &hubs[turn % hubs.len()];
            fed.update(key, |l| {
                l.url = url.clone();
                l.state = LinkState::Connecting;
            });
            match run_once(&router, key, url).await {
                Ok(()) => backoff = BACKOFF_START,
                Err(e) => {
                    tracing::warn!(hub = %url, error = %e, "federation uplink failed");
                    let text = e.to_string();
                    fed.update(key, |l| {
                        l.state = LinkState::Down;
                        l.last_error = Some(text);
                    });
                }
            }
            turn += 1;
            // Straight on to the next hub; after a full round, back off.
            if turn % hubs.len() == 0 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    });
}

/// One connection: HELLO, then frames both ways until either side ends.
async fn run_once(router: &Router, key: super::LinkKey, url: &str) -> Result<(), ClientError> {
    let fed = &router.federation;
    let mut builder = Client::builder(url)
        .name(fed.id().to_string())
        .features(FEATURES);
    if let Some(token) = &fed.config().token {
        builder = builder.token(token.clone());
    }
    if let Some(ca) = &fed.config().ca_file {
        builder = builder.ca_file(ca.clone());
    }
    let shared = crate::client::Shared::default();
    let (socket, _session) = crate::client::connection::open(&builder, &shared).await?;
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(SEND_QUEUE);
    let peer = FederationPeer::new(
        router.clone(),
        key,
        Role::Uplink,
        Wire::Socket(tx),
        None,
        None,
    )
    .start();
    tracing::info!(hub = %url, "federation uplink connected");
    let mut failure = None;
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(f) => {
                    if let Err(e) = sink.send(Ws::Binary(f.to_vec())).await {
                        failure = Some(e.to_string());
                        break;
                    }
                }
                // The peer stopped (refused, fell behind): close the socket.
                None => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Ws::Binary(bytes))) => match decode_frame(&bytes) {
                    Ok(d) => peer.do_send(FromRemote(d.message)),
                    Err(e) => tracing::debug!(error = %e, "undecodable frame from hub"),
                },
                Some(Ok(Ws::Ping(p))) => {
                    let _ = sink.send(Ws::Pong(p)).await;
                }
                Some(Ok(Ws::Close(f))) => {
                    failure = Some(f.map_or_else(|| "hub closed the link".into(), |f| format!("hub closed the link: {}", f.reason)));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    failure = Some(e.to_string());
                    break;
                }
                None => {
                    failure = Some("hub closed the link".into());
                    break;
                }
            },
        }
    }
    let _ = sink.close().await;
    peer.do_send(CloseLink(failure.clone()));
    // Let the peer finish (answer pending writes with 502, mark the link down).
    for _ in 0..50 {
        if !peer.connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match failure {
        Some(reason) => Err(ClientError::Connect {
            url: url.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}
