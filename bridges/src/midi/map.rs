//! MIDI messages ↔ CLASP paths and values (FEATURES MIDI-2/3/4), pure and both ways.
//! Paths are relative to the bridge's namespace; channels are 1-16 in paths:
//!
//! | MIDI | path | signal, value |
//! |---|---|---|
//! | control change | `/ch/{c}/cc/{n}` | Param, 0–1 (value/127; 14-bit pairs: value/16383) |
//! | note on / off | `/ch/{c}/note/{n}` | Event, velocity 0–1 (off = 0) |
//! | program change | `/ch/{c}/program` | Param, integer 0–127 |
//! | pitch bend | `/ch/{c}/pitch` | Param, 0–1, centre 0.5 |
//! | channel pressure | `/ch/{c}/pressure` | Param, 0–1 |
//! | poly pressure | `/ch/{c}/poly/{n}` | Param, 0–1 |
//! | clock, start, continue, stop, reset, tune request | `/sys/{clock,…}` | Event, null |
//! | SysEx | `/sys/sysex` | Event, bytes between F0 and F7 |
//! | song position, song select, time code | `/sys/songpos`, `/sys/song`, `/sys/timecode` | Param, integer |

use clasp_proto::{SignalType, Value};

use super::parse::MidiMessage;

/// Which controllers 0-31 are sent as 14-bit pairs (MSB `n`, LSB `n + 32`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cc14(u32);

impl Cc14 {
    /// From the configured MSB controller numbers (each 0-31).
    pub fn new(msbs: &[u8]) -> Self {
        Cc14(
            msbs.iter()
                .filter(|n| **n < 32)
                .fold(0, |m, n| m | (1 << n)),
        )
    }

    fn has(&self, cc: u8) -> bool {
        cc < 32 && self.0 & (1 << cc) != 0
    }
}

/// What a message becomes on the CLASP side.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// Path under the namespace.
    pub path: String,
    /// Param or Event.
    pub signal: SignalType,
    /// The value.
    pub value: Value,
}

impl Inbound {
    fn param(path: String, value: Value) -> Option<Self> {
        Some(Inbound {
            path,
            signal: SignalType::Param,
            value,
        })
    }
    fn event(path: String, value: Value) -> Option<Self> {
        Some(Inbound {
            path,
            signal: SignalType::Event,
            value,
        })
    }
}

/// Inbound state: the last MSB of each 14-bit controller, per channel.
#[derive(Debug, Default)]
pub struct Decoder {
    cc14: Cc14,
    msb: [[u8; 32]; 16],
}

fn norm7(v: u8) -> Value {
    Value::Float(f64::from(v) / 127.0)
}

/// Pitch bend 0..16383 → 0..1 with 8192 exactly 0.5.
pub fn pitch_to_unit(v: u16) -> f64 {
    let v = f64::from(v.min(16383));
    if v <= 8192.0 {
        v / 8192.0 * 0.5
    } else {
        0.5 + (v - 8192.0) / 8191.0 * 0.5
    }
}

/// The inverse of [`pitch_to_unit`], clamped.
pub fn unit_to_pitch(x: f64) -> u16 {
    let x = x.clamp(0.0, 1.0);
    let v = if x <= 0.5 {
        x / 0.5 * 8192.0
    } else {
        8192.0 + (x - 0.5) / 0.5 * 8191.0
    };
    v.round().clamp(0.0, 16383.0) as u16
}

impl Decoder {
    /// With these 14-bit controllers.
    pub fn new(cc14: Cc14) -> Self {
        Decoder {
            cc14,
            msb: [[0; 32]; 16],
        }
    }

    /// The CLASP side of one message; `None` for what is not bridged (active sensing).
    pub fn decode(&mut self, msg: &MidiMessage) -> Option<Inbound> {
        use MidiMessage::*;
        let ch_path = |ch: &u8, rest: String| format!("/ch/{}/{rest}", ch + 1);
        match msg {
            NoteOn { ch, note, velocity } => {
                Inbound::event(ch_path(ch, format!("note/{note}")), norm7(*velocity))
            }
            NoteOff { ch, note, .. } => {
                Inbound::event(ch_path(ch, format!("note/{note}")), Value::Float(0.0))
            }
            Cc { ch, cc, value } => {
                let path = |n: u8| ch_path(ch, format!("cc/{n}"));
                let msbs = self.msb.get_mut(usize::from(*ch))?;
                if self.cc14.has(*cc) {
                    *msbs.get_mut(usize::from(*cc))? = *value;
                    let v = f64::from(u16::from(*value) << 7) / 16383.0;
                    return Inbound::param(path(*cc), Value::Float(v));
                }
                if *cc >= 32 && self.cc14.has(cc - 32) {
                    let msb = *msbs.get(usize::from(cc - 32))?;
                    let v = f64::from((u16::from(msb) << 7) | u16::from(*value)) / 16383.0;
                    return Inbound::param(path(cc - 32), Value::Float(v));
                }
                Inbound::param(path(*cc), norm7(*value))
            }
            Program { ch, program } => Inbound::param(
                ch_path(ch, "program".into()),
                Value::Int(i64::from(*program)),
            ),
            Pressure { ch, value } => Inbound::param(ch_path(ch, "pressure".into()), norm7(*value)),
            Poly { ch, note, pressure } => {
                Inbound::param(ch_path(ch, format!("poly/{note}")), norm7(*pressure))
            }
            Pitch { ch, value } => Inbound::param(
                ch_path(ch, "pitch".into()),
                Value::Float(pitch_to_unit(*value)),
            ),
            SysEx(body) => Inbound::event("/sys/sysex".into(), Value::Bytes(body.clone())),
            TimeCode(v) => Inbound::param("/sys/timecode".into(), Value::Int(i64::from(*v))),
            SongPosition(v) => Inbound::param("/sys/songpos".into(), Value::Int(i64::from(*v))),
            SongSelect(v) => Inbound::param("/sys/song".into(), Value::Int(i64::from(*v))),
            TuneRequest => Inbound::event("/sys/tune".into(), Value::Null),
            Clock => Inbound::event("/sys/clock".into(), Value::Null),
            Start => Inbound::event("/sys/start".into(), Value::Null),
            Continue => Inbound::event("/sys/continue".into(), Value::Null),
            Stop => Inbound::event("/sys/stop".into(), Value::Null),
            Reset => Inbound::event("/sys/reset".into(), Value::Null),
            ActiveSensing => None,
        }
    }
}

