//! Art-Net packets through the `artnet_protocol` crate: ArtDmx in and out, ArtPoll in and
//! ArtPollReply out. Everything a peer sends is checked here, so a short, foreign or
//! inconsistent packet is an error to count, never a panic.

use std::net::Ipv4Addr;

use artnet_protocol::{ArtCommand, Output, PollReply, PortAddress};

/// The Art-Net UDP port real gear uses.
pub const ARTNET_PORT: u16 = 6454;
/// Highest 15-bit port-address (universe).
pub const MAX_UNIVERSE: u16 = 32_767;
/// Universes one ArtPollReply describes (Art-Net 4: four ports per bind index).
const PORTS_PER_REPLY: usize = 4;
/// Most ArtPollReplies answered to one ArtPoll (so 256 universes are listed).
const MAX_REPLIES: usize = 64;

/// Why a datagram is not a usable Art-Net packet.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// The crate refused it (short, not `Art-Net\0`, unknown opcode, bad port-address).
    #[error("not Art-Net: {0}")]
    Parse(String),
    /// The ArtDmx length field disagrees with the data or is outside 1–512.
    #[error("ArtDmx length {length} with {actual} data bytes")]
    Length {
        /// The length field.
        length: u16,
        /// Bytes present.
        actual: usize,
    },
    /// Encoding failed (a bug: the levels are always 512).
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// A received packet the bridge acts on.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// DMX levels for a universe (sequence 0: not sequenced).
    Dmx {
        /// 15-bit port-address.
        universe: u16,
        /// Sequence number.
        sequence: u8,
        /// Levels from channel 1.
        data: Vec<u8>,
    },
    /// A controller looks for nodes.
    Poll,
    /// Any other valid opcode (ArtSync, ArtPollReply of other nodes, ...): ignored.
    Other,
}

/// Parses one datagram.
pub fn decode(bytes: &[u8]) -> Result<Received, PacketError> {
    // The crate's parser indexes into the buffer; guard against a panic on hostile input.
    let parsed = std::panic::catch_unwind(|| ArtCommand::from_buffer(bytes))
        .map_err(|_| PacketError::Parse("parser panicked".into()))?
        .map_err(|e| PacketError::Parse(short(&e)))?;
    match parsed {
        ArtCommand::Output(out) => {
            let length = *out.length;
            let data = out.data.as_ref();
            let n = usize::from(length);
            if n == 0 || n > 512 || n > data.len() {
                return Err(PacketError::Length {
                    length,
                    actual: data.len(),
                });
            }
            Ok(Received::Dmx {
                universe: u16::from(out.port_address),
                sequence: out.sequence,
                data: data.get(..n).unwrap_or_default().to_vec(),
            })
        }
        ArtCommand::Poll(_) => Ok(Received::Poll),
        _ => Ok(Received::Other),
    }
}

