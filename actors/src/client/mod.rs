//! The Rust client SDK: the same calls as the official JS client (`set`, `get`,
//! `subscribe`/`on`, `emit`, `stream`, `gesture`, `timeline`, `bundle`, `query`, `replay`,
//! `time`), async and typed. A [`Client`] is a handle to a connection actor (a task that
//! owns the socket and is driven by messages), so handles are cheap to clone and share.
//!
//! ```no_run
//! # async fn demo() -> Result<(), clasp_actors::client::ClientError> {
//! use clasp_actors::client::Client;
//! let client = Client::builder("ws://127.0.0.1:7330").name("mixer").connect().await?;
//! let revision = client.set("/mixer/ch1/gain", 0.5).await?;
//! let mut faders = client.subscribe("/mixer/**").await?;
//! while let Some(update) = faders.next().await {
//!     println!("{} = {:?} (rev {:?})", update.address, update.value, update.revision);
//! }
//! # Ok(()) }
//! ```

pub(crate) mod connection;
mod error;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clasp_proto::{
    Address, FeatureSet, GesturePhase, ParamState, Pattern, Payload, Publish, QoS, SignalInfo,
    SignalType, SubscribeOptions, Ttl, TypeMask, Value,
};
use tokio::sync::{mpsc, oneshot};

pub use error::ClientError;

use connection::Command;

/// Default deadline for `get`, `query`, `set` acknowledgements.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages kept while disconnected (Confirm-level only; Fire messages are dropped).
pub const DEFAULT_OFFLINE_QUEUE: usize = 1000;

/// Configures and opens a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    name: String,
    token: Option<String>,
    features: FeatureSet,
    timeout: Duration,
    reconnect: bool,
    offline_queue: usize,
    ca_file: Option<std::path::PathBuf>,
    discovery: crate::discovery::DiscoverOptions,
}

impl ClientBuilder {
    /// How a `clasp://NAME` URL is resolved (default: mDNS on every interface, then a
    /// broadcast to 255.255.255.255:7331, each for 2 s; no rendezvous).
    pub fn discovery(mut self, options: crate::discovery::DiscoverOptions) -> Self {
        self.discovery = options;
        self
    }

    /// Turns `clasp://NAME` into the relay's `ws://` URL by discovery (any other URL is
    /// kept). The name may be percent-encoded (`clasp://Stage%20Left`).
    async fn resolve_url(mut self) -> Result<Self, ClientError> {
        let Some(name) = self.url.strip_prefix("clasp://") else {
            return Ok(self);
        };
        let name = percent_decode(name.trim_end_matches('/'));
        let options = self.discovery.clone();
        let lookup = name.clone();
        let found =
            tokio::task::spawn_blocking(move || crate::discovery::resolve(&lookup, &options))
                .await
                .ok()
                .flatten();
        match found {
            Some(f) => {
                tracing::info!(name = %name, url = %f.url, source = %f.source, "relay found");
                self.url = f.url;
                Ok(self)
            }
            None => Err(ClientError::Connect {
                url: self.url.clone(),
                reason: format!(
                    "no relay called {name:?} answered mDNS, broadcast or rendezvous discovery"
                ),
            }),
        }
    }
    /// Client name sent in HELLO.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Credentials sent in HELLO.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t: &String| !t.is_empty());
        self
    }

    /// Feature bits sent in HELLO (default: param, event, stream, gesture, timeline).
    pub fn features(mut self, features: FeatureSet) -> Self {
        self.features = features;
        self
    }

    /// Deadline for requests that wait for an answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reconnect with exponential backoff (1 s doubling to 30 s) after a lost connection,
    /// re-subscribing and re-taking held locks (default on).
    pub fn reconnect(mut self, on: bool) -> Self {
        self.reconnect = on;
        self
    }

    /// Also trust the CA certificates in this PEM file for `wss://` (a relay with a
    /// self-signed or private-CA certificate); the public web roots are always trusted.
    pub fn ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// How many Confirm messages to keep while disconnected.
    pub fn offline_queue(mut self, messages: usize) -> Self {
        self.offline_queue = messages;
        self
    }

    /// Connects, says HELLO and waits for WELCOME.
    pub async fn connect(self) -> Result<Client, ClientError> {
        let this = self.resolve_url().await?;
        this.connect_resolved().await
    }

    async fn connect_resolved(self) -> Result<Client, ClientError> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel(1024);
        let welcome = connection::start(self.clone(), shared.clone(), rx).await?;
        *shared.session.lock().unwrap_or_else(|p| p.into_inner()) = welcome;
        Ok(Client {
            commands: tx,
            shared,
            timeout: self.timeout,
        })
    }
}

