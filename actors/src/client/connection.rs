//! The connection actor behind a [`super::Client`]: one task owns the WebSocket, takes
//! [`Command`]s from handles, matches replies to requests, dispatches updates to
//! subscriptions, and reconnects with backoff (re-subscribing, re-taking locks and flushing
//! the offline queue).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clasp_proto::{
    decode_frame, encode_frame, Address, ClockSync, FrameHeader, Hello, Message, ParamState,
    Pattern, Publish, QoS, SignalInfo, Subscribe, SubscribeOptions, TypeMask, Unsubscribe, Value,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as Ws;

use super::{ClientBuilder, ClientError, Shared, Update};
use crate::clock::now_micros;

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A replay is complete when nothing matching arrived for this long.
const REPLAY_QUIET: Duration = Duration::from_millis(300);
/// Weight of a new SYNC sample in the clock offset (EMA).
const SYNC_ALPHA: f64 = 0.3;
/// How often the clock offset is refreshed with a SYNC round on its own.
const SYNC_EVERY: Duration = Duration::from_secs(10);

/// What a handle asks the connection to do.
pub(crate) enum Command {
    Set {
        set: clasp_proto::Set,
        reply: Reply<u64>,
    },
    Get {
        address: Address,
        reply: Reply<ParamState>,
    },
    Subscribe {
        pattern: Pattern,
        types: TypeMask,
        options: SubscribeOptions,
        sink: mpsc::Sender<Update>,
        reply: Reply<u32>,
    },
    Unsubscribe {
        id: u32,
    },
    Publish {
        publish: Publish,
        qos: QoS,
    },
    Bundle {
        bundle: clasp_proto::Bundle,
        reply: Reply<Option<u64>>,
    },
    Query {
        pattern: Pattern,
        reply: Reply<Vec<SignalInfo>>,
    },
    Replay {
        replay: clasp_proto::Replay,
        reply: Reply<Vec<Update>>,
    },
    Sync {
        reply: Reply<(u64, i64)>,
    },
    Ping {
        reply: Reply<u64>,
    },
    Close,
}

struct Sub {
    pattern: Pattern,
    types: TypeMask,
    options: SubscribeOptions,
    sink: mpsc::Sender<Update>,
    /// Last revision delivered per param: the initial snapshot, the subscribe snapshot and
    /// GET answers can repeat a revision, which is delivered once.
    seen: HashMap<Address, u64>,
}

struct PendingReplay {
    pattern: Pattern,
    reply: Reply<Vec<Update>>,
    got: Vec<Update>,
    last: Instant,
}

/// Connects and completes the handshake, then runs the actor; the WELCOME session id.
pub(crate) async fn start(
    cfg: ClientBuilder,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
) -> Result<String, ClientError> {
    let (socket, session) = open(&cfg, &shared).await?;
    let actor = Connection {
        cfg,
        shared,
        subs: HashMap::new(),
        next_id: 1,
        sets: HashMap::new(),
        gets: HashMap::new(),
        bundles: VecDeque::new(),
        queries: VecDeque::new(),
        replays: Vec::new(),
        syncs: VecDeque::new(),
        pings: VecDeque::new(),
        locks: HashMap::new(),
        offline: VecDeque::new(),
    };
    tokio::spawn(actor.run(socket, commands));
    Ok(session)
}

