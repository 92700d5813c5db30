//! Command-line interface (clap derive). Flags map one to one onto `RelayConfig`.

use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use clasp_actors::{AuthConfig, ConflictStrategy, Eviction, RelayConfig};
use clasp_proto::Pattern;

/// CLASP: a real-time signal router and protocol bridge.
#[derive(Debug, Parser)]
#[command(name = "clasp", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Relay connection (client subcommands).
    #[command(flatten)]
    pub conn: crate::client_cmd::Conn,
}

/// Subcommands.
// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a relay: the router official CLASP clients connect to over WebSocket.
    Relay(RelayArgs),
    /// Get, use and revoke CPSK tokens through a relay's auth API.
    #[command(subcommand)]
    Auth(crate::auth_cmd::AuthCommand),
    /// Ed25519 keys for capability and entity tokens.
    #[command(subcommand)]
    Key(crate::token_cmd::KeyCommand),
    /// Make and check capability (cap_) and entity (ent_) tokens offline.
    #[command(subcommand)]
    Token(crate::token_cmd::TokenCommand),
    /// Talk to a relay as a client.
    #[command(flatten)]
    Client(crate::client_cmd::ClientCommand),
    /// Run one protocol bridge as a client of a (remote) relay.
    #[command(flatten)]
    Bridge(crate::bridge_cmd::BridgeCommand),
    /// Check a relay config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List the relays mDNS, UDP broadcast and rendezvous services find (docs/discovery.md).
    Discover(crate::discovery_cmd::DiscoverArgs),
}

/// `clasp config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a config file with every key, its help and default, commented out.
    Example,
    /// Validate a relay config file: every key, value and bridge, with the line of each error.
    Check {
        /// The TOML file.
        file: std::path::PathBuf,
    },
}

/// Eviction policy names on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EvictionArg {
    /// Evict the least recently used param.
    Lru,
    /// Evict the oldest param.
    Oldest,
    /// Refuse new params with ERROR 400.
    Reject,
}

/// `clasp relay` flags.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// TOML file with any of these flags (as keys) and `[[bridge]]` tables; flags and
    /// CLASP_* variables override it (docs/operations.md, deploy/clasp.example.toml).
    #[arg(long, value_name = "FILE", env = "CLASP_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0", env = "CLASP_HOST")]
    pub host: String,
    /// WebSocket and HTTP port.
    #[arg(short = 'p', long = "ws-port", alias = "port", default_value_t = clasp_proto::DEFAULT_PORT, env = "CLASP_PORT")]
    pub ws_port: u16,
    /// Router name sent to clients in WELCOME.
    #[arg(short = 'n', long, default_value = "CLASP Relay")]
    pub name: String,
    /// Maximum concurrent sessions (0 = unlimited); extra connections get ERROR 501 and are closed.
    #[arg(long, default_value_t = 1000)]
    pub max_sessions: usize,
    /// Seconds without any traffic from a client (the relay pings every third of it) before its session is closed.
    #[arg(long, default_value_t = 300)]
    pub session_timeout: u64,
    /// Seconds an unused param lives (0 = forever).
    #[arg(long, default_value_t = 3600)]
    pub param_ttl: u64,
    /// Disable the default param lifetime (per-SET TTLs still apply).
    #[arg(long)]
    pub no_ttl: bool,
    /// Maximum number of params (0 = unlimited).
    #[arg(long, default_value_t = 100_000)]
    pub max_params: usize,
    /// What happens at --max-params.
    #[arg(long, value_enum, default_value = "lru")]
    pub eviction: EvictionArg,
    /// State shards (default: number of cores).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Seconds SIGTERM/SIGINT waits for sessions to close.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
    /// Conflict strategy for params matching a pattern, as PATTERN=lww|max|min|lock|merge (repeatable; first match wins).
    #[arg(long = "strategy", value_name = "PATTERN=STRATEGY")]
    pub strategies: Vec<String>,
    /// Log level (error, warn, info, debug, trace) or a RUST_LOG-style filter; RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Debug logging (same as --log-level debug).
    #[arg(short, long)]
    pub verbose: bool,
    /// Log lines for people (text) or for log shippers (json, one object per line).
    #[arg(long, value_enum, default_value = "text", env = "CLASP_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// TLS certificate chain (PEM): serve wss:// and https:// on the same port (needs --tls-key).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "CLASP_TLS_CERT"
    )]
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM) for --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "CLASP_TLS_KEY"
    )]
    pub tls_key: Option<std::path::PathBuf>,
    /// Rules file (JSON, or TOML if it ends in .toml): triggers, conditions and actions run by the relay (docs/rules.md). Reloaded on SIGHUP and POST /api/v1/rules/reload.
    #[arg(long, value_name = "FILE", env = "CLASP_RULES")]
    pub rules: Option<std::path::PathBuf>,
    /// Longest chain of rules triggering rules (A sets what B watches...) before it is halted as a loop.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub rules_max_chain: u64,
    /// App config (JSON): write rules, visibility, redaction, scope templates, rate limits, per-address strategy and TTL (docs/app-config.md). Default: the only *.json in /etc/clasp, else in ./config.
    #[arg(long, value_name = "FILE", env = "CLASP_APP_CONFIG")]
    pub app_config: Option<std::path::PathBuf>,
    /// Authentication settings.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Journal and persistence settings.
    #[command(flatten)]
    pub durability: DurabilityArgs,
    /// Federation with other relays.
    #[command(flatten)]
    pub federation: FederationArgs,
    /// Bridges run inside the relay.
    #[command(flatten)]
    pub bridges: crate::bridge_cmd::EmbeddedBridges,
    /// mDNS, broadcast and rendezvous settings.
    #[command(flatten)]
    pub discovery: crate::discovery_cmd::DiscoveryArgs,
}