/// The crate's errors carry the whole packet; keep the log line short.
fn short(e: &artnet_protocol::Error) -> String {
    let text = e.to_string();
    if text.chars().count() > 120 {
        format!("{}...", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

/// An ArtDmx packet for `universe` with all 512 levels.
pub fn encode_dmx(universe: u16, sequence: u8, levels: &[u8]) -> Result<Vec<u8>, PacketError> {
    let port_address =
        PortAddress::try_from(universe).map_err(|e| PacketError::Encode(e.to_string()))?;
    let output = Output {
        sequence,
        port_address,
        data: levels.to_vec().into(),
        ..Output::default()
    };
    ArtCommand::Output(output)
        .write_to_buffer()
        .map_err(|e| PacketError::Encode(e.to_string()))
}

/// What an ArtPollReply says about this node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node's IPv4 address as the poller sees it.
    pub address: Ipv4Addr,
    /// Short name (17 characters shown).
    pub short_name: String,
    /// Long name (63 characters shown).
    pub long_name: String,
    /// Replies sent so far (the node report counter).
    pub replies: u32,
}

fn fixed<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(text.bytes().take(N.saturating_sub(1))) {
        *o = b;
    }
    out
}

/// The ArtPollReplies describing `universes`: one per group of four that share a net and
/// sub-net, each port an input and an output of DMX512.
pub fn poll_replies(node: &NodeInfo, universes: &[u16]) -> Vec<Vec<u8>> {
    let mut groups: Vec<Vec<u16>> = Vec::new();
    for &u in universes {
        match groups.last_mut() {
            Some(g) if g.len() < PORTS_PER_REPLY && g.first().is_some_and(|f| f >> 4 == u >> 4) => {
                g.push(u)
            }
            _ => groups.push(vec![u]),
        }
    }
    if groups.is_empty() {
        groups.push(Vec::new());
    }
    let report = format!("#0001 [{:04}] CLASP node OK", node.replies % 10_000);
    groups
        .iter()
        .take(MAX_REPLIES)
        .enumerate()
        .filter_map(|(i, ports)| {
            let first = ports.first().copied().unwrap_or(0);
            let mut swin = [0u8; 4];
            let mut port_types = [0u8; 4];
            let mut good = [0u8; 4];
            for (slot, u) in ports.iter().enumerate() {
                if let (Some(s), Some(t), Some(g)) = (
                    swin.get_mut(slot),
                    port_types.get_mut(slot),
                    good.get_mut(slot),
                ) {
                    *s = (*u & 0x0f) as u8;
                    // Bit 7: can output from Art-Net; bit 6: can input to Art-Net; DMX512.
                    *t = 0xc0;
                    // Data received / being transmitted.
                    *g = 0x80;
                }
            }
            let reply = PollReply {
                address: node.address,
                port: ARTNET_PORT,
                version: [0, 1],
                port_address: [((first >> 8) & 0x7f) as u8, ((first >> 4) & 0x0f) as u8],
                oem: [0x00, 0xff],
                ubea_version: 0,
                status_1: 0,
                esta_code: 0,
                short_name: fixed(&node.short_name),
                long_name: fixed(&node.long_name),
                node_report: fixed(&report),
                num_ports: [0, ports.len() as u8],
                port_types,
                good_input: good,
                good_output: good,
                swin,
                swout: swin,
                sw_video: 0,
                sw_macro: 0,
                sw_remote: 0,
                spare: [0; 3],
                style: 0,
                mac: [0; 6],
                bind_ip: node.address.octets(),
                bind_index: (i + 1) as u8,
                // Bit 3: 15-bit port-addresses.
                status_2: 0x08,
                filler: [0; 26],
            };
            ArtCommand::PollReply(Box::new(reply))
                .write_to_buffer()
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmx_round_trips() {
        let mut levels = [0u8; 512];
        levels[0] = 255;
        levels[511] = 7;
        let packet = encode_dmx(300, 9, &levels).unwrap();
        assert_eq!(packet.len(), 18 + 512);
        match decode(&packet).unwrap() {
            Received::Dmx {
                universe,
                sequence,
                data,
            } => {
                assert_eq!((universe, sequence, data.len()), (300, 9, 512));
                assert_eq!((data[0], data[511]), (255, 7));
            }
            other => panic!("{other:?}"),
        }
        assert!(encode_dmx(40_000, 0, &levels).is_err());
    }

    #[test]
    fn bad_packets_are_errors() {
        let good = encode_dmx(1, 1, &[1; 512]).unwrap();
        assert!(decode(&good[..10]).is_err(), "short");
        let mut wrong = good.clone();
        wrong[0] = b'X';
        assert!(decode(&wrong).is_err(), "header");
        let mut big = good.clone();
        big[14] = 0xff;
        big[15] = 0xff;
        assert!(decode(&big).is_err(), "universe above 32767");
        let mut long = good.clone();
        long[16] = 0x04; // length 1024 > data
        assert!(decode(&long).is_err(), "length");
        let mut truncated = good.clone();
        truncated.truncate(100);
        assert!(decode(&truncated).is_err(), "data shorter than length");
        for n in 0..good.len() {
            let _ = decode(&good[..n]);
        }
    }

    #[test]
    fn poll_replies_list_the_universes() {
        let node = NodeInfo {
            address: Ipv4Addr::LOCALHOST,
            short_name: "CLASP".into(),
            long_name: "CLASP Art-Net bridge".into(),
            replies: 1,
        };
        let replies = poll_replies(&node, &[0, 1, 2, 3, 4, 16]);
        assert_eq!(replies.len(), 3);
        for r in &replies {
            assert!(matches!(
                ArtCommand::from_buffer(r).unwrap(),
                ArtCommand::PollReply(_)
            ));
        }
        let poll = ArtCommand::Poll(artnet_protocol::Poll::default())
            .write_to_buffer()
            .unwrap();
        assert_eq!(decode(&poll).unwrap(), Received::Poll);
    }
}
