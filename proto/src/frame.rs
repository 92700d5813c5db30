//! The frame header of §2: magic, flags (QoS, timestamp, encrypted, compressed, version),
//! u16 payload length, optional u64 timestamp.

use crate::DecodeError;

/// First byte of every frame (`'S'`).
pub const FRAME_MAGIC: u8 = 0x53;
/// Largest payload a frame can carry (u16 length).
pub const MAX_PAYLOAD: usize = u16::MAX as usize;
/// Header bytes without the optional timestamp.
pub const HEADER_LEN: usize = 4;
/// Header bytes with the timestamp.
pub const HEADER_LEN_WITH_TIMESTAMP: usize = 12;

const QOS_SHIFT: u8 = 6;
const FLAG_TIMESTAMP: u8 = 0x20;
const FLAG_ENCRYPTED: u8 = 0x10;
const FLAG_COMPRESSED: u8 = 0x08;
const VERSION_MASK: u8 = 0x07;

/// Delivery guarantee requested by the sender. The router uses it for one thing: whether to
/// ACK (§7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum QoS {
    /// Best effort (0).
    #[default]
    Fire = 0,
    /// At least once (1).
    Confirm = 1,
    /// Ordered (2).
    Commit = 2,
}

impl QoS {
    /// Reserved value 3 decodes as `Fire` (upstream).
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            1 => Self::Confirm,
            2 => Self::Commit,
            _ => Self::Fire,
        }
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// QoS bits.
    pub qos: QoS,
    /// µs since the Unix epoch, when the timestamp flag is set.
    pub timestamp: Option<u64>,
    /// "Encrypted" bit (never set by anyone; carried through).
    pub encrypted: bool,
    /// "Compressed" bit (never set by anyone; carried through).
    pub compressed: bool,
    /// Encoding version bits: 1 binary, 0 legacy. Ignored when decoding (§2 rule 2).
    pub version: u8,
}

impl Default for FrameHeader {
    fn default() -> Self {
        Self::new(QoS::Fire)
    }
}

impl FrameHeader {
    /// A binary-v1 header with the given QoS and no timestamp.
    pub const fn new(qos: QoS) -> Self {
        Self {
            qos,
            timestamp: None,
            encrypted: false,
            compressed: false,
            version: 1,
        }
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        ((self.qos as u8) << QOS_SHIFT)
            | if self.timestamp.is_some() {
                FLAG_TIMESTAMP
            } else {
                0
            }
            | if self.encrypted { FLAG_ENCRYPTED } else { 0 }
            | if self.compressed { FLAG_COMPRESSED } else { 0 }
            | (self.version & VERSION_MASK)
    }

    /// Header size on the wire.
    pub fn len(&self) -> usize {
        if self.timestamp.is_some() {
            HEADER_LEN_WITH_TIMESTAMP
        } else {
            HEADER_LEN
        }
    }

    /// Never true: a header is at least 4 bytes. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Splits a frame into its header and payload, checking magic and length. Trailing
    /// bytes after the payload are ignored (§2 rule 3). Returns the header, the payload and
    /// the payload's offset in `frame`.
    pub fn split(frame: &[u8]) -> Result<(FrameHeader, &[u8], usize), DecodeError> {
        let [magic, flags, hi, lo, rest @ ..] = frame else {
            return Err(DecodeError::FrameTooShort { len: frame.len() });
        };
        if *magic != FRAME_MAGIC {
            return Err(DecodeError::BadMagic { found: *magic });
        }
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let (timestamp, body, offset) = if flags & FLAG_TIMESTAMP != 0 {
            let Some((ts, body)) = rest.split_first_chunk::<8>() else {
                return Err(DecodeError::Truncated {
                    field: "frame timestamp",
                    offset: HEADER_LEN,
                    needed: 8,
                    available: rest.len(),
                });
            };
            (
                Some(u64::from_be_bytes(*ts)),
                body,
                HEADER_LEN_WITH_TIMESTAMP,
            )
        } else {
            (None, rest, HEADER_LEN)
        };
        let Some(payload) = body.get(..len) else {
            return Err(DecodeError::FrameTruncated {
                expected: len,
                available: body.len(),
            });
        };
        let header = FrameHeader {
            qos: QoS::from_bits(flags >> QOS_SHIFT),
            timestamp,
            encrypted: flags & FLAG_ENCRYPTED != 0,
            compressed: flags & FLAG_COMPRESSED != 0,
            version: flags & VERSION_MASK,
        };
        Ok((header, payload, offset))
    }

    /// Writes the header for a payload of `payload_len` bytes (caller checked ≤ MAX_PAYLOAD).
    pub(crate) fn write(&self, out: &mut alloc::vec::Vec<u8>, payload_len: u16) {
        out.push(FRAME_MAGIC);
        out.push(self.flags());
        out.extend_from_slice(&payload_len.to_be_bytes());
        if let Some(ts) = self.timestamp {
            out.extend_from_slice(&ts.to_be_bytes());
        }
    }
}
