//! The messages of §4–§5 as types. Flag bits that only say "field present" are not stored:
//! they follow from `Option`s, so a message cannot claim a field it lacks.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{Address, Pattern, Value};

/// One CLASP message (a frame payload), whatever its encoding on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `0x01` client → router: opens a session.
    Hello(Hello),
    /// `0x02` router → client: session accepted, carries the router clock.
    Welcome(Welcome),
    /// `0x03` client → router: declares signals.
    Announce(Announce),
    /// `0x04` router ↔ router.
    FederationSync(FederationSync),
    /// `0x10`
    Subscribe(Subscribe),
    /// `0x11`
    Unsubscribe(Unsubscribe),
    /// `0x20` events, streams, gestures, timelines.
    Publish(Publish),
    /// `0x21` stateful param write.
    Set(Set),
    /// `0x22`
    Get(Get),
    /// `0x23` router → client: current state.
    Snapshot(Snapshot),
    /// `0x24` request for journal entries.
    Replay(Replay),
    /// `0x30` several messages applied together.
    Bundle(Bundle),
    /// `0x40` NTP-style clock sync.
    Sync(ClockSync),
    /// `0x41`
    Ping,
    /// `0x42`
    Pong,
    /// `0x50` router → client.
    Ack(Ack),
    /// `0x51` router → client.
    Error(ErrorMessage),
    /// `0x60` asks for announced signals.
    Query(Query),
    /// `0x61` answer to QUERY.
    Result(QueryResult),
}

/// Message type codes of §4.
#[allow(missing_docs)]
pub mod code {
    pub const HELLO: u8 = 0x01;
    pub const WELCOME: u8 = 0x02;
    pub const ANNOUNCE: u8 = 0x03;
    pub const FEDERATION_SYNC: u8 = 0x04;
    pub const SUBSCRIBE: u8 = 0x10;
    pub const UNSUBSCRIBE: u8 = 0x11;
    pub const PUBLISH: u8 = 0x20;
    pub const SET: u8 = 0x21;
    pub const GET: u8 = 0x22;
    pub const SNAPSHOT: u8 = 0x23;
    pub const REPLAY: u8 = 0x24;
    pub const BUNDLE: u8 = 0x30;
    pub const SYNC: u8 = 0x40;
    pub const PING: u8 = 0x41;
    pub const PONG: u8 = 0x42;
    pub const ACK: u8 = 0x50;
    pub const ERROR: u8 = 0x51;
    pub const QUERY: u8 = 0x60;
    pub const RESULT: u8 = 0x61;
}

impl Message {
    /// The §4 type code, used for logs, metrics and the wire.
    pub fn type_code(&self) -> u8 {
        match self {
            Self::Hello(_) => code::HELLO,
            Self::Welcome(_) => code::WELCOME,
            Self::Announce(_) => code::ANNOUNCE,
            Self::FederationSync(_) => code::FEDERATION_SYNC,
            Self::Subscribe(_) => code::SUBSCRIBE,
            Self::Unsubscribe(_) => code::UNSUBSCRIBE,
            Self::Publish(_) => code::PUBLISH,
            Self::Set(_) => code::SET,
            Self::Get(_) => code::GET,
            Self::Snapshot(_) => code::SNAPSHOT,
            Self::Replay(_) => code::REPLAY,
            Self::Bundle(_) => code::BUNDLE,
            Self::Sync(_) => code::SYNC,
            Self::Ping => code::PING,
            Self::Pong => code::PONG,
            Self::Ack(_) => code::ACK,
            Self::Error(_) => code::ERROR,
            Self::Query(_) => code::QUERY,
            Self::Result(_) => code::RESULT,
        }
    }

    /// Upper-case name as in §4 and in MessagePack `type` keys.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hello(_) => "HELLO",
            Self::Welcome(_) => "WELCOME",
            Self::Announce(_) => "ANNOUNCE",
            Self::FederationSync(_) => "FEDERATION_SYNC",
            Self::Subscribe(_) => "SUBSCRIBE",
            Self::Unsubscribe(_) => "UNSUBSCRIBE",
            Self::Publish(_) => "PUBLISH",
            Self::Set(_) => "SET",
            Self::Get(_) => "GET",
            Self::Snapshot(_) => "SNAPSHOT",
            Self::Replay(_) => "REPLAY",
            Self::Bundle(_) => "BUNDLE",
            Self::Sync(_) => "SYNC",
            Self::Ping => "PING",
            Self::Pong => "PONG",
            Self::Ack(_) => "ACK",
            Self::Error(_) => "ERROR",
            Self::Query(_) => "QUERY",
            Self::Result(_) => "RESULT",
        }
    }
}

