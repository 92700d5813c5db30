//! E1.31 data packets through the `sacn` crate's packet types (`sacn::packet`), parsed and
//! built over our own socket. The crate's parser indexes by the PDU length fields, so the
//! lengths are checked here first: a short or inconsistent packet is an error, never a panic.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use sacn::packet::{
    AcnRootLayerProtocol, DataPacketDmpLayer, DataPacketFramingLayer, E131RootLayer,
    E131RootLayerData,
};
use uuid::Uuid;

/// The E1.31 UDP port.
pub const SACN_PORT: u16 = 5568;
/// Lowest and highest data universes.
pub const MIN_UNIVERSE: u16 = 1;
/// Highest data universe.
pub const MAX_UNIVERSE: u16 = 63_999;
/// Highest priority.
pub const MAX_PRIORITY: u8 = 200;
/// Bytes before the DMX start code in a data packet.
const HEADER: usize = 125;
/// Offsets of the root, framing and DMP layer flags-and-length fields.
const ROOT_PDU: usize = 16;
const FRAMING_PDU: usize = 38;
const DMP_PDU: usize = 115;
/// Root layer vector of a data packet.
const VECTOR_ROOT_DATA: u32 = 4;
/// The DMX512 null start code: levels. Others (0xDD per-address priority) are skipped.
const NULL_START_CODE: u8 = 0;

/// Why a datagram is not a usable E1.31 packet.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// Too short, or a PDU length field that disagrees with the datagram.
    #[error("bad E1.31 length: {0}")]
    Length(String),
    /// The crate refused it (identifier, vector, universe, priority, source name).
    #[error("not E1.31: {0}")]
    Parse(String),
    /// Encoding failed.
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// A received data packet the bridge acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFrame {
    /// The sender's component id.
    pub cid: [u8; 16],
    /// Universe 1–63999.
    pub universe: u16,
    /// Priority 0–200.
    pub priority: u8,
    /// Sequence number.
    pub sequence: u8,
    /// The source stops sending this universe.
    pub terminated: bool,
    /// Levels from channel 1 (start code removed).
    pub levels: Vec<u8>,
}

/// What a datagram is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// DMX levels (null start code, not preview).
    Data(DataFrame),
    /// Valid but not acted on: sync or discovery packets, preview data, other start codes.
    Other,
}

fn pdu_length(bytes: &[u8], at: usize) -> Option<usize> {
    let hi = *bytes.get(at)?;
    let lo = *bytes.get(at + 1)?;
    Some(usize::from(u16::from_be_bytes([hi & 0x0f, lo])))
}

/// Parses one datagram.
pub fn decode(bytes: &[u8]) -> Result<Received, PacketError> {
    let n = bytes.len();
    if n < FRAMING_PDU + 6 || pdu_length(bytes, ROOT_PDU) != Some(n - ROOT_PDU) {
        return Err(PacketError::Length(format!(
            "{n} bytes, root PDU length {:?}",
            pdu_length(bytes, ROOT_PDU)
        )));
    }
    let vector = bytes
        .get(18..22)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0);
    if vector == VECTOR_ROOT_DATA {
        // Each layer's length must reach exactly to the end of the datagram.
        let ok = n > HEADER
            && pdu_length(bytes, FRAMING_PDU) == Some(n - FRAMING_PDU)
            && pdu_length(bytes, DMP_PDU) == Some(n - DMP_PDU);
        if !ok {
            return Err(PacketError::Length(format!(
                "{n} bytes, PDU lengths {:?}/{:?}/{:?}",
                pdu_length(bytes, ROOT_PDU),
                pdu_length(bytes, FRAMING_PDU),
                pdu_length(bytes, DMP_PDU)
            )));
        }
    }
    let parsed = std::panic::catch_unwind(|| {
        AcnRootLayerProtocol::parse(bytes).map(|p| match p.pdu.data {
            E131RootLayerData::DataPacket(frame) => Some((p.pdu.cid, frame)),
            _ => None,
        })
    })
    .map_err(|_| PacketError::Parse("parser panicked".into()))?
    .map_err(|e| PacketError::Parse(e.to_string()))?;
    let Some((cid, frame)) = parsed else {
        return Ok(Received::Other);
    };
    let values = frame.data.property_values;
    let Some((&start, levels)) = values.split_first() else {
        return Err(PacketError::Length("no start code".into()));
    };
    if frame.preview_data || start != NULL_START_CODE {
        return Ok(Received::Other);
    }
    Ok(Received::Data(DataFrame {
        cid: *cid.as_bytes(),
        universe: frame.universe,
        priority: frame.priority,
        sequence: frame.sequence_number,
        terminated: frame.stream_terminated,
        levels: levels.to_vec(),
    }))
}

