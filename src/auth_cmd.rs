//! `clasp auth register|login|guest|revoke`: the relay's CPSK HTTP API from the shell. The
//! token goes to stdout alone (so `TOKEN=$(clasp auth login ...)` works); `--json` prints the
//! whole answer. Exit codes: 0 ok, 1 refused or unreachable, 2 usage.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client_cmd::{Conn, Failure};

/// Auth subcommands.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Create a user and print its first token.
    Register {
        /// Login name (2 to 32 characters).
        #[arg(short, long)]
        username: String,
        /// Password (at least 6 characters); `CLASP_PASSWORD` keeps it out of the process list.
        #[arg(short, long, env = "CLASP_PASSWORD", hide_env_values = true)]
        password: String,
        /// Chosen user id ([A-Za-z0-9_-], 1 to 64).
        #[arg(long)]
        user_id: Option<String>,
        /// Scopes to ask for, comma-separated (within the relay's grant unless --admin-token).
        #[arg(short, long)]
        scopes: Option<String>,
        #[command(flatten)]
        common: AuthCommon,
    },
    /// Log in and print a new token.
    Login {
        /// Login name.
        #[arg(short, long)]
        username: String,
        /// Password; `CLASP_PASSWORD` keeps it out of the process list.
        #[arg(short, long, env = "CLASP_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        common: AuthCommon,
    },
    /// Get a guest token.
    Guest {
        /// Display name (default guest-xxxxxx).
        #[arg(short, long)]
        name: Option<String>,
        /// Scopes to ask for, comma-separated.
        #[arg(short, long)]
        scopes: Option<String>,
        #[command(flatten)]
        common: AuthCommon,
    },
    /// Revoke a token: it stops working and its sessions are closed.
    Revoke {
        /// The token.
        #[arg(id = "token_text", value_name = "TOKEN")]
        token: String,
        #[command(flatten)]
        common: AuthCommon,
    },
}

/// Flags every auth subcommand takes.
#[derive(Debug, Args)]
pub struct AuthCommon {
    /// Base URL of the auth API (default: the relay URL with http/https).
    #[arg(long, env = "CLASP_AUTH_URL")]
    auth_url: Option<String>,
    /// Admin token file, sent as the bearer (needed for scopes beyond the relay's default grant).
    #[arg(long, value_name = "FILE")]
    admin_token: Option<std::path::PathBuf>,
    /// Print the whole JSON answer instead of the token alone.
    #[arg(long)]
    json: bool,
}

fn usage(message: String) -> Failure {
    Failure { code: 2, message }
}

fn refused(message: String) -> Failure {
    Failure { code: 1, message }
}

/// `ws://h:p/x` → `http://h:p`, `wss://` → `https://`.
fn http_base(ws: &str) -> String {
    let (scheme, rest) = if let Some(r) = ws.strip_prefix("wss://") {
        ("https", r)
    } else if let Some(r) = ws.strip_prefix("ws://") {
        ("http", r)
    } else {
        return ws.trim_end_matches('/').to_string();
    };
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

fn scope_list(scopes: &Option<String>) -> Option<Vec<String>> {
    scopes.as_ref().map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// Runs one auth subcommand.
pub fn run(conn: Conn, cmd: AuthCommand) -> Result<(), Failure> {
    let (path, body, common) = match cmd {
        AuthCommand::Register {
            username,
            password,
            user_id,
            scopes,
            common,
        } => (
            "/auth/register",
            json!({ "username": username, "password": password, "user_id": user_id, "scopes": scope_list(&scopes) }),
            common,
        ),
        AuthCommand::Login {
            username,
            password,
            common,
        } => (
            "/auth/login",
            json!({ "username": username, "password": password }),
            common,
        ),
        AuthCommand::Guest {
            name,
            scopes,
            common,
        } => (
            "/auth/guest",
            json!({ "name": name, "scopes": scope_list(&scopes) }),
            common,
        ),
        AuthCommand::Revoke { token, common } => {
            ("/auth/revoke", json!({ "token": token }), common)
        }
    };
    let base = common
        .auth_url
        .clone()
        .unwrap_or_else(|| http_base(&conn.url));
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut agent = ureq::AgentBuilder::new();
    if let Some(ca) = &conn.ca_cert {
        let tls = clasp_actors::tls::client_config(Some(ca)).map_err(|e| usage(e.to_string()))?;
        agent = agent.tls_config(std::sync::Arc::new(tls));
    }
    let mut request = agent
        .build()
        .post(&url)
        .timeout(std::time::Duration::from_secs(conn.timeout.max(1)));
    if let Some(file) = &common.admin_token {
        let token = std::fs::read_to_string(file)
            .map_err(|e| usage(format!("admin token file {}: {e}", file.display())))?;
        request = request.set("Authorization", &format!("Bearer {}", token.trim()));
    }
    let answer: Value = match request.send_json(body) {
        Ok(resp) => resp
            .into_json()
            .map_err(|e| refused(format!("{url}: answer is not JSON: {e}")))?,
        Err(ureq::Error::Status(code, resp)) => {
            let text = resp
                .into_json::<Value>()
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_default();
            return Err(refused(format!("HTTP {code}: {text}")));
        }
        Err(e) => return Err(refused(format!("{url}: {e}"))),
    };
    if common.json {
        println!("{answer}");
    } else if let Some(token) = answer["token"].as_str() {
        println!("{token}");
    } else {
        println!("{answer}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_become_http_bases() {
        assert_eq!(http_base("ws://127.0.0.1:7330"), "http://127.0.0.1:7330");
        assert_eq!(
            http_base("wss://relay.example/clasp"),
            "https://relay.example"
        );
        assert_eq!(http_base("http://h:1/"), "http://h:1");
    }
}
