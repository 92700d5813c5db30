//! SLIP framing (RFC 1055) of OSC 1.1 over TCP: each packet is sent between END bytes, with
//! END and ESC inside it escaped. The decoder takes the stream in whatever chunks TCP
//! delivers and hands out whole frames; a frame over the size limit is dropped whole.

const END: u8 = 0xC0;
const ESC: u8 = 0xDB;
const ESC_END: u8 = 0xDC;
const ESC_ESC: u8 = 0xDD;

/// One packet framed for the wire: END, the escaped bytes, END.
pub fn encode(packet: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packet.len() + 8);
    out.push(END);
    for &b in packet {
        match b {
            END => out.extend_from_slice(&[ESC, ESC_END]),
            ESC => out.extend_from_slice(&[ESC, ESC_ESC]),
            _ => out.push(b),
        }
    }
    out.push(END);
    out
}

/// What the decoder found in a chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole packet.
    Packet(Vec<u8>),
    /// A frame longer than the limit, or with a bad escape: dropped.
    Bad(&'static str),
}

/// Stream decoder state.
#[derive(Debug)]
pub struct Decoder {
    frame: Vec<u8>,
    escaped: bool,
    broken: Option<&'static str>,
    max: usize,
}

impl Decoder {
    /// A decoder that drops frames longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            frame: Vec::new(),
            escaped: false,
            broken: None,
            max,
        }
    }

    /// Feeds received bytes; the frames they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        let mut frames = Vec::new();
        for &b in bytes {
            if b == END {
                if let Some(why) = self.broken.take() {
                    frames.push(Frame::Bad(why));
                } else if !self.frame.is_empty() {
                    frames.push(Frame::Packet(std::mem::take(&mut self.frame)));
                }
                self.frame.clear();
                self.escaped = false;
                continue;
            }
            if self.broken.is_some() {
                continue;
            }
            let byte = if self.escaped {
                self.escaped = false;
                match b {
                    ESC_END => END,
                    ESC_ESC => ESC,
                    _ => {
                        self.broken = Some("bad SLIP escape");
                        continue;
                    }
                }
            } else if b == ESC {
                self.escaped = true;
                continue;
            } else {
                b
            };
            if self.frame.len() >= self.max {
                self.broken = Some("SLIP frame too long");
                self.frame.clear();
                continue;
            }
            self.frame.push(byte);
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_any_chunking() {
        let packet = vec![1, END, 2, ESC, 3, ESC_END, ESC_ESC];
        let wire = [encode(&packet), encode(b"/b\0\0")].concat();
        for split in 0..wire.len() {
            let mut d = Decoder::new(64);
            let mut got = d.push(&wire[..split]);
            got.extend(d.push(&wire[split..]));
            assert_eq!(
                got,
                vec![
                    Frame::Packet(packet.clone()),
                    Frame::Packet(b"/b\0\0".to_vec())
                ]
            );
        }
    }

    #[test]
    fn oversized_and_bad_frames_are_dropped_and_the_stream_resyncs() {
        let mut d = Decoder::new(4);
        let mut wire = encode(&[9; 10]);
        wire.extend([END, ESC, 0x01, END]);
        wire.extend(encode(&[7]));
        assert_eq!(
            d.push(&wire),
            vec![
                Frame::Bad("SLIP frame too long"),
                Frame::Bad("bad SLIP escape"),
                Frame::Packet(vec![7])
            ]
        );
    }
}
