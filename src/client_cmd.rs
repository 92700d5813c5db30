//! `clasp set|get|sub|emit|stream|query|replay|ping`: the Rust client from the shell.
//! Exit codes: 0 ok, 1 protocol or server error, 2 usage (bad address, value, pattern).

use std::time::Duration;

use clap::{Args, Subcommand};
use clasp::{Client, ClientError, SetOptions};
use clasp_proto::{Ttl, Value};
use tokio::io::AsyncBufReadExt;

/// Connection flags shared by the client subcommands.
#[derive(Debug, Args)]
pub struct Conn {
    /// Relay URL.
    #[arg(
        long,
        global = true,
        env = "CLASP_URL",
        default_value = "ws://127.0.0.1:7330"
    )]
    pub url: String,
    /// Token sent in HELLO.
    #[arg(long, global = true, env = "CLASP_TOKEN")]
    pub token: Option<String>,
    /// Seconds to wait for answers.
    #[arg(long, global = true, default_value_t = 5)]
    pub timeout: u64,
    /// Extra CA certificates (PEM) to trust for wss:// (e.g. a self-signed relay).
    #[arg(long, global = true, value_name = "FILE", env = "CLASP_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// Client subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Write a param. VALUE is JSON if it parses, else a string.
    Set {
        /// Address.
        address: String,
        /// Value.
        value: String,
        /// Expected current revision.
        #[arg(long)]
        revision: Option<u64>,
        /// Take the lock.
        #[arg(long)]
        lock: bool,
        /// Release the lock.
        #[arg(long)]
        unlock: bool,
        /// Time to live in seconds (sliding; `--absolute` for absolute).
        #[arg(long)]
        ttl: Option<u32>,
        /// The TTL counts from this write, not from the last use.
        #[arg(long, requires = "ttl")]
        absolute: bool,
    },
    /// Read a param: prints value, revision, writer.
    Get {
        /// Address.
        address: String,
    },
    /// Print updates: time, address, value, revision, writer (one line each).
    Sub {
        /// Pattern (`*` one segment, `**` any).
        pattern: String,
        /// JSON lines instead.
        #[arg(long)]
        json: bool,
        /// Stop after this many updates.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Send an event.
    Emit {
        /// Address.
        address: String,
        /// Payload (JSON or string); none = null.
        value: Option<String>,
    },
    /// Stream numbers or JSON values read from stdin, one per line.
    Stream {
        /// Address.
        address: String,
        /// At most this many values per second.
        #[arg(long, default_value_t = 60.0)]
        rate: f64,
    },
    /// List announced signals.
    Query {
        /// Pattern.
        pattern: String,
    },
    /// Print journal entries.
    Replay {
        /// Pattern.
        pattern: String,
        /// From (µs since epoch).
        #[arg(long)]
        from: Option<u64>,
        /// To (µs since epoch).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Round trip and clock offset to the relay.
    Ping,
}

/// A JSON-or-string argument as a CLASP value.
pub fn parse_value(text: &str) -> Value {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(json) => from_json(json),
        Err(_) => Value::String(text.to_string()),
    }
}

fn from_json(j: serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(a) => Value::Array(a.into_iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            Value::Map(o.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
    }
}

/// A CLASP value as JSON (bytes as an array of numbers).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => s.clone().into(),
        Value::Bytes(b) => b.clone().into(),
        Value::Array(a) => a.iter().map(to_json).collect(),
        Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// Why a client command failed, and with which exit code.
pub struct Failure {
    /// 1 or 2.
    pub code: i32,
    /// Printed to stderr.
    pub message: String,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let code = match e {
            ClientError::Address(_) | ClientError::Pattern(_) => 2,
            _ => 1,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Runs one client subcommand on a fresh tokio runtime.
pub fn run(conn: Conn, cmd: ClientCommand) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: 1,
            message: format!("cannot start the runtime: {e}"),
        })?;
    runtime.block_on(execute(conn, cmd))
}

fn check_address(a: &str) -> Result<(), Failure> {
    clasp_proto::Address::parse(a)
        .map(|_| ())
        .map_err(|e| Failure {
            code: 2,
            message: format!("invalid address {a:?}: {e}"),
        })
}

