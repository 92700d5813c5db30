//! ENTTEC DMX USB Pro framing: `0x7E label len_lsb len_msb data… 0xE7`. We send label 6
//! (output only send DMX) and read label 5 (received DMX packet) and label 9 (received DMX
//! change of state). The parser is a byte-stream state machine: a frame may arrive in any
//! number of reads, and garbage between frames is skipped and reported, never fatal.

/// Start of message delimiter.
pub const SOM: u8 = 0x7E;
/// End of message delimiter.
pub const EOM: u8 = 0xE7;
/// Output Only Send DMX Packet Request.
pub const LABEL_SEND_DMX: u8 = 6;
/// Received DMX Packet.
pub const LABEL_RECEIVED_DMX: u8 = 5;
/// Received DMX Change Of State Packet.
pub const LABEL_CHANGE_OF_STATE: u8 = 9;
/// Largest data length the widget uses (a label 5 of start code + 512 slots + status).
pub const MAX_DATA: usize = 600;

/// A label 6 message carrying start code 0 and `slots` (1 to 512 channel levels).
pub fn encode_send_dmx(slots: &[u8]) -> Vec<u8> {
    let len = slots.len() + 1;
    let mut out = Vec::with_capacity(len + 5);
    out.push(SOM);
    out.push(LABEL_SEND_DMX);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.push(0);
    out.extend_from_slice(slots);
    out.push(EOM);
    out
}

/// What the widget told us, already reduced to channel levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProMessage {
    /// A whole received frame (label 5, start code 0): levels of channels 1.. in order.
    Frame(Vec<u8>),
    /// Changed channels (label 9): `(channel 1-512, level)`.
    Changes(Vec<(u16, u8)>),
    /// A well-formed message this bridge has no use for (other labels, non-zero start codes).
    Ignored(u8),
}

/// Why bytes from the widget were dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProError {
    /// Bytes before a start delimiter.
    #[error("{0} stray byte(s) outside a Pro message")]
    Stray(usize),
    /// A length beyond anything the widget sends.
    #[error("label {label}: length {len} is too long")]
    TooLong {
        /// Label.
        label: u8,
        /// Claimed length.
        len: usize,
    },
    /// The byte after the data was not 0xE7.
    #[error("label {0}: no end delimiter where the length says")]
    NoEnd(u8),
    /// The widget reported a receive error (overrun or queue overflow) with the frame.
    #[error("label 5: widget receive status {0:#04x} (frame dropped)")]
    ReceiveStatus(u8),
    /// A label 5 or 9 message too short for its own header.
    #[error("label {0}: message too short")]
    Short(u8),
}

#[derive(Debug, Clone, Copy)]
enum State {
    Idle,
    Label,
    LenLo(u8),
    LenHi(u8, u8),
    Data(u8, usize),
    End(u8),
}

/// Incremental parser of the widget's byte stream.
#[derive(Debug)]
pub struct ProParser {
    state: State,
    data: Vec<u8>,
    stray: usize,
}

impl Default for ProParser {
    fn default() -> Self {
        Self {
            state: State::Idle,
            data: Vec::with_capacity(MAX_DATA),
            stray: 0,
        }
    }
}

impl ProParser {
    /// Feeds bytes; every complete message or error, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<ProMessage, ProError>> {
        let mut out = Vec::new();
        for &b in bytes {
            self.state = match self.state {
                State::Idle if b == SOM => {
                    if self.stray > 0 {
                        out.push(Err(ProError::Stray(std::mem::take(&mut self.stray))));
                    }
                    State::Label
                }
                State::Idle => {
                    self.stray += 1;
                    State::Idle
                }
                State::Label => State::LenLo(b),
                State::LenLo(label) => State::LenHi(label, b),
                State::LenHi(label, lo) => {
                    let len = usize::from(u16::from_le_bytes([lo, b]));
                    self.data.clear();
                    if len > MAX_DATA {
                        out.push(Err(ProError::TooLong { label, len }));
                        State::Idle
                    } else if len == 0 {
                        State::End(label)
                    } else {
                        State::Data(label, len)
                    }
                }
                State::Data(label, len) => {
                    self.data.push(b);
                    if self.data.len() >= len {
                        State::End(label)
                    } else {
                        State::Data(label, len)
                    }
                }
                State::End(label) if b == EOM => {
                    out.push(decode(label, &self.data));
                    State::Idle
                }
                State::End(label) => {
                    out.push(Err(ProError::NoEnd(label)));
                    // The byte may start the next message.
                    if b == SOM {
                        State::Label
                    } else {
                        self.stray += 1;
                        State::Idle
                    }
                }
            };
        }
        out
    }
}

