//! Command-line interface (clap derive). Flags map one to one onto `RelayConfig`.

use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use clasp_actors::{ConflictStrategy, Eviction, RelayConfig};
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
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a relay: the router official CLASP clients connect to over WebSocket.
    Relay(RelayArgs),
    /// Talk to a relay as a client.
    #[command(flatten)]
    Client(crate::client_cmd::ClientCommand),
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
        Ok(RelayConfig {
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
            ..defaults
        })
    }
}

/// Logging: `RUST_LOG` wins, else the flag; `LOG_FORMAT=json` gives JSON lines.
pub fn init_logging(level: &str, verbose: bool) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let default = if verbose { "debug" } else { level };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default))
        .with_context(|| format!("invalid log level {default:?}"))?;
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("logging setup failed: {e}"))
}