/// `clasp relay` federation flags (docs/federation.md). Every relay accepts leaves; these
/// make it a leaf of one or more hubs and say what it owns.
#[derive(Debug, Args)]
pub struct FederationArgs {
    /// Hub to join as a leaf (ws:// or wss://); repeat it for failover, tried in order.
    #[arg(long = "federation-hub", value_name = "URL")]
    pub federation_hubs: Vec<String>,
    /// This router's id in the federation [default: HOSTNAME:PORT]. Keep it stable: a hub
    /// keeps a namespace for its owner's id while the owner is away.
    #[arg(long = "federation-id", value_name = "ID")]
    pub federation_id: Option<String>,
    /// A namespace this router owns, e.g. '/site-a/**' (repeatable). Others mirror it and
    /// forward writes there to this router.
    #[arg(long = "federation-namespace", value_name = "PATTERN")]
    pub federation_namespaces: Vec<String>,
    /// File holding the shared federation secret: sent to hubs, and required from routers
    /// that connect here (unless their token passes --auth).
    #[arg(long = "federation-token", value_name = "FILE")]
    pub federation_token: Option<std::path::PathBuf>,
    /// Milliseconds a write forwarded to its owner waits for the answer before ERROR 502.
    #[arg(long = "federation-timeout", value_name = "MS", default_value_t = 5000)]
    pub federation_timeout: u64,
    /// CA certificate (PEM) for wss:// hubs with a private certificate.
    #[arg(long = "federation-ca", value_name = "FILE")]
    pub federation_ca: Option<std::path::PathBuf>,
}