/// HELLO/WELCOME feature byte (§3.5). Kept as the raw byte so unknown bits survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FeatureSet(pub u8);

impl FeatureSet {
    /// Params.
    pub const PARAM: u8 = 0x80;
    /// Events.
    pub const EVENT: u8 = 0x40;
    /// Streams.
    pub const STREAM: u8 = 0x20;
    /// Gestures.
    pub const GESTURE: u8 = 0x10;
    /// Timelines.
    pub const TIMELINE: u8 = 0x08;
    /// Federation peer (HELLO only).
    pub const FEDERATION: u8 = 0x04;
    /// What the official clients announce by default (param, event, stream).
    pub const CLIENT_DEFAULT: FeatureSet = FeatureSet(0xE0);
    /// What a router announces: the five signal types.
    pub const ROUTER_DEFAULT: FeatureSet = FeatureSet(0xF8);

    /// Whether every bit of `bits` is set.
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

/// Signal types (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalType {
    /// Stateful value.
    Param = 0,
    /// One-off occurrence.
    Event = 1,
    /// High-rate continuous data.
    Stream = 2,
    /// Phased interaction (start/move/end/cancel).
    Gesture = 3,
    /// Time-based automation.
    Timeline = 4,
}

impl SignalType {
    /// Decoders map unknown codes 5‥7 to `Event` (§3.3).
    pub fn from_code(code: u8) -> Self {
        match code & 0x07 {
            0 => Self::Param,
            2 => Self::Stream,
            3 => Self::Gesture,
            4 => Self::Timeline,
            _ => Self::Event,
        }
    }

    /// The wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Lower-case name, as in MessagePack payloads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Param => "param",
            Self::Event => "event",
            Self::Stream => "stream",
            Self::Gesture => "gesture",
            Self::Timeline => "timeline",
        }
    }

    /// Parses a lower-case name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "param" => Self::Param,
            "event" => Self::Event,
            "stream" => Self::Stream,
            "gesture" => Self::Gesture,
            "timeline" => Self::Timeline,
            _ => return None,
        })
    }

    /// The bit of a SUBSCRIBE/REPLAY type mask that selects this type (§3.5).
    pub fn mask_bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Gesture phases (§3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GesturePhase {
    /// Also what non-gesture publishes carry.
    #[default]
    Start = 0,
    /// Update.
    Move = 1,
    /// Finished.
    End = 2,
    /// Aborted.
    Cancel = 3,
}

impl GesturePhase {
    /// Codes 4‥7 decode as `Start` (§3.4).
    pub fn from_code(code: u8) -> Self {
        match code & 0x07 {
            1 => Self::Move,
            2 => Self::End,
            3 => Self::Cancel,
            _ => Self::Start,
        }
    }

    /// Lower-case name, as in MessagePack payloads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Move => "move",
            Self::End => "end",
            Self::Cancel => "cancel",
        }
    }

    /// Parses a lower-case name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "start" => Self::Start,
            "move" => Self::Move,
            "end" => Self::End,
            "cancel" => Self::Cancel,
            _ => return None,
        })
    }
}

/// SUBSCRIBE/REPLAY signal type filter (§3.5). Raw byte kept so it round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeMask(pub u8);

impl TypeMask {
    /// Every type (what both official clients send).
    pub const ALL: TypeMask = TypeMask(0xFF);

    /// Whether signals of type `signal` pass. A mask with no recognised bit set means "all"
    /// (upstream quirk, kept for compatibility).
    pub fn includes(self, signal: SignalType) -> bool {
        self.0 & 0x1F == 0 || self.0 & signal.mask_bit() != 0
    }
}

impl Default for TypeMask {
    fn default() -> Self {
        Self::ALL
    }
}

/// `0x01` HELLO (§5.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    /// Clients send 1.
    pub version: u8,
    /// What the client can take.
    pub features: FeatureSet,
    /// Client name.
    pub name: String,
    /// Credentials; an empty string on the wire is `None`.
    pub token: Option<String>,
}