fn check_pattern(p: &str) -> Result<(), Failure> {
    clasp_proto::Pattern::compile(p)
        .map(|_| ())
        .map_err(|e| Failure {
            code: 2,
            message: format!("invalid pattern {p:?}: {e}"),
        })
}

async fn execute(conn: Conn, cmd: ClientCommand) -> Result<(), Failure> {
    // Usage errors before touching the network.
    match &cmd {
        ClientCommand::Set { address, .. }
        | ClientCommand::Get { address }
        | ClientCommand::Emit { address, .. }
        | ClientCommand::Stream { address, .. } => check_address(address)?,
        ClientCommand::Sub { pattern, .. }
        | ClientCommand::Query { pattern }
        | ClientCommand::Replay { pattern, .. } => check_pattern(pattern)?,
        ClientCommand::Ping => {}
    }
    let mut builder = Client::builder(&conn.url)
        .name("clasp-cli")
        .reconnect(false)
        .timeout(Duration::from_secs(conn.timeout));
    if let Some(t) = conn.token {
        builder = builder.token(t);
    }
    if let Some(ca) = conn.ca_cert {
        builder = builder.ca_file(ca);
    }
    let client = builder.connect().await?;
    let result = command(&client, cmd).await;
    client.close().await;
    result
}

async fn command(client: &Client, cmd: ClientCommand) -> Result<(), Failure> {
    match cmd {
        ClientCommand::Set {
            address,
            value,
            revision,
            lock,
            unlock,
            ttl,
            absolute,
        } => {
            let ttl = ttl.map(|s| {
                if absolute {
                    Ttl::Absolute(s)
                } else {
                    Ttl::Sliding(s)
                }
            });
            let rev = client
                .set_with(
                    &address,
                    parse_value(&value),
                    SetOptions {
                        revision,
                        lock,
                        unlock,
                        ttl,
                    },
                )
                .await?;
            println!("{address} revision {rev}");
        }
        ClientCommand::Get { address } => {
            let p = client.get(&address).await?;
            println!(
                "{} = {} (revision {}, writer {})",
                p.address,
                to_json(&p.value),
                p.revision,
                p.writer.as_deref().unwrap_or("-")
            );
        }
        ClientCommand::Sub {
            pattern,
            json,
            count,
        } => {
            let mut sub = client.subscribe(&pattern).await?;
            let mut seen = 0;
            while let Some(u) = sub.next().await {
                let time = u.timestamp.unwrap_or_else(|| client.time());
                if json {
                    let line = serde_json::json!({
                        "time": time, "address": u.address.as_str(), "value": to_json(&u.value),
                        "revision": u.revision, "writer": u.writer, "signal": u.signal.name(),
                    });
                    println!("{line}");
                } else {
                    println!(
                        "{time} {} {} {} {}",
                        u.address,
                        to_json(&u.value),
                        u.revision.map_or("-".to_string(), |r| r.to_string()),
                        u.writer.as_deref().unwrap_or("-")
                    );
                }
                seen += 1;
                if count.is_some_and(|c| seen >= c) {
                    break;
                }
            }
        }
        ClientCommand::Emit { address, value } => {
            client
                .emit(&address, value.as_deref().map_or(Value::Null, parse_value))
                .await?;
            // Emit is one-way: a PING round trip makes sure it left before we exit.
            client.ping().await?;
        }
        ClientCommand::Stream { address, rate } => {
            let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            let mut next = tokio::time::Instant::now();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                tokio::time::sleep_until(next).await;
                client.stream(&address, parse_value(line)).await?;
                next += interval;
            }
            client.ping().await?;
        }
        ClientCommand::Query { pattern } => {
            for s in client.query(&pattern).await? {
                println!(
                    "{} {} {} {}",
                    s.address,
                    s.signal.name(),
                    s.datatype.as_deref().unwrap_or("-"),
                    s.access.as_deref().unwrap_or("-")
                );
            }
        }
        ClientCommand::Replay { pattern, from, to } => {
            for u in client.replay(&pattern, from, to, None).await? {
                println!(
                    "{} {} {}",
                    u.timestamp.unwrap_or(0),
                    u.address,
                    to_json(&u.value)
                );
            }
        }
        ClientCommand::Ping => {
            let rtt = client.ping().await?;
            let (_, offset) = client.sync().await?;
            println!("round trip {rtt} µs, clock offset {offset} µs");
        }
    }
    Ok(())
}
