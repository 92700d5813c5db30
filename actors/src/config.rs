//! Relay settings, independent of how they were given (flags now, a config file later).

use std::path::PathBuf;
use std::time::Duration;

use clasp_proto::Pattern;

/// What to do when a new param would exceed `max_params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Eviction {
    /// Evict the least recently used (written or read) param.
    #[default]
    Lru,
    /// Evict the oldest-created param.
    Oldest,
    /// Refuse the new param with ERROR 400.
    Reject,
}

/// How concurrent writes to one param are resolved (FEATURES ST-12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictStrategy {
    /// Last writer wins.
    #[default]
    Lww,
    /// Keep the larger number; a lower write is rejected.
    Max,
    /// Keep the smaller number; a higher write is rejected.
    Min,
    /// Only the session holding the lock may write; the first writer takes it.
    Lock,
    /// Accept everything; maps are merged key by key.
    Merge,
}

impl std::str::FromStr for ConflictStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "lww" => Self::Lww,
            "max" => Self::Max,
            "min" => Self::Min,
            "lock" => Self::Lock,
            "merge" => Self::Merge,
            other => {
                return Err(format!(
                    "unknown conflict strategy {other:?} (lww|max|min|lock|merge)"
                ))
            }
        })
    }
}

/// Everything the relay needs to run.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Bind address.
    pub host: String,
    /// WebSocket + HTTP port.
    pub port: u16,
    /// Name sent in WELCOME.
    pub name: String,
    /// Concurrent sessions (0 = unlimited).
    pub max_sessions: usize,
    /// A session with no inbound traffic (frames, WS pongs) for this long is closed. The
    /// relay pings every third of it, so only dead peers hit it.
    pub session_timeout: Duration,
    /// Time a new connection has to send HELLO.
    pub hello_timeout: Duration,
    /// Default param lifetime since last use (`None` = params live until evicted).
    pub param_ttl: Option<Duration>,
    /// Maximum params (0 = unlimited).
    pub max_params: usize,
    /// Eviction policy at `max_params`.
    pub eviction: Eviction,
    /// Number of state shards.
    pub shards: usize,
    /// How long SIGTERM/SIGINT waits for sessions to finish.
    pub drain_timeout: Duration,
    /// Per-pattern conflict strategies (first match wins; default LWW).
    pub strategies: Vec<(Pattern, ConflictStrategy)>,
    /// Outbound frames queued per session before back-pressure rules apply.
    pub session_queue: usize,
    /// Subscriptions per session.
    pub max_subscriptions: usize,
    /// How often open gestures' buffered moves are flushed.
    pub gesture_flush: Duration,
    /// Authentication; `None` is the open mode where every client may do anything.
    pub auth: Option<AuthConfig>,
    /// Certificate and key (PEM) for `wss://` and `https://` on the same port.
    pub tls: Option<TlsFiles>,
    /// Rules file (`--rules`): reactive automation run by the `Rules` actor.
    pub rules: Option<PathBuf>,
    /// Longest chain of rules triggering rules before it is halted (`--rules-max-chain`).
    pub rules_max_chain: usize,
    /// App config (`--app-config`): write rules, visibility and redaction enforced by sessions.
    pub app_config: Option<std::sync::Arc<crate::appconfig::AppConfig>>,
    /// The file the app config came from: SIGHUP reloads it.
    pub app_config_path: Option<PathBuf>,
    /// Append-only log of accepted SETs and PUBLISHes; REPLAY needs it.
    pub journal: Option<JournalConfig>,
    /// Periodic state snapshots restored at start.
    pub persist: Option<PersistConfig>,
    /// Federation with other relays (`--federation-*`); `None`: a hub only, named after the
    /// relay, that accepts leaves.
    pub federation: Option<crate::federation::FederationConfig>,
    /// mDNS, broadcast and rendezvous (all off by default; `clasp relay` turns some on).
    pub discovery: crate::discovery::DiscoveryConfig,
}

/// When a journal entry counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JournalSync {
    /// Every entry is committed on its own before anything else happens.
    Always,
    /// Entries are group-committed at least every few milliseconds.
    #[default]
    Batch,
}

