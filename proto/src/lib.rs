//! The CLASP wire protocol and nothing else.
//!
//! Everything that crosses a CLASP connection is defined here: [`Value`]s, [`Address`]es,
//! [`Pattern`]s, the frame header and the binary v1 message codec (plus decoding of the
//! legacy MessagePack payloads the official Python client still sends). There is no I/O and
//! no async, so the same crate serves the router, the Rust client, the bridges and, built
//! with `default-features = false`, embedded clients (`no_std` + `alloc`).
//!
//! The contract is `shared/spec/WIRE.md`; section numbers in comments refer to it.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod address;
pub mod codec;
mod error;
mod frame;
pub mod index;
mod message;
mod pattern;
mod value;

pub use address::{Address, AddressError};
pub use codec::{
    decode_frame, decode_message, encode_frame, encode_frame_into, encode_message,
    encode_snapshot_frames, Decoded, PayloadEncoding,
};
pub use error::{DecodeError, EncodeError};
pub use frame::{FrameHeader, QoS, FRAME_MAGIC, HEADER_LEN, MAX_PAYLOAD};
pub use index::PatternIndex;
pub use message::*;
pub use pattern::{Pattern, PatternError};
pub use value::{Value, ValueKind, MAX_DEPTH};

/// Default TCP/WebSocket port of a CLASP router.
pub const DEFAULT_PORT: u16 = 7330;
/// WebSocket subprotocol the official clients offer and require echoed (§1.1).
pub const WS_SUBPROTOCOL: &str = "clasp";
/// Protocol version written in HELLO/WELCOME (§12 #13: version is 1, not 2).
pub const PROTOCOL_VERSION: u8 = 1;
