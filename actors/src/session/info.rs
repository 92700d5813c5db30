//! What the registry knows about a live session beyond how to reach it: who it is, how it
//! came in and how busy it is. Read by `GET /api/v1/sessions` (the web console's sessions
//! panel) without asking the session actor anything, so listing costs it nothing.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Shared, cheap-to-update facts about one session.
#[derive(Debug)]
pub struct SessionInfo {
    /// Client name from HELLO.
    pub name: String,
    /// How it connected (`websocket` or `websocket+tls`).
    pub transport: &'static str,
    /// The token's subject, when auth is on.
    pub subject: Option<String>,
    /// The token's scopes as text (`write:/a/**`), when auth is on.
    pub scopes: Option<Vec<String>>,
    /// Unix milliseconds at HELLO.
    pub connected_ms: u64,
    /// Live subscriptions.
    pub subscriptions: AtomicUsize,
    /// Frames received from this client.
    pub frames_in: AtomicU64,
}

/// One row of `GET /api/v1/sessions`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    /// Wire session id (what SNAPSHOT reports as a param's writer).
    pub id: String,
    /// Client name from HELLO.
    pub name: String,
    /// How it connected.
    pub transport: &'static str,
    /// Token subject (auth on).
    pub subject: Option<String>,
    /// Token scopes (auth on); `None` means the relay runs open (everything allowed).
    pub scopes: Option<Vec<String>>,
    /// Unix milliseconds at HELLO.
    pub connected_ms: u64,
    /// Live subscriptions.
    pub subscriptions: usize,
    /// Frames waiting in its outbound queue.
    pub queue_depth: usize,
    /// Frames received from it so far (a rate is the difference between two reads).
    pub frames_in: u64,
    /// Mean frames per second received since it connected.
    pub rate_in: f64,
}

impl SessionInfo {
    /// Facts known at HELLO.
    pub fn new(
        name: String,
        transport: &'static str,
        subject: Option<String>,
        scopes: Option<Vec<String>>,
    ) -> Self {
        Self {
            name,
            transport,
            subject,
            scopes,
            connected_ms: unix_ms(),
            subscriptions: AtomicUsize::new(0),
            // The HELLO that created it.
            frames_in: AtomicU64::new(1),
        }
    }

    /// A row for the listing, with the queue depth read by the caller.
    pub fn row(&self, id: &str, queue_depth: usize) -> SessionRow {
        let frames_in = self.frames_in.load(Ordering::Relaxed);
        let secs = unix_ms().saturating_sub(self.connected_ms) as f64 / 1000.0;
        SessionRow {
            id: id.to_string(),
            name: self.name.clone(),
            transport: self.transport,
            subject: self.subject.clone(),
            scopes: self.scopes.clone(),
            connected_ms: self.connected_ms,
            subscriptions: self.subscriptions.load(Ordering::Relaxed),
            queue_depth,
            frames_in,
            rate_in: if secs > 0.0 {
                frames_in as f64 / secs
            } else {
                0.0
            },
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