pub(crate) async fn open(
    cfg: &ClientBuilder,
    shared: &Shared,
) -> Result<(Socket, String), ClientError> {
    let fail = |reason: String| ClientError::Connect {
        url: cfg.url.clone(),
        reason,
    };
    let mut request = cfg
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| fail(e.to_string()))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(clasp_proto::WS_SUBPROTOCOL),
    );
    let connector = match &cfg.ca_file {
        Some(ca) => Some(tokio_tungstenite::Connector::Rustls(Arc::new(
            crate::tls::client_config(Some(ca)).map_err(|e| fail(e.to_string()))?,
        ))),
        None => None,
    };
    let (mut socket, _) = tokio::time::timeout(
        cfg.timeout,
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector),
    )
    .await
    .map_err(|_| fail("timed out".into()))?
    .map_err(|e| fail(e.to_string()))?;
    let hello = Message::Hello(Hello {
        version: clasp_proto::PROTOCOL_VERSION,
        features: cfg.features,
        name: cfg.name.clone(),
        token: cfg.token.clone(),
    });
    let frame = encode_frame(&FrameHeader::new(QoS::Fire), &hello)?;
    socket
        .send(Ws::Binary(frame))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + cfg.timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .map_err(|_| fail("no WELCOME".into()))?;
        match next {
            Some(Ok(Ws::Binary(bytes))) => match decode_frame(&bytes).map(|d| d.message) {
                Ok(Message::Welcome(w)) => {
                    let offset = w.time as i64 - now_micros() as i64;
                    shared.offset_us.store(offset, Ordering::Relaxed);
                    shared.connected.store(true, Ordering::Relaxed);
                    return Ok((socket, w.session));
                }
                Ok(Message::Error(e)) => {
                    return Err(ClientError::Refused {
                        code: e.code,
                        message: e.message,
                    })
                }
                _ => continue,
            },
            Some(Ok(Ws::Close(frame))) => {
                return Err(fail(
                    frame.map_or_else(|| "closed".into(), |f| f.reason.to_string()),
                ));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(fail(e.to_string())),
            None => return Err(fail("closed".into())),
        }
    }
}

struct Connection {
    cfg: ClientBuilder,
    shared: Arc<Shared>,
    subs: HashMap<u32, Sub>,
    next_id: u32,
    sets: HashMap<String, VecDeque<(clasp_proto::Set, Reply<u64>)>>,
    gets: HashMap<String, Vec<Reply<ParamState>>>,
    bundles: VecDeque<Reply<Option<u64>>>,
    queries: VecDeque<Reply<Vec<SignalInfo>>>,
    replays: Vec<PendingReplay>,
    syncs: VecDeque<(u64, Reply<(u64, i64)>)>,
    pings: VecDeque<(Instant, Reply<u64>)>,
    /// Locks this client holds: re-taken after a reconnect, with the value last written.
    locks: HashMap<String, Value>,
    /// Confirm-level frames written while disconnected.
    offline: VecDeque<Vec<u8>>,
}

enum Step {
    Continue,
    Disconnected,
    Closed,
}