/// Why a CLASP update does not go out as MIDI.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// The path is not one of the mapped forms.
    #[error("not a MIDI path")]
    Path,
    /// The value has the wrong type for the path.
    #[error("value is not {0}")]
    Value(&'static str),
}

fn number(v: &Value) -> Result<f64, EncodeError> {
    match v {
        Value::Float(f) if f.is_finite() => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        _ => Err(EncodeError::Value("a number")),
    }
}

fn unit7(v: &Value) -> Result<u8, EncodeError> {
    Ok((number(v)?.clamp(0.0, 1.0) * 127.0).round() as u8)
}

fn int7(v: &Value) -> Result<u8, EncodeError> {
    Ok(number(v)?.round().clamp(0.0, 127.0) as u8)
}

fn seven(s: &str) -> Result<u8, EncodeError> {
    s.parse::<u8>()
        .ok()
        .filter(|n| *n < 128)
        .ok_or(EncodeError::Path)
}

/// The MIDI bytes for a value at `path` (under the namespace).
pub fn encode(path: &str, value: &Value, cc14: Cc14) -> Result<Vec<u8>, EncodeError> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["ch", c, rest @ ..] => {
            let ch = c
                .parse::<u8>()
                .ok()
                .filter(|c| (1..=16).contains(c))
                .ok_or(EncodeError::Path)?
                - 1;
            match rest {
                ["cc", n] => {
                    let cc = seven(n)?;
                    if cc14.has(cc) {
                        let v = (number(value)?.clamp(0.0, 1.0) * 16383.0).round() as u16;
                        Ok(vec![
                            0xB0 | ch,
                            cc,
                            (v >> 7) as u8 & 0x7F,
                            0xB0 | ch,
                            cc + 32,
                            v as u8 & 0x7F,
                        ])
                    } else {
                        Ok(vec![0xB0 | ch, cc, unit7(value)?])
                    }
                }
                ["note", n] => {
                    let note = seven(n)?;
                    match unit7(value)? {
                        0 => Ok(vec![0x80 | ch, note, 0]),
                        v => Ok(vec![0x90 | ch, note, v]),
                    }
                }
                ["poly", n] => Ok(vec![0xA0 | ch, seven(n)?, unit7(value)?]),
                ["program"] => Ok(vec![0xC0 | ch, int7(value)?]),
                ["pressure"] => Ok(vec![0xD0 | ch, unit7(value)?]),
                ["pitch"] => {
                    let v = unit_to_pitch(number(value)?);
                    Ok(vec![0xE0 | ch, v as u8 & 0x7F, (v >> 7) as u8 & 0x7F])
                }
                _ => Err(EncodeError::Path),
            }
        }
        ["sys", what] => match *what {
            "clock" => Ok(vec![0xF8]),
            "start" => Ok(vec![0xFA]),
            "continue" => Ok(vec![0xFB]),
            "stop" => Ok(vec![0xFC]),
            "reset" => Ok(vec![0xFF]),
            "tune" => Ok(vec![0xF6]),
            "song" => Ok(vec![0xF3, int7(value)?]),
            "timecode" => Ok(vec![0xF1, int7(value)?]),
            "songpos" => {
                let v = number(value)?.round().clamp(0.0, 16383.0) as u16;
                Ok(vec![0xF2, v as u8 & 0x7F, (v >> 7) as u8 & 0x7F])
            }
            "sysex" => {
                let Value::Bytes(b) = value else {
                    return Err(EncodeError::Value("bytes"));
                };
                let body = b.strip_prefix(&[0xF0]).unwrap_or(b);
                let body = body.strip_suffix(&[0xF7]).unwrap_or(body);
                if body.iter().any(|x| *x >= 0x80) {
                    return Err(EncodeError::Value("7-bit SysEx data"));
                }
                let mut out = Vec::with_capacity(body.len() + 2);
                out.push(0xF0);
                out.extend_from_slice(body);
                out.push(0xF7);
                Ok(out)
            }
            _ => Err(EncodeError::Path),
        },
        _ => Err(EncodeError::Path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::midi::parse::Parser;

    fn dec(bytes: &[u8], cc14: Cc14) -> Vec<Inbound> {
        let mut d = Decoder::new(cc14);
        Parser::default()
            .feed(bytes)
            .into_iter()
            .filter_map(|m| m.ok())
            .filter_map(|m| d.decode(&m))
            .collect()
    }

    #[test]
    fn every_rule_both_ways() {
        let cases: &[(&[u8], &str, SignalType, Value)] = &[
            (
                &[0xB0, 74, 127],
                "/ch/1/cc/74",
                SignalType::Param,
                Value::Float(1.0),
            ),
            (
                &[0x9F, 60, 127],
                "/ch/16/note/60",
                SignalType::Event,
                Value::Float(1.0),
            ),
            (
                &[0x80, 60, 0],
                "/ch/1/note/60",
                SignalType::Event,
                Value::Float(0.0),
            ),
            (
                &[0xC2, 5],
                "/ch/3/program",
                SignalType::Param,
                Value::Int(5),
            ),
            (
                &[0xE0, 0, 0x40],
                "/ch/1/pitch",
                SignalType::Param,
                Value::Float(0.5),
            ),
            (
                &[0xE0, 0x7F, 0x7F],
                "/ch/1/pitch",
                SignalType::Param,
                Value::Float(1.0),
            ),
            (
                &[0xD1, 0],
                "/ch/2/pressure",
                SignalType::Param,
                Value::Float(0.0),
            ),
            (
                &[0xA0, 61, 127],
                "/ch/1/poly/61",
                SignalType::Param,
                Value::Float(1.0),
            ),
            (&[0xF8], "/sys/clock", SignalType::Event, Value::Null),
            (&[0xFA], "/sys/start", SignalType::Event, Value::Null),
            (&[0xFB], "/sys/continue", SignalType::Event, Value::Null),
            (&[0xFC], "/sys/stop", SignalType::Event, Value::Null),
            (
                &[0xF0, 1, 2, 0xF7],
                "/sys/sysex",
                SignalType::Event,
                Value::Bytes(vec![1, 2]),
            ),
            (
                &[0xF2, 0, 1],
                "/sys/songpos",
                SignalType::Param,
                Value::Int(128),
            ),
            (&[0xF3, 9], "/sys/song", SignalType::Param, Value::Int(9)),
        ];
        for (bytes, path, signal, value) in cases {
            let got = dec(bytes, Cc14::default());
            assert_eq!(
                got,
                [Inbound {
                    path: path.to_string(),
                    signal: *signal,
                    value: value.clone()
                }],
                "{bytes:02x?}"
            );
            assert_eq!(
                encode(path, value, Cc14::default()).as_deref(),
                Ok(*bytes),
                "{path}"
            );
        }
        // Note-on with velocity 0 is a note-off.
        assert_eq!(
            dec(&[0x90, 60, 0], Cc14::default())[0].value,
            Value::Float(0.0)
        );
        // Half-way CC rounds to 64 (MIDI-3).
        assert_eq!(
            encode("/ch/1/cc/74", &Value::Float(0.5), Cc14::default()),
            Ok(vec![0xB0, 74, 64])
        );
        assert_eq!(dec(&[0xFE], Cc14::default()), []);
    }

    #[test]
    fn fourteen_bit_pairs() {
        let cc14 = Cc14::new(&[7]);
        let got = dec(&[0xB0, 7, 0x40, 39, 0x01], cc14);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].path, "/ch/1/cc/7");
        assert_eq!(got[1].value, Value::Float(f64::from(0x2001) / 16383.0));
        assert_eq!(
            encode("/ch/1/cc/7", &Value::Float(1.0), cc14),
            Ok(vec![0xB0, 7, 0x7F, 0xB0, 39, 0x7F])
        );
        // Other controllers stay 7-bit.
        assert_eq!(dec(&[0xB0, 8, 127], cc14)[0].path, "/ch/1/cc/8");
    }

    #[test]
    fn bad_paths_and_values() {
        for p in [
            "/ch/0/cc/1",
            "/ch/17/cc/1",
            "/ch/1/cc/128",
            "/ch/1/foo",
            "/sys/nope",
            "/x",
        ] {
            assert_eq!(
                encode(p, &Value::Float(1.0), Cc14::default()),
                Err(EncodeError::Path),
                "{p}"
            );
        }
        assert!(encode("/ch/1/cc/1", &Value::String("x".into()), Cc14::default()).is_err());
        assert!(encode("/sys/sysex", &Value::Bytes(vec![0x80]), Cc14::default()).is_err());
        assert_eq!(unit_to_pitch(0.0), 0);
        assert_eq!(unit_to_pitch(0.5), 8192);
        assert_eq!(unit_to_pitch(1.0), 16383);
    }
}