impl FederationArgs {
    /// Federation settings for a relay on `port`.
    pub fn into_config(
        self,
        port: u16,
    ) -> anyhow::Result<Option<clasp_actors::federation::FederationConfig>> {
        let configured = !self.federation_hubs.is_empty()
            || self.federation_id.is_some()
            || !self.federation_namespaces.is_empty()
            || self.federation_token.is_some();
        if !configured {
            return Ok(None);
        }
        let id = match self.federation_id {
            Some(id) if id.trim().is_empty() => bail!("--federation-id must not be empty"),
            Some(id) => id,
            None => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default();
                let host = if host.is_empty() {
                    "relay".to_string()
                } else {
                    host
                };
                format!("{host}:{port}")
            }
        };
        let mut config = clasp_actors::federation::FederationConfig::new(id);
        for hub in &self.federation_hubs {
            if !(hub.starts_with("ws://") || hub.starts_with("wss://")) {
                bail!("--federation-hub {hub:?}: expected a ws:// or wss:// URL");
            }
        }
        config.hubs = self.federation_hubs;
        for n in &self.federation_namespaces {
            let p = Pattern::compile(n).with_context(|| format!("--federation-namespace {n:?}"))?;
            if let Some(other) = config.namespaces.iter().find(|o| o.overlaps(&p)) {
                bail!("--federation-namespace {n:?} overlaps {:?}", other.as_str());
            }
            config.namespaces.push(p);
        }
        if let Some(path) = &self.federation_token {
            let secret = std::fs::read_to_string(path)
                .with_context(|| format!("--federation-token {}", path.display()))?;
            let secret = secret.trim().to_string();
            if secret.is_empty() {
                bail!("--federation-token {}: the file is empty", path.display());
            }
            config.token = Some(secret);
        }
        if self.federation_timeout == 0 {
            bail!("--federation-timeout must be at least 1 ms");
        }
        config.forward_timeout = Duration::from_millis(self.federation_timeout);
        config.ca_file = self.federation_ca;
        Ok(Some(config))
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// When journal entries are durable.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum JournalSyncArg {
    /// Commit each entry before anything else.
    Always,
    /// Group-commit at least every 10 ms (ACKs still wait for the commit).
    Batch,
}

/// `clasp relay` journal and persistence flags (docs/persistence.md).
#[derive(Debug, Args)]
pub struct DurabilityArgs {
    /// Append every accepted SET and PUBLISH to this redb file; enables REPLAY and exact recovery.
    #[arg(long, value_name = "FILE", env = "CLASP_JOURNAL")]
    pub journal: Option<std::path::PathBuf>,
    /// When an entry is durable (Confirm/Commit ACKs wait for it).
    #[arg(long, value_enum, default_value = "batch")]
    pub journal_sync: JournalSyncArg,
    /// Drop journal entries older than this many seconds (once a snapshot covers them).
    #[arg(long, value_name = "SECS")]
    pub journal_max_age: Option<u64>,
    /// Keep the journal under this many bytes of entries, oldest dropped first.
    #[arg(long, value_name = "BYTES")]
    pub journal_max_bytes: Option<u64>,
    /// Seconds between retention runs.
    #[arg(long, default_value_t = 60, hide = true)]
    pub journal_compact_every: u64,
    /// Signal types journaled, comma-separated: param,event,stream,gesture,timeline (default all).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub journal_types: Vec<String>,
    /// Snapshot param state to this redb file (may be the journal file) and restore it at start.
    #[arg(long, value_name = "FILE", env = "CLASP_PERSIST")]
    pub persist: Option<std::path::PathBuf>,
    /// Seconds between snapshots (one is also taken at shutdown); with only --journal they go into the journal file.
    #[arg(long, default_value_t = 30)]
    pub persist_interval: u64,
}