/// `0x02` WELCOME (§5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    /// Router protocol version (1).
    pub version: u8,
    /// Router features.
    pub features: FeatureSet,
    /// Router wall clock, µs since the Unix epoch.
    pub time: u64,
    /// Session id (opaque to clients).
    pub session: String,
    /// Router name.
    pub name: String,
    /// Token handed back; `None` is written as an empty string.
    pub token: Option<String>,
}

/// `0x03` ANNOUNCE (§5.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Announce {
    /// Namespace the signals belong to.
    pub namespace: String,
    /// Declared signals.
    pub signals: Vec<SignalDef>,
}

/// One announced signal. Its address may itself contain wildcards.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalDef {
    /// Address or address pattern.
    pub address: String,
    /// Signal type.
    pub signal: SignalType,
    /// e.g. `f32`.
    pub datatype: Option<String>,
    /// e.g. `rw`.
    pub access: Option<String>,
    /// Presentation hints.
    pub meta: Option<SignalMeta>,
}

/// Optional ANNOUNCE metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SignalMeta {
    /// Unit name.
    pub unit: Option<String>,
    /// (min, max).
    pub range: Option<(f64, f64)>,
    /// Default value.
    pub default: Option<Value>,
    /// Human description.
    pub description: Option<String>,
}

/// Federation operations (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FederationOp {
    /// Leaf declares the namespaces it owns.
    DeclareNamespaces = 1,
    /// Ask for a snapshot of patterns.
    RequestSync = 2,
    /// (address, revision) pairs for catch-up.
    RevisionVector = 3,
    /// Sync finished.
    SyncComplete = 4,
}

impl FederationOp {
    /// Other codes are a decode error (§5.4).
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::DeclareNamespaces,
            2 => Self::RequestSync,
            3 => Self::RevisionVector,
            4 => Self::SyncComplete,
            _ => return None,
        })
    }
}

/// `0x04` FEDERATION_SYNC (§5.4).
#[derive(Debug, Clone, PartialEq)]
pub struct FederationSync {
    /// What this message does.
    pub op: FederationOp,
    /// Namespaces or requested patterns.
    pub patterns: Vec<Pattern>,
    /// Revision vector entries.
    pub revisions: Vec<(Address, u64)>,
    /// Only changes after this revision.
    pub since_revision: Option<u64>,
    /// Originating router id.
    pub origin: Option<String>,
}

/// SUBSCRIBE delivery options (§5.5).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SubscribeOptions {
    /// Max deliveries per second.
    pub max_rate: Option<u32>,
    /// Dead-band for numeric updates.
    pub epsilon: Option<f64>,
    /// History entries wanted.
    pub history: Option<u32>,
    /// Window (ms).
    pub window: Option<u32>,
}

/// `0x10` SUBSCRIBE (§5.5).
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    /// Client-chosen id, per session.
    pub id: u32,
    /// What to receive.
    pub pattern: Pattern,
    /// Which signal types.
    pub types: TypeMask,
    /// Delivery options.
    pub options: SubscribeOptions,
}

/// `0x11` UNSUBSCRIBE (§5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Id given at SUBSCRIBE.
    pub id: u32,
}

/// What a PUBLISH carries (value indicator of §5.8).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Payload {
    /// Indicator 0 (or any unknown indicator).
    #[default]
    None,
    /// Indicator 1: one value.
    Value(Value),
    /// Indicator 2: f64 samples.
    Samples(Vec<f64>),
}

/// `0x20` PUBLISH (§5.8).
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    /// Signal type.
    pub signal: SignalType,
    /// Gesture phase (`Start` for other types).
    pub phase: GesturePhase,
    /// Where.
    pub address: Address,
    /// What.
    pub payload: Payload,
    /// µs, sender's idea of router time.
    pub timestamp: Option<u64>,
    /// Gesture id.
    pub id: Option<u32>,
    /// Sample rate; on the wire it has no flag (present iff 4 bytes remain).
    pub rate: Option<u32>,
}

/// SET time-to-live word (§5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ttl {
    /// Raw 0.
    Never,
    /// Seconds since the last write.
    Sliding(u32),
    /// Seconds since the last write's timestamp; bit 31 on the wire.
    Absolute(u32),
}

impl Ttl {
    const ABSOLUTE_BIT: u32 = 0x8000_0000;

    /// Decodes the raw word.
    pub fn from_raw(raw: u32) -> Self {
        if raw == 0 {
            Self::Never
        } else if raw & Self::ABSOLUTE_BIT != 0 {
            Self::Absolute(raw & !Self::ABSOLUTE_BIT)
        } else {
            Self::Sliding(raw)
        }
    }

