//! The mapping between OSC packets and CLASP writes and values (docs/bridges/osc.md):
//! addresses under the bridge's namespace, type tags to values and back, bundles flattened
//! with their timetag converted from the NTP epoch to the router's µs since the Unix epoch.

use clasp_proto::Value;
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

use crate::Namespace;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// A bundle may be scheduled at most this far ahead (a garbage timetag must not hold a
/// bundle in memory for decades).
pub const MAX_AHEAD_US: u64 = 3_600_000_000;

/// Why a packet was dropped (counted as bad input).
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// Not OSC, truncated, or a type tag this bridge does not know.
    #[error("malformed OSC packet: {0}")]
    Malformed(#[from] rosc::OscError),
    /// Not a concrete OSC address (patterns, empty parts, spaces, ...).
    #[error("bad OSC address {0:?}: {1}")]
    Address(String, &'static str),
    /// A timetag more than an hour ahead of the bridge's clock.
    #[error("bundle timetag {0} s ahead of now (at most one hour)")]
    TooFarAhead(u64),
}

/// What an outbound value cannot become.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// rosc refused the packet.
    #[error("{0}")]
    Osc(String),
}

/// The writes one inbound packet asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Writes {
    /// CLASP address and value of each message, in packet order (bundles flattened).
    pub items: Vec<(String, Value)>,
    /// For a bundle: when to apply it (µs since the Unix epoch on the sender's clock), or
    /// `Some(None)` for "immediately". `None` for a plain message.
    pub bundle: Option<Option<u64>>,
}

/// Decodes one OSC packet (a UDP datagram or a TCP frame) into writes under `ns`.
/// `now_us` is the bridge's wall clock, to refuse timetags absurdly far ahead.
pub fn decode(bytes: &[u8], ns: &Namespace, now_us: u64) -> Result<Writes, MapError> {
    let (_, packet) = rosc::decoder::decode_udp(bytes)?;
    match packet {
        OscPacket::Message(m) => Ok(Writes {
            items: vec![message(m, ns)?],
            bundle: None,
        }),
        OscPacket::Bundle(b) => {
            let at = timetag_to_unix_us(b.timetag);
            if let Some(at) = at {
                if at > now_us.saturating_add(MAX_AHEAD_US) {
                    return Err(MapError::TooFarAhead((at - now_us) / 1_000_000));
                }
            }
            let mut items = Vec::new();
            flatten(b, ns, &mut items)?;
            Ok(Writes {
                items,
                bundle: Some(at),
            })
        }
    }
}

/// Nested bundles are flattened into the outer one, which keeps the outer timetag (OSC
/// requires inner timetags to be no earlier).
fn flatten(b: OscBundle, ns: &Namespace, out: &mut Vec<(String, Value)>) -> Result<(), MapError> {
    for p in b.content {
        match p {
            OscPacket::Message(m) => out.push(message(m, ns)?),
            OscPacket::Bundle(inner) => flatten(inner, ns, out)?,
        }
    }
    Ok(())
}

fn message(m: OscMessage, ns: &Namespace) -> Result<(String, Value), MapError> {
    check_address(&m.addr)?;
    let address = ns
        .address(&m.addr)
        .map_err(|_| MapError::Address(m.addr.clone(), "not a CLASP address"))?;
    let mut args: Vec<Value> = m.args.into_iter().map(arg).collect();
    let value = match args.len() {
        0 => Value::Null,
        1 => args.pop().unwrap_or_default(),
        _ => Value::Array(args),
    };
    Ok((address.as_str().to_string(), value))
}

/// A concrete OSC address: `/` then non-empty parts of printable characters other than the
/// pattern characters (a pattern names many params; the bridge writes one).
fn check_address(addr: &str) -> Result<(), MapError> {
    let bad = |why| Err(MapError::Address(addr.to_string(), why));
    let Some(rest) = addr.strip_prefix('/') else {
        return bad("must start with '/'");
    };
    if rest.is_empty() {
        return bad("no path");
    }
    if rest.split('/').any(str::is_empty) {
        return bad("empty part");
    }
    if rest
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "#*?[]{},".contains(c))
    {
        return bad("pattern, space or reserved character");
    }
    Ok(())
}