impl DurabilityArgs {
    /// Journal and persistence settings.
    pub fn into_config(
        self,
    ) -> anyhow::Result<(
        Option<clasp_actors::JournalConfig>,
        Option<clasp_actors::PersistConfig>,
    )> {
        let journal = match self.journal {
            None => None,
            Some(path) => {
                let mut j = clasp_actors::JournalConfig::at(path);
                j.sync = match self.journal_sync {
                    JournalSyncArg::Always => clasp_actors::JournalSync::Always,
                    JournalSyncArg::Batch => clasp_actors::JournalSync::Batch,
                };
                j.max_age = self.journal_max_age.map(Duration::from_secs);
                j.max_bytes = self.journal_max_bytes;
                j.compact_every = Duration::from_secs(self.journal_compact_every.max(1));
                j.snapshot_every = Duration::from_secs(self.persist_interval.max(1));
                if !self.journal_types.is_empty() {
                    let mut mask = 0u8;
                    for t in &self.journal_types {
                        mask |= match t.trim().to_ascii_lowercase().as_str() {
                            "param" => 0x01,
                            "event" => 0x02,
                            "stream" => 0x04,
                            "gesture" => 0x08,
                            "timeline" => 0x10,
                            other => bail!("--journal-types: unknown signal type {other:?} (param, event, stream, gesture, timeline)"),
                        };
                    }
                    j.types = clasp_proto::TypeMask(mask);
                }
                Some(j)
            }
        };
        let persist = self.persist.map(|path| clasp_actors::PersistConfig {
            path,
            interval: Duration::from_secs(self.persist_interval.max(1)),
        });
        Ok((journal, persist))
    }
}

/// `clasp relay` authentication flags (WIRE §10; docs/auth.md).
#[derive(Debug, Args)]
pub struct AuthArgs {
    /// Require a token in HELLO (CPSK, capability or entity); off = every client may do anything.
    #[arg(long, env = "CLASP_AUTH")]
    pub auth: bool,
    /// Also serve the auth and registry HTTP API on this port (implies --auth).
    #[arg(long)]
    pub auth_port: Option<u16>,
    /// redb file for users, token hashes and entities.
    #[arg(
        long,
        alias = "registry-db",
        default_value = "clasp-auth.redb",
        env = "CLASP_AUTH_DB"
    )]
    pub auth_db: std::path::PathBuf,
    /// Lifetime of tokens issued by register, login and guest, in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub token_ttl: u64,
    /// Admin token file: read if it exists, else created (mode 0600) with a new token.
    #[arg(long, value_name = "FILE")]
    pub admin_token: Option<std::path::PathBuf>,
    /// Trust anchor for capability tokens: a public key file (.pub, hex), a key file, or 64 hex digits (repeatable).
    #[arg(long = "trust-anchor", value_name = "FILE|HEX")]
    pub trust_anchors: Vec<String>,
    /// Longest capability delegation chain accepted.
    #[arg(long, default_value_t = 5)]
    pub cap_max_depth: usize,
    /// Refuse entity tokens minted more than this many seconds ago (0 = no limit).
    #[arg(long, default_value_t = 0)]
    pub entity_token_max_age: u64,
    /// Scopes given to registered users and guests ({userId} is replaced), comma-separated.
    #[arg(long, default_value = "read:/**,write:/**")]
    pub user_scopes: String,
    /// Failed logins allowed per client address and per username per minute (0 = no limit).
    #[arg(long, default_value_t = 5)]
    pub login_max_attempts: usize,
    /// Registrations and guest tokens allowed per client address per minute (0 = no limit).
    #[arg(long, default_value_t = 10)]
    pub register_max_attempts: usize,
    /// Browser origins allowed to call the HTTP API and open WebSockets, comma-separated (default: any, with a warning).
    #[arg(long, value_delimiter = ',', value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
}

impl AuthArgs {
    /// The auth settings, or `None` when the relay runs open.
    pub fn into_config(self) -> anyhow::Result<Option<AuthConfig>> {
        if !self.auth && self.auth_port.is_none() {
            return Ok(None);
        }
        let user_scopes: Vec<String> = self
            .user_scopes
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for s in &user_scopes {
            s.replace("{userId}", "x")
                .parse::<clasp_actors::auth::Scope>()
                .with_context(|| format!("--user-scopes {s:?}"))?;
        }
        Ok(Some(AuthConfig {
            db: self.auth_db,
            token_ttl: Duration::from_secs(self.token_ttl.max(1)),
            admin_token_file: self.admin_token,
            trust_anchors: self.trust_anchors,
            cap_max_depth: self.cap_max_depth,
            entity_token_max_age: (self.entity_token_max_age > 0)
                .then(|| Duration::from_secs(self.entity_token_max_age)),
            user_scopes,
            login_max_attempts: self.login_max_attempts,
            register_max_attempts: self.register_max_attempts,
            auth_port: self.auth_port,
            cors_origins: self.cors_origin,
            ..AuthConfig::default()
        }))
    }
}