impl Connection {
    async fn run(mut self, socket: Socket, mut commands: mpsc::Receiver<Command>) {
        let mut socket = Some(socket);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut last_sync = Instant::now();
        loop {
            let Some(ws) = socket.as_mut() else {
                match self.reconnect(&mut commands).await {
                    Some(s) => {
                        socket = Some(s);
                        continue;
                    }
                    None => return,
                }
            };
            let step = tokio::select! {
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Close) => Step::Closed,
                    Some(cmd) => self.command(cmd, Some(ws)).await,
                },
                msg = ws.next() => match msg {
                    Some(Ok(Ws::Binary(bytes))) => {
                        if let Ok(decoded) = decode_frame(&bytes) {
                            self.on_message(decoded.message);
                        }
                        Step::Continue
                    }
                    Some(Ok(Ws::Close(_))) | Some(Err(_)) | None => Step::Disconnected,
                    Some(Ok(_)) => Step::Continue,
                },
                _ = tick.tick() => {
                    self.finish_replays();
                    if last_sync.elapsed() >= SYNC_EVERY {
                        last_sync = Instant::now();
                        // Nobody waits for this round; its answer only refines time().
                        let (reply, _) = oneshot::channel();
                        self.command(Command::Sync { reply }, Some(ws)).await
                    } else {
                        Step::Continue
                    }
                }
            };
            match step {
                Step::Continue => {}
                Step::Closed => {
                    if let Some(mut s) = socket.take() {
                        let _ = s.close(None).await;
                    }
                    self.shared.connected.store(false, Ordering::Relaxed);
                    self.fail_all();
                    return;
                }
                Step::Disconnected => {
                    socket = None;
                    self.shared.connected.store(false, Ordering::Relaxed);
                    self.fail_waiting();
                    if !self.cfg.reconnect {
                        self.fail_all();
                        // Answer whatever still comes with Closed.
                        while let Some(cmd) = commands.recv().await {
                            fail_command(cmd);
                        }
                        return;
                    }
                }
            }
        }
    }

    /// Backoff loop; commands meanwhile go to the offline queue (Confirm) or are refused.
    async fn reconnect(&mut self, commands: &mut mpsc::Receiver<Command>) -> Option<Socket> {
        let mut backoff = BACKOFF_START;
        loop {
            let sleep = tokio::time::sleep(backoff);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    cmd = commands.recv() => match cmd {
                        None | Some(Command::Close) => {
                            self.fail_all();
                            return None;
                        }
                        Some(cmd) => {
                            self.command(cmd, None).await;
                        }
                    },
                }
            }
            match open(&self.cfg, &self.shared).await {
                Ok((mut socket, session)) => {
                    *self
                        .shared
                        .session
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = session;
                    if self.restore(&mut socket).await.is_ok() {
                        return Some(socket);
                    }
                }
                Err(e) => tracing::debug!(error = %e, ?backoff, "reconnect failed"),
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// After a reconnect: subscriptions, locks, then what was queued offline.
    async fn restore(&mut self, socket: &mut Socket) -> Result<(), ClientError> {
        let mut frames = Vec::new();
        for (id, sub) in &mut self.subs {
            // A restarted relay counts revisions from 1 again.
            sub.seen.clear();
            let m = Message::Subscribe(Subscribe {
                id: *id,
                pattern: sub.pattern.clone(),
                types: sub.types,
                options: sub.options,
            });
            frames.push(encode_frame(&FrameHeader::new(QoS::Fire), &m)?);
        }
        for (address, value) in &self.locks {
            let mut set = clasp_proto::Set::new(Address::parse(address)?, value.clone());
            set.lock = true;
            frames.push(encode_frame(
                &FrameHeader::new(QoS::Fire),
                &Message::Set(set),
            )?);
        }
        frames.extend(self.offline.drain(..));
        for frame in frames {
            socket
                .send(Ws::Binary(frame))
                .await
                .map_err(|_| ClientError::Closed)?;
        }
        Ok(())
    }

    /// Sends a frame, or queues it offline when `confirm` and there is no socket.
    async fn send(
        &mut self,
        ws: Option<&mut Socket>,
        qos: QoS,
        message: &Message,
    ) -> Result<(), ClientError> {
        let frame = encode_frame(&FrameHeader::new(qos), message)?;
        match ws {
            Some(ws) => ws
                .send(Ws::Binary(frame))
                .await
                .map_err(|_| ClientError::Closed),
            None if qos >= QoS::Confirm => {
                if self.offline.len() >= self.cfg.offline_queue {
                    return Err(ClientError::QueueFull(self.offline.len()));
                }
                self.offline.push_back(frame);
                Ok(())
            }
            None => Err(ClientError::Closed),
        }
    }

    async fn command(&mut self, cmd: Command, mut ws: Option<&mut Socket>) -> Step {
        let online = ws.is_some();
        match cmd {
            Command::Set { set, reply } => {
                let msg = Message::Set(set.clone());
                match self.send(ws.as_deref_mut(), QoS::Confirm, &msg).await {
                    Ok(()) => self
                        .sets
                        .entry(set.address.to_string())
                        .or_default()
                        .push_back((set, reply)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Get { address, reply } => {
                if !online {
                    let _ = reply.send(Err(ClientError::Closed));
                    return Step::Continue;
                }
                let msg = Message::Get(clasp_proto::Get {
                    address: address.clone(),
                });
                match self.send(ws, QoS::Fire, &msg).await {
                    Ok(()) => self
                        .gets
                        .entry(address.to_string())
                        .or_default()
                        .push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Subscribe {
                pattern,
                types,
                options,
                sink,
                reply,
            } => {
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1).max(1);
                let msg = Message::Subscribe(Subscribe {
                    id,
                    pattern: pattern.clone(),
                    types,
                    options,
                });
                // Offline, the subscription is registered and sent at reconnect.
                if online {
                    if let Err(e) = self.send(ws, QoS::Fire, &msg).await {
                        let _ = reply.send(Err(e));
                        return Step::Continue;
                    }
                }
                self.subs.insert(
                    id,
                    Sub {
                        pattern,
                        types,
                        options,
                        sink,
                        seen: HashMap::new(),
                    },
                );
                let _ = reply.send(Ok(id));
            }
            Command::Unsubscribe { id } => {
                if self.subs.remove(&id).is_some() && online {
                    let _ = self
                        .send(ws, QoS::Fire, &Message::Unsubscribe(Unsubscribe { id }))
                        .await;
                }
            }
            Command::Publish { publish, qos } => {
                if let Err(e) = self.send(ws, qos, &Message::Publish(publish)).await {
                    tracing::debug!(error = %e, "publish dropped");
                }
            }
            Command::Bundle { bundle, reply } => {
                match self.send(ws, QoS::Commit, &Message::Bundle(bundle)).await {
                    Ok(()) => self.bundles.push_back(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Query { pattern, reply } => {
                match self
                    .send(
                        ws,
                        QoS::Fire,
                        &Message::Query(clasp_proto::Query { pattern }),
                    )
                    .await
                {
                    Ok(()) => self.queries.push_back(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Replay { replay, reply } => {
                let pattern = replay.pattern.clone();
                match self.send(ws, QoS::Fire, &Message::Replay(replay)).await {
                    Ok(()) => self.replays.push(PendingReplay {
                        pattern,
                        reply,
                        got: Vec::new(),
                        last: Instant::now(),
                    }),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Sync { reply } => {
                let t1 = now_micros();
                match self
                    .send(
                        ws,
                        QoS::Fire,
                        &Message::Sync(ClockSync {
                            t1,
                            t2: None,
                            t3: None,
                        }),
                    )
                    .await
                {
                    Ok(()) => self.syncs.push_back((t1, reply)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Ping { reply } => match self.send(ws, QoS::Fire, &Message::Ping).await {
                Ok(()) => self.pings.push_back((Instant::now(), reply)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Close => return Step::Closed,
        }
        Step::Continue
    }

    fn on_message(&mut self, message: Message) {
        match message {
            Message::Set(set) => self.dispatch(Update::from_set(set), true),
            Message::Publish(p) => self.dispatch(Update::from_publish(p), true),
            Message::Snapshot(s) => {
                for param in s.params {
                    if let Some(waiting) = self.gets.remove(param.address.as_str()) {
                        for reply in waiting {
                            let _ = reply.send(Ok(param.clone()));
                        }
                    }
                    self.dispatch(Update::from_param(param), false);
                }
            }
            Message::Ack(ack) => match ack.address {
                // The relay's end-of-replay marker: an ACK naming the replayed pattern.
                Some(address)
                    if !self.sets.contains_key(&address)
                        && self.replays.iter().any(|r| r.pattern.as_str() == address) =>
                {
                    if let Some(i) = self
                        .replays
                        .iter()
                        .position(|r| r.pattern.as_str() == address)
                    {
                        let r = self.replays.remove(i);
                        let _ = r.reply.send(Ok(r.got));
                    }
                }
                Some(address) => {
                    if let Some((set, reply)) =
                        self.sets.get_mut(&address).and_then(VecDeque::pop_front)
                    {
                        if set.unlock {
                            self.locks.remove(&address);
                        } else if set.lock || self.locks.contains_key(&address) {
                            self.locks.insert(address, set.value);
                        }
                        let _ = reply.send(Ok(ack.revision.unwrap_or(0)));
                    }
                }
                None => {
                    if let Some(reply) = self.bundles.pop_front() {
                        let _ = reply.send(Ok(ack.revision));
                    }
                }
            },
            Message::Error(e) => self.on_error(e),
            Message::Result(r) => {
                if let Some(reply) = self.queries.pop_front() {
                    let _ = reply.send(Ok(r.signals));
                }
            }
            Message::Sync(s) => {
                if let (Some((t1, reply)), Some(t2), Some(t3)) =
                    (self.syncs.pop_front(), s.t2, s.t3)
                {
                    let t4 = now_micros();
                    let rtt = t4.saturating_sub(t1).saturating_sub(t3.saturating_sub(t2));
                    let offset = ((t2 as i64 - t1 as i64) + (t3 as i64 - t4 as i64)) / 2;
                    let old = self.shared.offset_us.load(Ordering::Relaxed);
                    let smoothed = old + ((offset - old) as f64 * SYNC_ALPHA) as i64;
                    self.shared.offset_us.store(smoothed, Ordering::Relaxed);
                    let _ = reply.send(Ok((rtt, offset)));
                }
            }
            Message::Pong => {
                if let Some((sent, reply)) = self.pings.pop_front() {
                    let _ = reply.send(Ok(sent.elapsed().as_micros() as u64));
                }
            }
            _ => {}
        }
    }

    fn on_error(&mut self, e: clasp_proto::ErrorMessage) {
        let err = ClientError::Server {
            code: e.code,
            message: e.message.clone(),
            address: e.address.clone(),
        };
        if e.message.starts_with("Bundle rejected") {
            if let Some(reply) = self.bundles.pop_front() {
                let _ = reply.send(Err(err));
                return;
            }
        }
        if let Some(address) = &e.address {
            if let Some((_, reply)) = self.sets.get_mut(address).and_then(VecDeque::pop_front) {
                let _ = reply.send(Err(err));
                return;
            }
            if let Some(replies) = self.gets.remove(address) {
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
                return;
            }
            if let Some(i) = self
                .replays
                .iter()
                .position(|r| r.pattern.as_str() == address)
            {
                let r = self.replays.remove(i);
                let _ = r.reply.send(Err(err));
                return;
            }
        }
        tracing::warn!(code = e.code, message = %e.message, address = ?e.address, "relay error");
    }

    /// Hands an update to the matching subscriptions; `replayable` ones (SET and PUBLISH
    /// frames, which is how the relay replays) also go to pending replays, snapshots do not.
    fn dispatch(&mut self, update: Update, replayable: bool) {
        let now = Instant::now();
        for r in self.replays.iter_mut().filter(|_| replayable) {
            if r.pattern.matches(update.address.as_str()) {
                r.got.push(update.clone());
                r.last = now;
            }
        }
        self.subs.retain(|_, sub| {
            if sub.pattern.matches(update.address.as_str()) && sub.types.includes(update.signal) {
                if let Some(rev) = update.revision {
                    match sub.seen.get_mut(&update.address) {
                        Some(last) if *last >= rev => return !sub.sink.is_closed(),
                        Some(last) => *last = rev,
                        None => {
                            sub.seen.insert(update.address.clone(), rev);
                        }
                    }
                }
                !matches!(
                    sub.sink.try_send(update.clone()),
                    Err(mpsc::error::TrySendError::Closed(_))
                )
            } else {
                !sub.sink.is_closed()
            }
        });
    }

    fn finish_replays(&mut self) {
        let now = Instant::now();
        let (done, waiting): (Vec<_>, Vec<_>) = self
            .replays
            .drain(..)
            .partition(|r| now.duration_since(r.last) >= REPLAY_QUIET);
        self.replays = waiting;
        for r in done {
            let _ = r.reply.send(Ok(r.got));
        }
    }

    /// Requests that need the old connection's answer fail; writes stay pending only if
    /// they were queued offline (they are not: they were sent), so they fail too.
    fn fail_waiting(&mut self) {
        for (_, q) in self.sets.drain() {
            for (_, reply) in q {
                let _ = reply.send(Err(ClientError::Closed));
            }
        }
        for (_, q) in self.gets.drain() {
            for reply in q {
                let _ = reply.send(Err(ClientError::Closed));
            }
        }
        for reply in self.bundles.drain(..) {
            let _ = reply.send(Err(ClientError::Closed));
        }
        for reply in self.queries.drain(..) {
            let _ = reply.send(Err(ClientError::Closed));
        }
        for r in self.replays.drain(..) {
            let _ = r.reply.send(Err(ClientError::Closed));
        }
        for (_, reply) in self.syncs.drain(..) {
            let _ = reply.send(Err(ClientError::Closed));
        }
        for (_, reply) in self.pings.drain(..) {
            let _ = reply.send(Err(ClientError::Closed));
        }
    }

    fn fail_all(&mut self) {
        self.fail_waiting();
        self.subs.clear();
    }
}

fn fail_command(cmd: Command) {
    match cmd {
        Command::Set { reply, .. } => drop(reply.send(Err(ClientError::Closed))),
        Command::Get { reply, .. } => drop(reply.send(Err(ClientError::Closed))),
        Command::Subscribe { reply, .. } => drop(reply.send(Err(ClientError::Closed))),
        Command::Bundle { reply, .. } => drop(reply.send(Err(ClientError::Closed))),
        Command::Query { reply, .. } => drop(reply.send(Err(ClientError::Closed))),
        Command::Replay { reply, .. } => drop(reply.send(Err(ClientError::Closed))),
        Command::Sync { reply } => drop(reply.send(Err(ClientError::Closed))),
        Command::Ping { reply } => drop(reply.send(Err(ClientError::Closed))),
        Command::Unsubscribe { .. } | Command::Publish { .. } | Command::Close => {}
    }
}