/// One OSC argument as a CLASP value.
pub fn arg(a: OscType) -> Value {
    match a {
        // An f32 becomes the f64 with the same shortest decimal form: `f 0.1` is 0.1, not
        // 0.10000000149011612 (and `as f32` gives the same f32 back on the way out).
        OscType::Float(f) => Value::Float(widen(f)),
        OscType::Double(d) => Value::Float(d),
        OscType::Int(i) => Value::Int(i64::from(i)),
        OscType::Long(h) => Value::Int(h),
        OscType::String(s) => Value::String(s),
        OscType::Char(c) => Value::String(c.to_string()),
        OscType::Blob(b) => Value::Bytes(b),
        OscType::Bool(b) => Value::Bool(b),
        OscType::Nil => Value::Null,
        OscType::Inf => Value::Float(f64::INFINITY),
        OscType::Color(c) => Value::Array(
            [c.red, c.green, c.blue, c.alpha]
                .into_iter()
                .map(|x| Value::Int(i64::from(x)))
                .collect(),
        ),
        OscType::Midi(m) => Value::Array(
            [m.port, m.status, m.data1, m.data2]
                .into_iter()
                .map(|x| Value::Int(i64::from(x)))
                .collect(),
        ),
        OscType::Time(t) => match timetag_to_unix_us(t) {
            Some(us) => Value::Int(i64::try_from(us).unwrap_or(i64::MAX)),
            None => Value::Null,
        },
        OscType::Array(a) => Value::Array(a.content.into_iter().map(arg).collect()),
    }
}

fn widen(f: f32) -> f64 {
    if !f.is_finite() {
        return f64::from(f);
    }
    f.to_string().parse().unwrap_or(f64::from(f))
}

/// An OSC timetag as µs since the Unix epoch; `None` for "immediately" (`0x0000000000000001`)
/// and for times before 1970. NTP era 1 (from February 2036, seconds wrapped) is handled.
pub fn timetag_to_unix_us(t: OscTime) -> Option<u64> {
    if t.seconds == 0 && t.fractional <= 1 {
        return None;
    }
    let mut seconds = u64::from(t.seconds);
    if seconds < 1 << 31 {
        // RFC 4330: a seconds field with the top bit clear is era 1 (after 2036-02-07).
        seconds += 1 << 32;
    }
    let unix = seconds.checked_sub(NTP_UNIX_OFFSET)?;
    let micros = (u64::from(t.fractional) * 1_000_000) >> 32;
    unix.checked_mul(1_000_000)?.checked_add(micros)
}

/// µs since the Unix epoch as an OSC timetag (the inverse of [`timetag_to_unix_us`]).
pub fn unix_us_to_timetag(us: u64) -> OscTime {
    let seconds = us / 1_000_000 + NTP_UNIX_OFFSET;
    let fractional = ((us % 1_000_000) << 32) / 1_000_000;
    OscTime {
        seconds: seconds as u32,
        fractional: fractional as u32,
    }
}

/// The OSC arguments of a CLASP value: arrays flattened, maps as JSON text.
pub fn args(value: &Value, out: &mut Vec<OscType>) {
    match value {
        Value::Null => out.push(OscType::Nil),
        Value::Bool(b) => out.push(OscType::Bool(*b)),
        Value::Int(i) => out.push(match i32::try_from(*i) {
            Ok(small) => OscType::Int(small),
            Err(_) => OscType::Long(*i),
        }),
        Value::Float(f) => out.push(OscType::Float(*f as f32)),
        Value::String(s) => out.push(OscType::String(s.clone())),
        Value::Bytes(b) => out.push(OscType::Blob(b.clone())),
        Value::Array(items) => items.iter().for_each(|v| args(v, out)),
        Value::Map(_) => out.push(OscType::String(json(value).to_string())),
    }
}

/// A CLASP value as JSON (bytes as an array of numbers, non-finite floats as null).
fn json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::String(s) => s.clone().into(),
        Value::Bytes(b) => b.clone().into(),
        Value::Array(a) => a.iter().map(json).collect(),
        Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
    }
}