/// `--journal` settings.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// redb file.
    pub path: PathBuf,
    /// Commit policy.
    pub sync: JournalSync,
    /// Entries older than this are compacted away (once a snapshot covers them).
    pub max_age: Option<Duration>,
    /// The log is kept under this many bytes of entries (oldest go first).
    pub max_bytes: Option<u64>,
    /// Signal types journaled.
    pub types: clasp_proto::TypeMask,
    /// How often retention runs.
    pub compact_every: Duration,
    /// Time between state snapshots into the journal file when there is no `--persist`.
    pub snapshot_every: Duration,
}

impl JournalConfig {
    /// Defaults for a journal at `path`.
    pub fn at(path: PathBuf) -> Self {
        Self {
            path,
            sync: JournalSync::Batch,
            max_age: None,
            max_bytes: None,
            types: clasp_proto::TypeMask::ALL,
            compact_every: Duration::from_secs(60),
            snapshot_every: Duration::from_secs(30),
        }
    }
}

/// `--persist` settings.
#[derive(Debug, Clone)]
pub struct PersistConfig {
    /// redb file (may be the journal's).
    pub path: PathBuf,
    /// Time between snapshots (also taken at shutdown).
    pub interval: Duration,
}

/// PEM files of the relay's TLS identity.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Authenticated mode (WIRE §10, FEATURES AU-*): HELLO must carry a token.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// redb file holding users, token hashes and entities.
    pub db: PathBuf,
    /// Lifetime of issued CPSK tokens.
    pub token_ttl: Duration,
    /// Admin token file: read when it exists, else created (mode 0600) with a new token.
    pub admin_token_file: Option<PathBuf>,
    /// Trust anchors for capability tokens: key files or 64-hex public keys.
    pub trust_anchors: Vec<String>,
    /// Longest capability delegation chain accepted.
    pub cap_max_depth: usize,
    /// Entity tokens older than this are refused as expired (`None`: no limit).
    pub entity_token_max_age: Option<Duration>,
    /// Scopes issued on register, login and guest; `{userId}` is replaced by the user id.
    pub user_scopes: Vec<String>,
    /// Failed logins allowed per client address and per username in `rate_window`.
    pub login_max_attempts: usize,
    /// Registrations (and guest tokens) allowed per client address in `rate_window`.
    pub register_max_attempts: usize,
    /// Window of the two limits above.
    pub rate_window: Duration,
    /// Extra port serving only the auth and registry HTTP API.
    pub auth_port: Option<u16>,
    /// Origins allowed to call the auth API from a browser (empty: any, with a warning).
    pub cors_origins: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            db: PathBuf::from("clasp-auth.redb"),
            token_ttl: Duration::from_secs(86_400),
            admin_token_file: None,
            trust_anchors: Vec::new(),
            cap_max_depth: 5,
            entity_token_max_age: None,
            user_scopes: vec!["read:/**".into(), "write:/**".into()],
            login_max_attempts: 5,
            register_max_attempts: 10,
            rate_window: Duration::from_secs(60),
            auth_port: None,
            cors_origins: Vec::new(),
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: clasp_proto::DEFAULT_PORT,
            name: "CLASP Relay".into(),
            max_sessions: 1000,
            session_timeout: Duration::from_secs(300),
            hello_timeout: Duration::from_secs(10),
            param_ttl: Some(Duration::from_secs(3600)),
            max_params: 100_000,
            eviction: Eviction::Lru,
            shards: std::thread::available_parallelism().map_or(2, |n| n.get()),
            drain_timeout: Duration::from_secs(30),
            strategies: Vec::new(),
            session_queue: 4096,
            max_subscriptions: 1000,
            gesture_flush: Duration::from_millis(16),
            auth: None,
            tls: None,
            rules: None,
            rules_max_chain: 8,
            app_config: None,
            app_config_path: None,
            journal: None,
            persist: None,
            federation: None,
            discovery: Default::default(),
        }
    }
}

impl RelayConfig {
    /// The conflict strategy for `address`.
    pub fn strategy_for(&self, address: &str) -> ConflictStrategy {
        self.strategies
            .iter()
            .find(|(p, _)| p.matches(address))
            .map_or(ConflictStrategy::Lww, |(_, s)| *s)
    }
}