/// One complete message's data by label.
fn decode(label: u8, data: &[u8]) -> Result<ProMessage, ProError> {
    match label {
        LABEL_RECEIVED_DMX => {
            let (&status, rest) = data.split_first().ok_or(ProError::Short(label))?;
            if status != 0 {
                return Err(ProError::ReceiveStatus(status));
            }
            match rest.split_first() {
                Some((0, slots)) => {
                    Ok(ProMessage::Frame(slots.iter().take(512).copied().collect()))
                }
                Some(_) => Ok(ProMessage::Ignored(label)),
                None => Err(ProError::Short(label)),
            }
        }
        LABEL_CHANGE_OF_STATE => {
            // Start block (×8 = first slot index), 5 bytes of bit flags for the 40 slots
            // from there, then one level per set bit. Slot 0 is the start code.
            if data.len() < 6 {
                return Err(ProError::Short(label));
            }
            let (head, levels) = data.split_at(6);
            let first = usize::from(head[0]) * 8;
            let mut levels = levels.iter();
            let mut changes = Vec::new();
            for bit in 0..40 {
                if head[1 + bit / 8] & (1 << (bit % 8)) == 0 {
                    continue;
                }
                let level = *levels.next().ok_or(ProError::Short(label))?;
                let slot = first + bit;
                if (1..=512).contains(&slot) {
                    changes.push((slot as u16, level));
                }
            }
            Ok(ProMessage::Changes(changes))
        }
        other => Ok(ProMessage::Ignored(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_frame_is_framed_byte_for_byte() {
        let f = encode_send_dmx(&[255, 0, 7]);
        assert_eq!(f, [0x7E, 6, 4, 0, 0, 255, 0, 7, 0xE7]);
        assert_eq!(encode_send_dmx(&[0; 512]).len(), 518);
    }

    #[test]
    fn label_5_split_across_reads() {
        let mut p = ProParser::default();
        let msg = [0x7E, 5, 5, 0, 0, 0, 10, 20, 30, 0xE7];
        assert!(p.feed(&msg[..4]).is_empty());
        assert_eq!(p.feed(&msg[4..]), [Ok(ProMessage::Frame(vec![10, 20, 30]))]);
    }

    #[test]
    fn label_9_changes() {
        let mut p = ProParser::default();
        // Block 0: bits for slots 1 and 9; block 1 (slot 8..): bit 0 = slot 8.
        let msg = [0x7E, 9, 8, 0, 0, 0b10, 0b10, 0, 0, 0, 99, 42, 0xE7];
        assert_eq!(
            p.feed(&msg),
            [Ok(ProMessage::Changes(vec![(1, 99), (9, 42)]))]
        );
        let msg = [0x7E, 9, 7, 0, 1, 1, 0, 0, 0, 0, 5, 0xE7];
        assert_eq!(p.feed(&msg), [Ok(ProMessage::Changes(vec![(8, 5)]))]);
    }

    #[test]
    fn garbage_is_reported_and_skipped() {
        let mut p = ProParser::default();
        let mut bytes = vec![1, 2, 3];
        bytes.extend([0x7E, 5, 0xFF, 0xFF]); // too long
        bytes.extend([0x7E, 5, 3, 0, 0, 0, 1, 0x00]); // no end
        bytes.extend([0x7E, 5, 3, 0, 2, 0, 1, 0xE7]); // receive status error
        bytes.extend([0x7E, 9, 2, 0, 0, 1, 0xE7]); // short label 9
        bytes.extend([0x7E, 9, 6, 0, 0, 1, 0, 0, 0, 0, 0xE7]); // bit set, no level
        bytes.extend([0x7E, 5, 3, 0, 0, 0, 77, 0xE7]); // good
        let out = p.feed(&bytes);
        assert_eq!(
            out,
            [
                Err(ProError::Stray(3)),
                Err(ProError::TooLong {
                    label: 5,
                    len: 65535
                }),
                Err(ProError::NoEnd(5)),
                Err(ProError::Stray(1)),
                Err(ProError::ReceiveStatus(2)),
                Err(ProError::Short(9)),
                Err(ProError::Short(9)),
                Ok(ProMessage::Frame(vec![77])),
            ]
        );
    }
}