/// The OSC packet for a change at OSC path `path` (namespace already removed).
pub fn encode(path: &str, value: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut osc_args = Vec::new();
    args(value, &mut osc_args);
    let packet = OscPacket::Message(OscMessage {
        addr: path.to_string(),
        args: osc_args,
    });
    rosc::encoder::encode(&packet).map_err(|e| EncodeError::Osc(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rosc::{OscColor, OscMidiMessage};

    fn ns() -> Namespace {
        "/osc".parse().unwrap()
    }

    fn packet(addr: &str, args: Vec<OscType>) -> Vec<u8> {
        rosc::encoder::encode(&OscPacket::Message(OscMessage {
            addr: addr.into(),
            args,
        }))
        .unwrap()
    }

    #[test]
    fn every_type_tag_maps() {
        let cases = vec![
            (OscType::Float(0.1), Value::Float(0.1)),
            (OscType::Double(0.1), Value::Float(0.1)),
            (OscType::Int(-5), Value::Int(-5)),
            (OscType::Long(1 << 40), Value::Int(1 << 40)),
            (OscType::String("hé".into()), Value::String("hé".into())),
            (OscType::Blob(vec![0, 255]), Value::Bytes(vec![0, 255])),
            (OscType::Bool(true), Value::Bool(true)),
            (OscType::Bool(false), Value::Bool(false)),
            (OscType::Nil, Value::Null),
            (OscType::Inf, Value::Float(f64::INFINITY)),
            (OscType::Char('x'), Value::String("x".into())),
            (
                OscType::Color(OscColor {
                    red: 255,
                    green: 0,
                    blue: 128,
                    alpha: 1,
                }),
                Value::Array(vec![255.into(), 0.into(), 128.into(), 1.into()]),
            ),
            (
                OscType::Midi(OscMidiMessage {
                    port: 0,
                    status: 0x90,
                    data1: 60,
                    data2: 100,
                }),
                Value::Array(vec![0.into(), 0x90.into(), 60.into(), 100.into()]),
            ),
            (
                OscType::Time(unix_us_to_timetag(1_700_000_000_250_000)),
                Value::Int(1_700_000_000_250_000),
            ),
        ];
        for (osc, want) in cases {
            let w = decode(&packet("/a/b", vec![osc.clone()]), &ns(), 0).unwrap();
            assert_eq!(w.items, vec![("/osc/a/b".to_string(), want)], "{osc:?}");
            assert_eq!(w.bundle, None);
        }
    }

    #[test]
    fn argument_count_decides_the_shape() {
        let none = decode(&packet("/x", vec![]), &ns(), 0).unwrap();
        assert_eq!(none.items[0].1, Value::Null);
        let many = decode(
            &packet("/color", vec![255.into(), 0.into(), 128.into()]),
            &ns(),
            0,
        )
        .unwrap();
        assert_eq!(
            many.items[0].1,
            Value::Array(vec![255.into(), 0.into(), 128.into()])
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in ["/a/*", "/a//b", "/", "/a b", "/{a,b}", "/a/"] {
            assert!(
                matches!(
                    decode(&packet(bad, vec![]), &ns(), 0),
                    Err(MapError::Address(..))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            decode(b"garbage!", &ns(), 0),
            Err(MapError::Malformed(_))
        ));
    }

    #[test]
    fn bundles_flatten_with_the_outer_timetag() {
        let at = 1_800_000_000_000_000;
        let inner = OscPacket::Bundle(OscBundle {
            timetag: unix_us_to_timetag(at + 5),
            content: vec![OscPacket::Message(OscMessage {
                addr: "/b".into(),
                args: vec![2.into()],
            })],
        });
        let outer = OscPacket::Bundle(OscBundle {
            timetag: unix_us_to_timetag(at),
            content: vec![
                OscPacket::Message(OscMessage {
                    addr: "/a".into(),
                    args: vec![1.into()],
                }),
                inner,
            ],
        });
        let bytes = rosc::encoder::encode(&outer).unwrap();
        let w = decode(&bytes, &ns(), at - 1000).unwrap();
        assert_eq!(
            w.items,
            vec![("/osc/a".into(), 1.into()), ("/osc/b".into(), 2.into())]
        );
        assert_eq!(w.bundle, Some(Some(at)));
        assert!(matches!(
            decode(&bytes, &ns(), at - 2 * MAX_AHEAD_US),
            Err(MapError::TooFarAhead(_))
        ));
    }

    #[test]
    fn timetags_convert_both_ways() {
        assert_eq!(timetag_to_unix_us(OscTime::from((0, 1))), None);
        assert_eq!(
            timetag_to_unix_us(OscTime::from((2_208_988_800, 0))),
            Some(0)
        );
        for us in [0, 1, 999_999, 1_764_756_000_123_456] {
            let back = timetag_to_unix_us(unix_us_to_timetag(us)).unwrap();
            assert!(back.abs_diff(us) <= 1, "{us} -> {back}");
        }
        // Era 1 (after February 2036) wraps the seconds field.
        let t = OscTime::from((100, 0));
        assert_eq!(
            timetag_to_unix_us(t),
            Some(((1u64 << 32) + 100 - NTP_UNIX_OFFSET) * 1_000_000)
        );
    }

    #[test]
    fn values_go_out_with_the_widest_supported_tags() {
        let mut out = Vec::new();
        let v = Value::Array(vec![
            true.into(),
            false.into(),
            7.into(),
            Value::Int(1 << 40),
            0.75.into(),
            "s".into(),
            Value::Bytes(vec![1]),
            Value::Null,
            Value::Array(vec![1.into(), 2.into()]),
            Value::Map(vec![("k".into(), 1.into())]),
        ]);
        args(&v, &mut out);
        assert_eq!(
            out,
            vec![
                OscType::Bool(true),
                OscType::Bool(false),
                OscType::Int(7),
                OscType::Long(1 << 40),
                OscType::Float(0.75),
                OscType::String("s".into()),
                OscType::Blob(vec![1]),
                OscType::Nil,
                OscType::Int(1),
                OscType::Int(2),
                OscType::String(r#"{"k":1}"#.into()),
            ]
        );
    }
}
