//! Typed codec errors: each says what was wrong and where, so a router can answer with the
//! right ERROR code and keep the connection.

use alloc::string::String;

use crate::{AddressError, PatternError};

/// Why a frame or payload could not be decoded. Offsets are byte offsets into the frame
/// (header included) when decoding a frame, or into the payload when decoding a bare message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than the 4 header bytes.
    #[error("frame too short: {len} bytes, a frame header needs 4")]
    FrameTooShort {
        /// Bytes received.
        len: usize,
    },
    /// First byte is not `0x53`.
    #[error("bad magic byte 0x{found:02x} at offset 0 (expected 0x53)")]
    BadMagic {
        /// The byte found.
        found: u8,
    },
    /// The header announces more payload than the buffer holds.
    #[error("frame truncated: header announces {expected} payload bytes, {available} present")]
    FrameTruncated {
        /// Payload length from the header.
        expected: usize,
        /// Payload bytes actually present.
        available: usize,
    },
    /// A frame with a zero-length payload carries no message.
    #[error("empty payload at offset {offset}")]
    EmptyPayload {
        /// Where the payload would start.
        offset: usize,
    },
    /// A field runs past the end of the payload.
    #[error("truncated {field} at offset {offset}: needs {needed} bytes, {available} left")]
    Truncated {
        /// Name of the field being read.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the payload.
        available: usize,
    },
    /// The message type byte names no message of §4.
    #[error("unknown message type 0x{code:02x} at offset {offset}")]
    UnknownMessageType {
        /// The type byte.
        code: u8,
        /// Where it was read.
        offset: usize,
    },
    /// A value type code outside 0x00..=0x0B (§3.2).
    #[error("unknown value type 0x{code:02x} at offset {offset}")]
    UnknownValueType {
        /// The type code.
        code: u8,
        /// Where it was read.
        offset: usize,
    },
    /// A field holds a code the protocol does not define (e.g. a federation op).
    #[error("invalid {field} {value} at offset {offset}")]
    InvalidCode {
        /// Field name.
        field: &'static str,
        /// The value found.
        value: u64,
        /// Where it was read.
        offset: usize,
    },
    /// A string is not valid UTF-8 (§3.1: the router must reject it).
    #[error("invalid UTF-8 in {field} at offset {offset}")]
    InvalidUtf8 {
        /// Field name.
        field: &'static str,
        /// Where the string bytes start.
        offset: usize,
    },
    /// Arrays, maps or bundles nested deeper than the cap.
    #[error("nesting deeper than {max} levels at offset {offset}")]
    TooDeep {
        /// The cap.
        max: usize,
        /// Where the offending container starts.
        offset: usize,
    },
    /// A well-formed string that is not a valid address (§9.1).
    #[error("invalid address {address:?} at offset {offset}: {reason}")]
    InvalidAddress {
        /// The address as sent.
        address: String,
        /// What is wrong with it.
        reason: AddressError,
        /// Where the string starts.
        offset: usize,
    },
    /// A well-formed string that is not a valid pattern (§9.2).
    #[error("invalid pattern {pattern:?} at offset {offset}: {reason}")]
    InvalidPattern {
        /// The pattern as sent.
        pattern: String,
        /// What is wrong with it.
        reason: PatternError,
        /// Where the string starts.
        offset: usize,
    },
    /// A legacy MessagePack payload that is malformed or lacks a required field (§6).
    #[error("invalid MessagePack payload at offset {offset}: {reason}")]
    MsgPack {
        /// What is wrong.
        reason: String,
        /// Where it was detected.
        offset: usize,
    },
}

impl DecodeError {
    /// The ERROR code a router answers with: 100 for a malformed frame header, 101 for a
    /// malformed message, 200 for an invalid address, 202 for an invalid pattern (§7.12).
    pub fn error_code(&self) -> u16 {
        match self {
            Self::FrameTooShort { .. } | Self::BadMagic { .. } | Self::FrameTruncated { .. } => 100,
            Self::InvalidAddress { .. } => 200,
            Self::InvalidPattern { .. } => 202,
            _ => 101,
        }
    }

    /// The offending address or pattern, for the ERROR's address field.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Self::InvalidAddress { address, .. } => Some(address),
            Self::InvalidPattern { pattern, .. } => Some(pattern),
            _ => None,
        }
    }
}

/// Why a message could not be encoded: something does not fit the wire's size fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded payload exceeds the u16 length of the frame header (§2).
    #[error("payload too large: {len} bytes (max 65535)")]
    PayloadTooLarge {
        /// Encoded payload size.
        len: usize,
    },
    /// A string, byte string or list exceeds its u16 length/count field.
    #[error("{field} too long: {len} (max 65535)")]
    TooLong {
        /// Field name.
        field: &'static str,
        /// Its length or element count.
        len: usize,
    },
}
