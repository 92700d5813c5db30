//! One MQTT client connection: CONNECT (version, auth, session), then packets in, routed
//! messages out, keep-alive, and the last will when it ends without DISCONNECT. Whatever the
//! client sends, only this connection is affected.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use clasp_actors::auth::{Action, Grant};
use clasp_actors::link::RouterLink;
use clasp_proto::SignalType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::broker::{Broker, Msg, SessionKey};
use super::codec::{self, ConnCode, ConnectInfo, DecodeError, In, Out, SubCode, Version};
use super::mapping;
use super::origin::{Origin, Origins};
use super::MqttServerConfig;
use crate::noise::BadInput;
use crate::BridgeStats;

/// What every connection shares.
pub struct Shared {
    /// Settings.
    pub config: Arc<MqttServerConfig>,
    /// The router.
    pub link: RouterLink,
    /// Counters.
    pub stats: Arc<BridgeStats>,
    /// Sessions and routing.
    pub broker: RefCell<Broker>,
    /// Rate-limited bad-input reports.
    pub bad: RefCell<BadInput>,
    /// Retained publishes on their way through the router, to recognise their echo.
    pub origins: RefCell<Origins>,
}

/// Why a connection ended.
enum End {
    /// DISCONNECT: no will (unless v5 asked for it).
    Graceful { with_will: bool },
    /// The broker closed it (reason code, why, publish the will).
    Kicked(u8, &'static str, bool),
    /// Socket closed or failed.
    Dropped,
    /// Bad input (reason code for v5).
    Bad(DecodeError),
    /// No packet for 1.5× keep-alive.
    KeepAlive,
}

struct Client {
    id: String,
    key: SessionKey,
    version: Version,
    grant: Option<Arc<Grant>>,
    peer: String,
    /// QoS 2 packet ids received and not yet released (duplicates are not routed twice).
    incoming_qos2: Vec<u16>,
    /// Its relay session slot, held while connected.
    _slot: clasp_actors::link::SessionSlot,
}

/// Serves one accepted socket until it closes.
pub async fn serve(stream: TcpStream, peer: SocketAddr, shared: Rc<Shared>) {
    let _ = stream.set_nodelay(true);
    let peer_name = peer.to_string();
    let (mut rd, mut wr) = stream.into_split();
    let max = shared.config.max_packet_size;
    let mut buf = BytesMut::with_capacity(4096);

    // CONNECT first, within the connect timeout.
    let deadline = Instant::now() + Duration::from_secs(shared.config.connect_timeout.max(1));
    let info = loop {
        match codec::decode_connect(&mut buf, max) {
            Ok(Some(info)) => break info,
            Ok(None) => {}
            Err(e) => {
                shared
                    .bad
                    .borrow_mut()
                    .report(&shared.stats, &peer_name, &e);
                if let DecodeError::UnsupportedVersion(_) = e {
                    let _ = write_out(
                        &mut wr,
                        Version::V4,
                        &connack(ConnCode::BadVersion, false, None, &shared),
                    )
                    .await;
                }
                return;
            }
        }
        match tokio::time::timeout_at(deadline, rd.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    };
    let Some((client, attached)) = admit(&shared, &info, &peer_name, &mut wr).await else {
        return;
    };
    tracing::debug!(bridge = %shared.stats.name, client = %client.id, peer = %peer_name, version = ?client.version, "MQTT client connected");
    let super::broker::Attached {
        conn_id,
        mut rx,
        kick,
        ..
    } = attached;
    let mut client = client;

    let keep_alive =
        (info.keep_alive > 0).then(|| Duration::from_millis(u64::from(info.keep_alive) * 1500));
    let far = Duration::from_secs(365 * 24 * 3600);
    let mut last_heard = Instant::now();
    let mut out_buf = BytesMut::with_capacity(4096);
    // A revoked or expired token ends the connection, as it ends a WebSocket session.
    let mut grant_check = tokio::time::interval(Duration::from_millis(500));

    let end = 'conn: loop {
        // Packets already buffered first.
        loop {
            match codec::decode(client.version, &mut buf, max) {
                Ok(Some(packet)) => {
                    last_heard = Instant::now();
                    match handle(&shared, &mut client, packet, &mut out_buf).await {
                        Ok(None) => {}
                        Ok(Some(end)) => break 'conn end,
                        Err(e) => break 'conn End::Bad(e),
                    }
                    if !out_buf.is_empty() {
                        if let Err(end) = write_unless_kicked(&mut wr, &mut out_buf, &kick).await {
                            break 'conn end;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => break 'conn End::Bad(e),
            }
        }
        let expiry = last_heard + keep_alive.unwrap_or(far);
        tokio::select! {
            read = rd.read_buf(&mut buf) => match read {
                Ok(n) if n > 0 => {}
                _ => break End::Dropped,
            },
            out = rx.recv() => {
                let Some(out) = out else { break End::Dropped };
                let _ = codec::encode(client.version, &out, &mut out_buf);
                // Batch whatever else is queued into the same write.
                while out_buf.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(out) => { let _ = codec::encode(client.version, &out, &mut out_buf); }
                        Err(_) => break,
                    }
                }
                if let Err(end) = write_unless_kicked(&mut wr, &mut out_buf, &kick).await {
                    break end;
                }
            }
            (code, why, will) = kick.wait() => break End::Kicked(code, why, will),
            _ = tokio::time::sleep_until(expiry) => break End::KeepAlive,
            _ = grant_check.tick(), if client.grant.is_some() => {
                if client.grant.as_ref().is_some_and(|g| g.is_revoked() || g.is_expired(unix_now())) {
                    break End::Kicked(0x87, "token revoked or expired", true);
                }
            }
        }
    };

    let publish_will = match &end {
        End::Graceful { with_will } => *with_will,
        End::Kicked(code, why, will) => {
            let _ = write_out(&mut wr, client.version, &Out::Disconnect(*code)).await;
            tracing::info!(bridge = %shared.stats.name, client = %client.id, reason = why, "MQTT client disconnected by the broker");
            *will
        }
        End::Dropped => true,
        End::Bad(e) => {
            shared.bad.borrow_mut().report(&shared.stats, &peer_name, e);
            let _ = write_out(&mut wr, client.version, &Out::Disconnect(e.reason())).await;
            true
        }
        End::KeepAlive => {
            tracing::info!(bridge = %shared.stats.name, client = %client.id, "MQTT client silent for 1.5x its keep-alive; closing");
            let _ = write_out(&mut wr, client.version, &Out::Disconnect(0x8D)).await;
            true
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
    shared.broker.borrow_mut().detach(&client.id, conn_id);
    if publish_will {
        if let Some(will) = info.will {
            tracing::debug!(bridge = %shared.stats.name, client = %client.id, topic = %will.topic, "publishing last will");
            let _ = ingest(
                &shared,
                &mut client,
                &will.topic,
                will.payload,
                will.qos,
                will.retain,
            )
            .await;
        }
    }
    tracing::debug!(bridge = %shared.stats.name, client = %client.id, "MQTT client gone");
}

fn connack(code: ConnCode, present: bool, assigned: Option<String>, shared: &Shared) -> Out {
    Out::ConnAck {
        session_present: present,
        code,
        assigned_id: assigned,
        max_packet: u32::try_from(shared.config.max_packet_size).unwrap_or(u32::MAX),
        receive_max: u16::try_from(shared.config.max_inflight).unwrap_or(u16::MAX),
    }
}

/// Writes `buf`, unless the broker asks this connection to close first: a client that
/// stopped reading must not hold its connection (and the broker's memory) forever.
async fn write_unless_kicked(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    buf: &mut BytesMut,
    kick: &super::broker::Kick,
) -> Result<(), End> {
    tokio::select! {
        written = wr.write_all_buf(buf) => written.map_err(|_| End::Dropped),
        (code, why, will) = kick.wait() => Err(End::Kicked(code, why, will)),
    }
}

/// Writes one packet, giving up after a second (the last words to a closing client).
async fn write_out(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    version: Version,
    out: &Out,
) -> std::io::Result<()> {
    let mut b = BytesMut::new();
    if codec::encode(version, out, &mut b).is_ok() {
        tokio::time::timeout(Duration::from_secs(1), wr.write_all_buf(&mut b))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    }
    Ok(())
}

/// Auth, client id and session; writes the CONNACK.
async fn admit(
    shared: &Rc<Shared>,
    info: &ConnectInfo,
    peer: &str,
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Option<(Client, super::broker::Attached)> {
    let version = info.version;
    let refuse = |code| connack(code, false, None, shared);
    let Some(slot) = shared.link.admit_client() else {
        tracing::warn!(bridge = %shared.stats.name, peer, "MQTT CONNECT refused: the relay is at --max-sessions or shutting down");
        let _ = write_out(wr, version, &refuse(ConnCode::Unavailable)).await;
        return None;
    };
    let grant = if shared.link.requires_token() {
        match shared
            .link
            .validate_token(info.password.as_deref().unwrap_or(""))
            .await
        {
            Ok(g) => g,
            Err(denial) => {
                tracing::info!(bridge = %shared.stats.name, peer, client = %info.client_id, reason = %denial, "MQTT CONNECT refused");
                let _ = write_out(wr, version, &refuse(ConnCode::NotAuthorized)).await;
                return None;
            }
        }
    } else {
        None
    };
    let mut assigned = None;
    let client_id = if info.client_id.is_empty() {
        if version == Version::V4 && !info.clean {
            let _ = write_out(wr, version, &refuse(ConnCode::BadClientId)).await;
            return None;
        }
        let id = shared.broker.borrow_mut().assign_id();
        assigned = Some(id.clone());
        id
    } else {
        info.client_id.clone()
    };
    let attached = shared.broker.borrow_mut().attach(
        &client_id,
        info.clean,
        info.session_expiry,
        info.receive_max,
    );
    let attached = match attached {
        Ok(a) => a,
        Err(code) => {
            tracing::warn!(bridge = %shared.stats.name, peer, "MQTT CONNECT refused: client limit reached");
            let _ = write_out(wr, version, &refuse(code)).await;
            return None;
        }
    };
    let ack = connack(
        ConnCode::Accepted,
        attached.session_present,
        assigned.filter(|_| version == Version::V5),
        shared,
    );
    if write_out(wr, version, &ack).await.is_err() {
        return None;
    }
    Some((
        Client {
            id: client_id,
            key: attached.key,
            version,
            grant,
            peer: peer.to_string(),
            incoming_qos2: Vec::new(),
            _slot: slot,
        },
        attached,
    ))
}

/// Handles one packet; replies go into `out` (written by the caller, before routed
/// messages queued later).
async fn handle(
    shared: &Rc<Shared>,
    client: &mut Client,
    packet: In,
    out: &mut BytesMut,
) -> Result<Option<End>, DecodeError> {
    let version = client.version;
    let mut reply = |o: Out| {
        let _ = codec::encode(version, &o, out);
    };
    match packet {
        In::Publish {
            topic,
            payload,
            qos,
            retain,
            pkid,
        } => {
            if mapping::topic_to_address(&shared.config.namespace, &topic).is_none() {
                return Err(DecodeError::Protocol("invalid topic name"));
            }
            if qos == 2 && client.incoming_qos2.contains(&pkid) {
                reply(Out::PubRec {
                    pkid,
                    refused: false,
                });
                return Ok(None);
            }
            let allowed = ingest(shared, client, &topic, payload, qos, retain).await;
            match qos {
                1 => reply(Out::PubAck {
                    pkid,
                    refused: !allowed,
                }),
                2 => {
                    if allowed && client.incoming_qos2.len() < 1024 {
                        client.incoming_qos2.push(pkid);
                    }
                    reply(Out::PubRec {
                        pkid,
                        refused: !allowed,
                    })
                }
                _ => {}
            }
        }
        In::PubAck(pkid) | In::PubComp(pkid) => shared.broker.borrow_mut().acked(&client.id, pkid),
        In::PubRec(pkid) => {
            shared.broker.borrow_mut().received(&client.id, pkid);
            reply(Out::PubRel(pkid));
        }
        In::PubRel(pkid) => {
            client.incoming_qos2.retain(|p| *p != pkid);
            reply(Out::PubComp(pkid));
        }
        In::Subscribe { pkid, filters } => {
            let ns = &shared.config.namespace;
            let mut granted = Vec::new();
            let mut codes = Vec::new();
            for req in filters {
                let code = if req.filter.starts_with("$share/") {
                    SubCode::SharedUnsupported
                } else if !mapping::valid_filter(&req.filter) {
                    SubCode::Invalid
                } else if !read_allowed(client, &mapping::filter_to_pattern(ns, &req.filter)) {
                    SubCode::NotAuthorized
                } else {
                    SubCode::Granted(req.qos.min(2))
                };
                if let SubCode::Granted(q) = code {
                    granted.push((req, q));
                }
                codes.push(code);
            }
            let fresh = shared.broker.borrow_mut().subscribe(&client.id, &granted);
            reply(Out::SubAck { pkid, codes });
            for ((req, qos), new) in granted.iter().zip(fresh) {
                if req.retain_handling == 2 || (req.retain_handling == 1 && !new) {
                    continue;
                }
                let retained = retained_for(shared, &req.filter, *qos).await;
                if !retained.is_empty() {
                    shared
                        .broker
                        .borrow_mut()
                        .send_retained(&client.id, retained);
                }
            }
        }
        In::Unsubscribe { pkid, filters } => {
            shared.broker.borrow_mut().unsubscribe(&client.id, &filters);
            reply(Out::UnsubAck {
                pkid,
                count: filters.len(),
            });
        }
        In::PingReq => reply(Out::PingResp),
        In::Disconnect { with_will } => return Ok(Some(End::Graceful { with_will })),
    }
    Ok(None)
}

fn read_allowed(client: &Client, pattern: &str) -> bool {
    let Some(grant) = &client.grant else {
        return true;
    };
    clasp_proto::Pattern::compile(pattern)
        .map(|p| grant.scopes.allows_pattern(Action::Read, &p))
        .unwrap_or(false)
}

/// The current params under a filter, as retained messages (a `Null` param is a cleared
/// retained message and is not sent).
async fn retained_for(shared: &Shared, filter: &str, qos: u8) -> Vec<Msg> {
    let ns = &shared.config.namespace;
    let pattern = mapping::filter_to_pattern(ns, filter);
    let params = match shared.link.snapshot(&pattern).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(bridge = %shared.stats.name, error = %e, "retained messages unavailable");
            return Vec::new();
        }
    };
    params
        .into_iter()
        .filter(|p| !matches!(p.value, clasp_proto::Value::Null))
        .filter_map(|p| {
            let (address, value) = (p.address, p.value);
            let topic = mapping::address_to_topic(ns, address.as_str())?;
            mapping::topic_matches(filter, topic).then(|| Msg {
                topic: Arc::from(topic),
                payload: Bytes::from(mapping::value_to_payload(&value)),
                qos,
                retain: true,
            })
        })
        .collect()
}

/// One PUBLISH (or will) from a client into CLASP: retained → a Param SET (its subscribers
/// get it through the router's echo), non-retained → an Event, routed at once to MQTT
/// subscribers and published to CLASP ones. False when the client's scopes refuse it.
async fn ingest(
    shared: &Rc<Shared>,
    client: &mut Client,
    topic: &str,
    payload: Bytes,
    qos: u8,
    retain: bool,
) -> bool {
    let ns = &shared.config.namespace;
    let Some(address) = mapping::topic_to_address(ns, topic) else {
        shared.bad.borrow_mut().report(
            &shared.stats,
            &client.peer,
            &format!("unmappable topic {topic:?}"),
        );
        return false;
    };
    if let Some(grant) = &client.grant {
        if grant.is_revoked()
            || grant.is_expired(unix_now())
            || !grant.scopes.allows(Action::Write, &address)
        {
            BridgeStats::bump(&shared.stats.refused);
            return false;
        }
    }
    BridgeStats::bump(&shared.stats.received);
    let value = mapping::payload_to_value(&payload);
    if retain {
        shared.origins.borrow_mut().sent(
            &address,
            &value,
            Origin {
                key: client.key,
                qos,
                payload,
            },
        );
        let (link, stats) = (shared.link.clone(), shared.stats.clone());
        let set = async move {
            if let Err(e) = link.set(&address, value).await {
                BridgeStats::bump(&stats.refused);
                tracing::debug!(bridge = %stats.name, %address, error = %e, "retained publish refused by the router");
                return false;
            }
            true
        };
        if qos == 0 {
            tokio::task::spawn_local(set);
            true
        } else {
            // QoS 1/2: acknowledged once the router stored it (Confirm/Commit).
            set.await
        }
    } else {
        let msg = Msg {
            topic: Arc::from(topic),
            payload,
            qos,
            retain: false,
        };
        shared.broker.borrow_mut().route(&msg, Some(client.key));
        if let Err(e) = shared
            .link
            .publish(SignalType::Event, &address, value)
            .await
        {
            tracing::debug!(bridge = %shared.stats.name, %address, error = %e, "event not published to the router");
        }
        true
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