/// `%XX` escapes decoded (invalid ones are kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// State the connection actor publishes to handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Server clock minus local clock, µs.
    pub(crate) offset_us: AtomicI64,
    pub(crate) connected: AtomicBool,
    pub(crate) session: Mutex<String>,
}

/// One update delivered to a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Where.
    pub address: Address,
    /// The value (`Null` for a PUBLISH without one).
    pub value: Value,
    /// Signal type.
    pub signal: SignalType,
    /// Param revision (SET and SNAPSHOT).
    pub revision: Option<u64>,
    /// Session id of the param's last writer (SNAPSHOT).
    pub writer: Option<String>,
    /// µs timestamp (param write time, or the publisher's).
    pub timestamp: Option<u64>,
    /// Gesture phase and id.
    pub gesture: Option<(GesturePhase, u32)>,
}

impl Update {
    /// A SET as its subscribers see it.
    pub fn from_set(s: clasp_proto::Set) -> Self {
        Update {
            address: s.address,
            value: s.value,
            signal: SignalType::Param,
            revision: s.revision,
            writer: None,
            timestamp: None,
            gesture: None,
        }
    }

    /// A PUBLISH: samples become an array of floats, no payload becomes `Null`.
    pub fn from_publish(p: Publish) -> Self {
        let gesture = (p.signal == SignalType::Gesture).then(|| (p.phase, p.id.unwrap_or(0)));
        let value = match p.payload {
            Payload::Value(v) => v,
            Payload::Samples(s) => Value::Array(s.into_iter().map(Value::Float).collect()),
            Payload::None => Value::Null,
        };
        Update {
            address: p.address,
            value,
            signal: p.signal,
            revision: None,
            writer: None,
            timestamp: p.timestamp,
            gesture,
        }
    }

    /// One SNAPSHOT entry.
    pub fn from_param(p: ParamState) -> Self {
        Update {
            address: p.address,
            value: p.value,
            signal: SignalType::Param,
            revision: Some(p.revision),
            writer: p.writer,
            timestamp: p.timestamp,
            gesture: None,
        }
    }
}

/// Options of one SET.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SetOptions {
    /// Apply only if the current revision is this one (optimistic concurrency).
    pub revision: Option<u64>,
    /// Take the param's lock.
    pub lock: bool,
    /// Release it.
    pub unlock: bool,
    /// Time to live.
    pub ttl: Option<Ttl>,
}

/// A member of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub enum BundleItem {
    /// A SET.
    Set(String, Value),
    /// An event.
    Emit(String, Value),
}

/// The client handle. Cheap to clone; the connection closes when the last handle and its
/// subscriptions are dropped, or on [`Client::close`].
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session())
            .finish()
    }
}