    /// Encodes the raw word (seconds are capped at 31 bits).
    pub fn to_raw(self) -> u32 {
        match self {
            Self::Never => 0,
            Self::Sliding(s) => s & !Self::ABSOLUTE_BIT,
            Self::Absolute(s) => Self::ABSOLUTE_BIT | (s & !Self::ABSOLUTE_BIT),
        }
    }

    /// Lifetime in seconds, `None` when the param never expires. Python's
    /// `ttl=0, absolute=True` (raw `0x80000000`) counts as never (§5.7 RECOMMENDED).
    pub fn seconds(self) -> Option<u32> {
        match self {
            Self::Never | Self::Absolute(0) | Self::Sliding(0) => None,
            Self::Sliding(s) | Self::Absolute(s) => Some(s),
        }
    }
}

/// `0x21` SET (§5.7).
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    /// Param address.
    pub address: Address,
    /// New value.
    pub value: Value,
    /// Client → router: expected current revision. Router → client: new revision.
    pub revision: Option<u64>,
    /// Acquire the lock.
    pub lock: bool,
    /// Release the lock.
    pub unlock: bool,
    /// New time-to-live.
    pub ttl: Option<Ttl>,
}

impl Set {
    /// A plain write, as the official clients send it.
    pub fn new(address: Address, value: impl Into<Value>) -> Self {
        Self {
            address,
            value: value.into(),
            revision: None,
            lock: false,
            unlock: false,
            ttl: None,
        }
    }
}

/// `0x22` GET (§5.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    /// Param address.
    pub address: Address,
}

/// One param in a SNAPSHOT (§5.10).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamState {
    /// Address.
    pub address: Address,
    /// Current value.
    pub value: Value,
    /// Current revision.
    pub revision: u64,
    /// Session id of the last writer.
    pub writer: Option<String>,
    /// µs of the last write.
    pub timestamp: Option<u64>,
}

/// `0x23` SNAPSHOT (§5.10).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// The params (may be empty).
    pub params: Vec<ParamState>,
}

/// `0x24` REPLAY (§5.11).
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// Which addresses.
    pub pattern: Pattern,
    /// From (µs).
    pub from: Option<u64>,
    /// To (µs).
    pub to: Option<u64>,
    /// Max entries.
    pub limit: Option<u32>,
    /// Which signal types.
    pub types: TypeMask,
}

/// `0x30` BUNDLE (§5.12).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bundle {
    /// Requested execution time (µs router time).
    pub timestamp: Option<u64>,
    /// Inner messages.
    pub messages: Vec<Message>,
}

/// `0x40` SYNC (§5.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSync {
    /// Client send time.
    pub t1: u64,
    /// Router receive time.
    pub t2: Option<u64>,
    /// Router send time.
    pub t3: Option<u64>,
}

/// `0x50` ACK (§5.15).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ack {
    /// Address (or namespace after ANNOUNCE).
    pub address: Option<String>,
    /// New revision.
    pub revision: Option<u64>,
    /// Lock state.
    pub locked: Option<bool>,
    /// Lock holder.
    pub holder: Option<String>,
    /// Request correlation.
    pub correlation_id: Option<u32>,
}

/// `0x51` ERROR (§5.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// §7.12 code.
    pub code: u16,
    /// Human text.
    pub message: String,
    /// Offending address or pattern.
    pub address: Option<String>,
    /// Request correlation.
    pub correlation_id: Option<u32>,
}

impl ErrorMessage {
    /// An ERROR without correlation.
    pub fn new(code: u16, message: impl Into<String>, address: Option<String>) -> Self {
        Self {
            code,
            message: message.into(),
            address,
            correlation_id: None,
        }
    }
}

/// `0x60` QUERY (§5.17).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Which announced signals.
    pub pattern: Pattern,
}

/// One signal in a RESULT (§5.18).
#[derive(Debug, Clone, PartialEq)]
pub struct SignalInfo {
    /// Address or pattern as announced.
    pub address: String,
    /// Signal type.
    pub signal: SignalType,
    /// Datatype.
    pub datatype: Option<String>,
    /// Access.
    pub access: Option<String>,
}

/// `0x61` RESULT (§5.18).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryResult {
    /// Matching signals.
    pub signals: Vec<SignalInfo>,
}
