//! What a client call can fail with.

use clasp_proto::{AddressError, EncodeError, PatternError};

/// A client error. Server refusals carry the spec's ERROR code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The relay could not be reached or refused the WebSocket.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The relay answered the HELLO with an ERROR (bad token, full, ...).
    #[error("relay refused the session: ERROR {code} {message}")]
    Refused {
        /// ERROR code.
        code: u16,
        /// Its text.
        message: String,
    },
    /// The relay refused a request (ERROR frame).
    #[error("ERROR {code}: {message}")]
    Server {
        /// ERROR code (WIRE §7.12).
        code: u16,
        /// Its text.
        message: String,
        /// The address or pattern it names.
        address: Option<String>,
    },
    /// No answer within the deadline.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The connection is gone (and reconnection is off, or the client was closed).
    #[error("connection closed")]
    Closed,
    /// Not a valid address.
    #[error("invalid address: {0}")]
    Address(#[from] AddressError),
    /// Not a valid pattern.
    #[error("invalid pattern: {0}")]
    Pattern(#[from] PatternError),
    /// The message does not fit a frame.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// Disconnected and the offline queue is full.
    #[error("offline queue full ({0} messages)")]
    QueueFull(usize),
}
