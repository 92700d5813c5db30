//! Frame and message codec: binary v1 both ways, legacy MessagePack on decode (§2–§6).
//!
//! Decoding never panics: every malformed input ends in a [`DecodeError`] naming the field
//! and the offset. Encoding writes canonical value codes and fails only when something does
//! not fit a u16 length field.

mod decode;
mod encode;
mod msgpack;
mod reader;

use alloc::vec::Vec;

use crate::frame::{FrameHeader, MAX_PAYLOAD};
use crate::message::{Message, ParamState, Snapshot};
use crate::{DecodeError, EncodeError};
use reader::Reader;

/// Deepest nesting of BUNDLE inside BUNDLE accepted on decode.
pub const MAX_BUNDLE_DEPTH: usize = 8;

/// How a payload was encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadEncoding {
    /// Binary v1 (§5).
    Binary,
    /// Legacy MessagePack map (§6).
    MsgPack,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The frame header.
    pub header: FrameHeader,
    /// Which payload decoder was used (chosen by the first payload byte).
    pub encoding: PayloadEncoding,
    /// The message.
    pub message: Message,
}

/// Decodes one frame. Bytes after the announced payload are ignored (§2 rule 3). Error
/// offsets are relative to the start of the frame.
pub fn decode_frame(frame: &[u8]) -> Result<Decoded, DecodeError> {
    let (header, payload, offset) = FrameHeader::split(frame)?;
    let (message, encoding) = decode_payload_at(payload, offset, 0)?;
    Ok(Decoded {
        header,
        encoding,
        message,
    })
}

/// Decodes a bare payload (no frame header), binary or MessagePack. Error offsets are
/// relative to the payload.
pub fn decode_message(payload: &[u8]) -> Result<Message, DecodeError> {
    decode_payload_at(payload, 0, 0).map(|(m, _)| m)
}

/// Decodes a payload that starts at `base` in its frame, choosing the decoder from the
/// first byte (§2 rule 2).
pub(crate) fn decode_payload_at(
    payload: &[u8],
    base: usize,
    bundle_depth: usize,
) -> Result<(Message, PayloadEncoding), DecodeError> {
    let Some(&first) = payload.first() else {
        return Err(DecodeError::EmptyPayload { offset: base });
    };
    let mut r = Reader::new(payload, base);
    if msgpack::is_msgpack_map(first) {
        Ok((
            msgpack::message(&mut r, bundle_depth)?,
            PayloadEncoding::MsgPack,
        ))
    } else {
        Ok((
            decode::message(&mut r, bundle_depth)?,
            PayloadEncoding::Binary,
        ))
    }
}

/// Appends the binary payload of `message` to `out`. No size limit is applied to the whole
/// payload (a frame applies it); `out` is left unchanged on error.
pub fn encode_message(message: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    encode::message(out, message).inspect_err(|_| out.truncate(start))
}

/// Encodes `message` as a complete frame.
pub fn encode_frame(header: &FrameHeader, message: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64);
    encode_frame_into(header, message, &mut out)?;
    Ok(out)
}

/// Appends a complete frame to `out` (left unchanged on error).
pub fn encode_frame_into(
    header: &FrameHeader,
    message: &Message,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    // Reserve the header, write the payload, then fill in its length.
    header.write(out, 0);
    let payload_start = out.len();
    if let Err(e) = encode::message(out, message) {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - payload_start;
    let Ok(len16) = u16::try_from(len) else {
        out.truncate(start);
        return Err(EncodeError::PayloadTooLarge { len });
    };
    out[start + 2..start + 4].copy_from_slice(&len16.to_be_bytes());
    Ok(())
}

/// Encodes `params` as as many SNAPSHOT frames as needed so that no payload exceeds
/// [`MAX_PAYLOAD`] bytes (§7.3: chunk by size, not by count). An empty list gives one empty
/// SNAPSHOT, which clients expect after WELCOME. A single param too big for any frame is an
/// error.
pub fn encode_snapshot_frames(
    header: &FrameHeader,
    params: &[ParamState],
) -> Result<Vec<Vec<u8>>, EncodeError> {
    const SNAPSHOT_OVERHEAD: usize = 3; // type byte + u16 count
    let mut frames = Vec::new();
    let mut body = Vec::new();
    let mut count: u16 = 0;
    let mut entry = Vec::new();
    let flush = |body: &mut Vec<u8>, count: &mut u16, frames: &mut Vec<Vec<u8>>| {
        let mut frame = Vec::with_capacity(header.len() + SNAPSHOT_OVERHEAD + body.len());
        // Length fits: checked below before an entry is added.
        header.write(&mut frame, (SNAPSHOT_OVERHEAD + body.len()) as u16);
        frame.push(crate::message::code::SNAPSHOT);
        frame.extend_from_slice(&count.to_be_bytes());
        frame.append(body);
        frames.push(frame);
        *count = 0;
    };
    for p in params {
        entry.clear();
        encode::param_state(&mut entry, p)?;
        if SNAPSHOT_OVERHEAD + entry.len() > MAX_PAYLOAD {
            return Err(EncodeError::PayloadTooLarge {
                len: SNAPSHOT_OVERHEAD + entry.len(),
            });
        }
        if SNAPSHOT_OVERHEAD + body.len() + entry.len() > MAX_PAYLOAD || count == u16::MAX {
            flush(&mut body, &mut count, &mut frames);
        }
        body.extend_from_slice(&entry);
        count += 1;
    }
    if count > 0 || frames.is_empty() {
        flush(&mut body, &mut count, &mut frames);
    }
    Ok(frames)
}

/// Encoded size of one SNAPSHOT entry, for callers that batch params themselves.
pub fn param_state_len(param: &ParamState) -> Result<usize, EncodeError> {
    let mut scratch = Vec::new();
    encode::param_state(&mut scratch, param)?;
    Ok(scratch.len())
}

/// A one-message SNAPSHOT, e.g. the answer to GET (§7.7).
pub fn snapshot_of(param: ParamState) -> Message {
    Message::Snapshot(Snapshot {
        params: alloc::vec![param],
    })
}