/// Who sends: the component id, name and priority of outbound packets.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// Component id, stable across restarts.
    pub cid: [u8; 16],
    /// Source name (at most 63 bytes).
    pub name: String,
    /// Priority 0–200.
    pub priority: u8,
}

/// A data packet for `universe` with all 512 levels.
pub fn encode(
    source: &SourceInfo,
    universe: u16,
    sequence: u8,
    terminated: bool,
    levels: &[u8],
) -> Result<Vec<u8>, PacketError> {
    let mut values = Vec::with_capacity(levels.len() + 1);
    values.push(NULL_START_CODE);
    values.extend_from_slice(levels);
    AcnRootLayerProtocol {
        pdu: E131RootLayer {
            cid: Uuid::from_bytes(source.cid),
            data: E131RootLayerData::DataPacket(DataPacketFramingLayer {
                source_name: Cow::Borrowed(source.name.as_str()),
                priority: source.priority,
                synchronization_address: 0,
                sequence_number: sequence,
                preview_data: false,
                stream_terminated: terminated,
                force_synchronization: false,
                universe,
                data: DataPacketDmpLayer {
                    property_values: Cow::Owned(values),
                },
            }),
        },
    }
    .pack_alloc()
    .map_err(|e| PacketError::Encode(e.to_string()))
}

/// The multicast group of a universe, 239.255.{hi}.{lo}.
pub fn multicast_group(universe: u16) -> Ipv4Addr {
    let [hi, lo] = universe.to_be_bytes();
    Ipv4Addr::new(239, 255, hi, lo)
}

/// A component id that stays the same across restarts of the same bridge on the same host:
/// FNV-1a of host name, source name and port, laid out as an RFC 4122 version-8 UUID.
pub fn stable_cid(host: &str, source_name: &str, port: u16) -> [u8; 16] {
    let fnv = |seed: u64| {
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
        for b in host
            .bytes()
            .chain([0])
            .chain(source_name.bytes())
            .chain([0])
            .chain(port.to_be_bytes())
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let mut cid = [0u8; 16];
    cid[..8].copy_from_slice(&fnv(0).to_be_bytes());
    cid[8..].copy_from_slice(&fnv(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    cid[6] = (cid[6] & 0x0f) | 0x80;
    cid[8] = (cid[8] & 0x3f) | 0x80;
    cid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> SourceInfo {
        SourceInfo {
            cid: stable_cid("host", "clasp-sacn", 5568),
            name: "clasp-sacn".into(),
            priority: 100,
        }
    }

    #[test]
    fn data_round_trips() {
        let mut levels = [0u8; 512];
        levels[0] = 255;
        levels[511] = 3;
        let bytes = encode(&source(), 63_999, 7, false, &levels).unwrap();
        assert_eq!(bytes.len(), 126 + 512);
        match decode(&bytes).unwrap() {
            Received::Data(f) => {
                assert_eq!(
                    (f.universe, f.priority, f.sequence, f.terminated),
                    (63_999, 100, 7, false)
                );
                assert_eq!((f.levels.len(), f.levels[0], f.levels[511]), (512, 255, 3));
                assert_eq!(f.cid, source().cid);
            }
            other => panic!("{other:?}"),
        }
        let end = encode(&source(), 1, 8, true, &levels).unwrap();
        assert!(matches!(decode(&end).unwrap(), Received::Data(f) if f.terminated));
    }

    #[test]
    fn bad_packets_are_errors_not_panics() {
        let good = encode(&source(), 1, 1, false, &[9; 512]).unwrap();
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err(), "truncated to {n}");
        }
        let mut wrong = good.clone();
        wrong[4] = b'X';
        assert!(decode(&wrong).is_err(), "identifier");
        let mut zero = good.clone();
        zero[113] = 0;
        zero[114] = 0;
        assert!(decode(&zero).is_err(), "universe 0");
        let mut high = good.clone();
        high[113..115].copy_from_slice(&64_000u16.to_be_bytes());
        assert!(decode(&high).is_err(), "universe 64000");
        let mut prio = good.clone();
        prio[108] = 201;
        assert!(decode(&prio).is_err(), "priority 201");
        let mut lens = good.clone();
        lens[117] = 0x7f;
        assert!(decode(&lens).is_err(), "DMP length");
    }

    #[test]
    fn groups_and_cids() {
        assert_eq!(multicast_group(1), Ipv4Addr::new(239, 255, 0, 1));
        assert_eq!(multicast_group(63_999), Ipv4Addr::new(239, 255, 249, 255));
        assert_eq!(stable_cid("a", "b", 1), stable_cid("a", "b", 1));
        assert_ne!(stable_cid("a", "b", 1), stable_cid("a", "b", 2));
    }
}