impl Client {
    /// Starts configuring a client for `url` (`ws://host:port`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            name: "CLASP Rust Client".into(),
            token: None,
            features: FeatureSet::ROUTER_DEFAULT,
            timeout: DEFAULT_TIMEOUT,
            reconnect: true,
            offline_queue: DEFAULT_OFFLINE_QUEUE,
            ca_file: None,
            discovery: crate::discovery::DiscoverOptions::default(),
        }
    }

    /// Session id given by the relay's WELCOME (changes on reconnect).
    pub fn session(&self) -> String {
        self.shared
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the connection is up right now.
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Server time in µs since the Unix epoch: local clock plus the offset from WELCOME,
    /// refined by [`Client::sync`].
    pub fn time(&self) -> u64 {
        let local = crate::clock::now_micros() as i64;
        (local + self.shared.offset_us.load(Ordering::Relaxed)).max(0) as u64
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Command,
    ) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }

    /// Writes a param and waits for the relay's ACK; the new revision.
    pub async fn set(&self, address: &str, value: impl Into<Value>) -> Result<u64, ClientError> {
        self.set_with(address, value, SetOptions::default()).await
    }

    /// Writes a param with options (expected revision, lock, unlock, TTL).
    pub async fn set_with(
        &self,
        address: &str,
        value: impl Into<Value>,
        options: SetOptions,
    ) -> Result<u64, ClientError> {
        let set = clasp_proto::Set {
            address: Address::parse(address)?,
            value: value.into(),
            revision: options.revision,
            lock: options.lock,
            unlock: options.unlock,
            ttl: options.ttl,
        };
        self.request(|reply| Command::Set { set, reply }).await
    }

    /// Reads a param from the relay. An unknown address is a `Timeout` error (the relay
    /// sends nothing for it).
    pub async fn get(&self, address: &str) -> Result<ParamState, ClientError> {
        let address = Address::parse(address)?;
        self.request(|reply| Command::Get { address, reply }).await
    }

    /// Subscribes with default options; updates arrive on the returned stream, starting
    /// with the current values of matching params.
    pub async fn subscribe(&self, pattern: &str) -> Result<Subscription, ClientError> {
        self.subscribe_with(pattern, TypeMask::ALL, SubscribeOptions::default())
            .await
    }

    /// Subscribes with a type filter and delivery options (max rate, epsilon, ...).
    pub async fn subscribe_with(
        &self,
        pattern: &str,
        types: TypeMask,
        options: SubscribeOptions,
    ) -> Result<Subscription, ClientError> {
        let pattern = Pattern::compile(pattern)?;
        let (tx, rx) = mpsc::channel(4096);
        let id = self
            .request(|reply| Command::Subscribe {
                pattern,
                types,
                options,
                sink: tx,
                reply,
            })
            .await?;
        Ok(Subscription {
            id,
            updates: rx,
            commands: self.commands.clone(),
        })
    }

    /// Calls `callback` for every update matching `pattern` until the returned handle is
    /// dropped.
    pub async fn on<F>(&self, pattern: &str, mut callback: F) -> Result<Listener, ClientError>
    where
        F: FnMut(Update) + Send + 'static,
    {
        let mut sub = self.subscribe(pattern).await?;
        let task = tokio::spawn(async move {
            while let Some(update) = sub.next().await {
                callback(update);
            }
        });
        Ok(Listener { task })
    }

    async fn publish(&self, publish: Publish, qos: QoS) -> Result<(), ClientError> {
        self.commands
            .send(Command::Publish { publish, qos })
            .await
            .map_err(|_| ClientError::Closed)
    }

    fn publish_msg(
        &self,
        signal: SignalType,
        address: &str,
        value: Value,
    ) -> Result<Publish, ClientError> {
        Ok(Publish {
            signal,
            phase: GesturePhase::Start,
            address: Address::parse(address)?,
            payload: Payload::Value(value),
            timestamp: Some(self.time()),
            id: None,
            rate: None,
        })
    }

    /// Sends an event (not stored, not echoed to this client).
    pub async fn emit(&self, address: &str, payload: impl Into<Value>) -> Result<(), ClientError> {
        let p = self.publish_msg(SignalType::Event, address, payload.into())?;
        self.publish(p, QoS::Confirm).await
    }

    /// Sends one stream sample (best effort).
    pub async fn stream(&self, address: &str, value: impl Into<Value>) -> Result<(), ClientError> {
        let p = self.publish_msg(SignalType::Stream, address, value.into())?;
        self.publish(p, QoS::Fire).await
    }

    /// Sends one phase of a gesture.
    pub async fn gesture(
        &self,
        address: &str,
        id: u32,
        phase: GesturePhase,
        payload: impl Into<Value>,
    ) -> Result<(), ClientError> {
        let mut p = self.publish_msg(SignalType::Gesture, address, payload.into())?;
        p.phase = phase;
        p.id = Some(id);
        self.publish(p, QoS::Fire).await
    }

    /// Publishes a timeline: `keyframes` is an array of maps (`time` µs offset, `value`,
    /// `easing`); the relay keeps the latest per address for late joiners.
    pub async fn timeline(&self, address: &str, keyframes: Value) -> Result<(), ClientError> {
        let p = self.publish_msg(SignalType::Timeline, address, keyframes)?;
        self.publish(p, QoS::Commit).await
    }

    /// Applies SETs and events together: all or nothing. The last SET's revision.
    pub async fn bundle(&self, items: Vec<BundleItem>) -> Result<Option<u64>, ClientError> {
        self.bundle_at(items, None).await
    }

    /// A bundle the relay holds until server time `at` (µs; see [`Client::time`]).
    pub async fn bundle_at(
        &self,
        items: Vec<BundleItem>,
        at: Option<u64>,
    ) -> Result<Option<u64>, ClientError> {
        let mut messages = Vec::with_capacity(items.len());
        for item in items {
            messages.push(match item {
                BundleItem::Set(a, v) => {
                    clasp_proto::Message::Set(clasp_proto::Set::new(Address::parse(&a)?, v))
                }
                BundleItem::Emit(a, v) => {
                    let mut p = self.publish_msg(SignalType::Event, &a, v)?;
                    p.timestamp = None;
                    clasp_proto::Message::Publish(p)
                }
            });
        }
        let bundle = clasp_proto::Bundle {
            timestamp: at,
            messages,
        };
        // A scheduled bundle is acknowledged when it runs.
        let wait = at.map_or(Duration::ZERO, |t| {
            Duration::from_micros(t.saturating_sub(self.time()))
        });
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Bundle { bundle, reply: tx })
            .await
            .map_err(|_| ClientError::Closed)?;
        let deadline = self.timeout + wait;
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout(deadline)),
        }
    }

    /// Announced signals matching `pattern`.
    pub async fn query(&self, pattern: &str) -> Result<Vec<SignalInfo>, ClientError> {
        let pattern = Pattern::compile(pattern)?;
        self.request(|reply| Command::Query { pattern, reply })
            .await
    }

    /// Journal entries matching `pattern` between `from` and `to` (µs). Fails with the
    /// relay's ERROR 501 when it has no journal.
    pub async fn replay(
        &self,
        pattern: &str,
        from: Option<u64>,
        to: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Vec<Update>, ClientError> {
        self.replay_types(pattern, from, to, limit, TypeMask::ALL)
            .await
    }

    /// [`Client::replay`] of only the signal types in `types`.
    pub async fn replay_types(
        &self,
        pattern: &str,
        from: Option<u64>,
        to: Option<u64>,
        limit: Option<u32>,
        types: TypeMask,
    ) -> Result<Vec<Update>, ClientError> {
        let replay = clasp_proto::Replay {
            pattern: Pattern::compile(pattern)?,
            from,
            to,
            limit,
            types,
        };
        self.request(|reply| Command::Replay { replay, reply })
            .await
    }

    /// One SYNC round: refines the clock offset; returns (round trip, offset) in µs.
    pub async fn sync(&self) -> Result<(u64, i64), ClientError> {
        self.request(|reply| Command::Sync { reply }).await
    }

    /// Round trip of a PING in µs.
    pub async fn ping(&self) -> Result<u64, ClientError> {
        self.request(|reply| Command::Ping { reply }).await
    }

    /// Closes the connection (no reconnection).
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
    }
}

/// A live subscription: a stream of [`Update`]s. Dropping it unsubscribes.
pub struct Subscription {
    id: u32,
    updates: mpsc::Receiver<Update>,
    commands: mpsc::Sender<Command>,
}

impl Subscription {
    /// The next update; `None` once the client is closed.
    pub async fn next(&mut self) -> Option<Update> {
        self.updates.recv().await
    }

    /// The next update within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Update> {
        tokio::time::timeout(within, self.updates.recv())
            .await
            .ok()
            .flatten()
    }

    /// Subscription id on the wire.
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl futures_util::Stream for Subscription {
    type Item = Update;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Update>> {
        self.updates.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.commands.try_send(Command::Unsubscribe { id: self.id });
    }
}

/// A callback subscription from [`Client::on`]; dropping it stops the callback.
pub struct Listener {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