impl RelayArgs {
    /// Validated configuration.
    pub fn into_config(self) -> anyhow::Result<RelayConfig> {
        let defaults = RelayConfig::default();
        let mut strategies = Vec::new();
        for s in &self.strategies {
            let Some((pattern, strategy)) = s.rsplit_once('=') else {
                bail!("--strategy {s:?}: expected PATTERN=STRATEGY");
            };
            let pattern = Pattern::compile(pattern).with_context(|| format!("--strategy {s:?}"))?;
            let strategy: ConflictStrategy = strategy.parse().map_err(anyhow::Error::msg)?;
            strategies.push((pattern, strategy));
        }
        if self.shards == Some(0) {
            bail!("--shards must be at least 1");
        }
        let app_config_path = self
            .app_config
            .clone()
            .or_else(clasp_actors::appconfig::AppConfig::discover);
        let app_config =
            clasp_actors::appconfig::AppConfig::load_or_discover(app_config_path.as_deref())
                .map_err(clasp_actors::RelayError::from)?;
        let durability = self.durability.into_config()?;
        let federation = self.federation.into_config(self.ws_port)?;
        let mut config = RelayConfig {
            host: self.host,
            port: self.ws_port,
            name: self.name,
            max_sessions: self.max_sessions,
            session_timeout: Duration::from_secs(self.session_timeout.max(1)),
            param_ttl: (!self.no_ttl && self.param_ttl > 0)
                .then(|| Duration::from_secs(self.param_ttl)),
            max_params: self.max_params,
            eviction: match self.eviction {
                EvictionArg::Lru => Eviction::Lru,
                EvictionArg::Oldest => Eviction::Oldest,
                EvictionArg::Reject => Eviction::Reject,
            },
            shards: self.shards.unwrap_or(defaults.shards),
            drain_timeout: Duration::from_secs(self.drain_timeout),
            strategies,
            discovery: self.discovery.into_config()?,
            auth: self.auth.into_config()?,
            journal: durability.0,
            persist: durability.1,
            federation,
            rules: self.rules,
            rules_max_chain: self.rules_max_chain as usize,
            tls: match (self.tls_cert, self.tls_key) {
                (Some(cert), Some(key)) => Some(clasp_actors::TlsFiles { cert, key }),
                _ => None,
            },
            ..defaults
        };
        if let Some(app) = app_config {
            app.install(&mut config);
            config.app_config_path = app_config_path;
        }
        Ok(config)
    }
}

/// Changes the log filter of a running process (SIGHUP re-reads the config file's level).
pub type LogHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// The filter for a level flag: `RUST_LOG` wins, else the flag (`--verbose` means debug).
pub fn log_filter(level: &str, verbose: bool) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    use tracing_subscriber::EnvFilter;
    let default = if verbose { "debug" } else { level };
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default))
        .with_context(|| format!("invalid log level {default:?}"))
}

/// Logging to stderr: human lines, or JSON lines with `json` (or `LOG_FORMAT=json`).
pub fn init_logging(level: &str, verbose: bool, format: LogFormat) -> anyhow::Result<LogHandle> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(log_filter(level, verbose)?);
    let json = format == LogFormat::Json
        || std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let result = if json {
        registry.with(layer.json()).try_init()
    } else {
        registry.with(layer).try_init()
    };
    result.map_err(|e| anyhow::anyhow!("logging setup failed: {e}"))?;
    Ok(handle)
}
