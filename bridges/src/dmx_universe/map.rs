//! DMX levels ↔ CLASP addresses and values, pure so every rule is unit-tested:
//! `{ns}/{universe}/{channel}` (channel 1–512) holds a level, an int 0–255 or, with
//! `--normalize`, a float 0.0–1.0; `{ns}/{universe}` carries a whole frame (bytes).

use clasp_proto::Value;

use super::merge::CHANNELS;

/// How received frames become CLASP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmxMode {
    /// Each changed channel is a Param at `{ns}/{universe}/{channel}`.
    #[default]
    Channel,
    /// Each frame is one Stream sample (512 bytes) at `{ns}/{universe}`.
    Universe,
}

/// Why a CLASP address or value does not map to DMX.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MapError {
    /// Not `/{universe}` or `/{universe}/{channel}`.
    #[error("not /universe or /universe/channel: {0:?}")]
    Path(String),
    /// Channel outside 1–512.
    #[error("channel {0} is outside 1-512")]
    Channel(u64),
    /// A level outside 0–255 (0.0–1.0 normalised), or not a number.
    #[error("not a DMX level: {0}")]
    Level(String),
}

/// A protocol path under a DMX bridge's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmxPath {
    /// One channel (1-based).
    Channel(u16, u16),
    /// A whole universe.
    Universe(u16),
}

/// Parses `/3/17` or `/3` (the path after the namespace).
pub fn parse_path(path: &str) -> Result<DmxPath, MapError> {
    let bad = || MapError::Path(path.to_string());
    let mut parts = path.strip_prefix('/').ok_or_else(bad)?.split('/');
    let universe: u16 = parts.next().and_then(|u| u.parse().ok()).ok_or_else(bad)?;
    let Some(channel) = parts.next() else {
        return Ok(DmxPath::Universe(universe));
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    let channel: u64 = channel.parse().map_err(|_| bad())?;
    match u16::try_from(channel) {
        Ok(c) if (1..=CHANNELS as u16).contains(&c) => Ok(DmxPath::Channel(universe, c)),
        _ => Err(MapError::Channel(channel)),
    }
}

/// The path of a channel, `/{universe}/{channel}`.
pub fn channel_path(universe: u16, channel: u16) -> String {
    format!("/{universe}/{channel}")
}

/// The path of a universe, `/{universe}`.
pub fn universe_path(universe: u16) -> String {
    format!("/{universe}")
}

/// The CLASP value of a level.
pub fn level_value(level: u8, normalize: bool) -> Value {
    if normalize {
        Value::Float(f64::from(level) / 255.0)
    } else {
        Value::Int(i64::from(level))
    }
}

/// The level a CLASP value sets: an int 0–255, a float 0.0–1.0 when normalised (0–255 when
/// not, rounded), or a bool (off/full).
pub fn value_level(value: &Value, normalize: bool) -> Result<u8, MapError> {
    let bad = || MapError::Level(format!("{value:?}"));
    match value {
        Value::Bool(b) => Ok(if *b { 255 } else { 0 }),
        Value::Int(i) if normalize && (0..=1).contains(i) => Ok(if *i == 1 { 255 } else { 0 }),
        Value::Int(i) if !normalize => u8::try_from(*i).map_err(|_| bad()),
        Value::Float(f) if normalize && (0.0..=1.0).contains(f) => Ok((f * 255.0).round() as u8),
        Value::Float(f) if !normalize && (0.0..=255.0).contains(f) => Ok(f.round() as u8),
        _ => Err(bad()),
    }
}

/// The levels of a whole-universe value: bytes, or an array of levels (at most 512).
pub fn value_frame(value: &Value, normalize: bool) -> Result<Vec<u8>, MapError> {
    let levels = match value {
        Value::Bytes(b) => b.clone(),
        Value::Array(items) => items
            .iter()
            .map(|v| value_level(v, normalize))
            .collect::<Result<_, _>>()?,
        _ => return Err(MapError::Level(format!("{value:?}"))),
    };
    if levels.len() > CHANNELS {
        return Err(MapError::Level(format!("{} levels", levels.len())));
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_both_ways() {
        assert_eq!(parse_path("/3/17"), Ok(DmxPath::Channel(3, 17)));
        assert_eq!(parse_path("/0/512"), Ok(DmxPath::Channel(0, 512)));
        assert_eq!(parse_path("/7"), Ok(DmxPath::Universe(7)));
        assert_eq!(
            parse_path(&channel_path(3, 17)),
            Ok(DmxPath::Channel(3, 17))
        );
        assert_eq!(parse_path(&universe_path(9)), Ok(DmxPath::Universe(9)));
        assert_eq!(parse_path("/0/0"), Err(MapError::Channel(0)));
        assert_eq!(parse_path("/0/513"), Err(MapError::Channel(513)));
        for bad in ["", "/", "/x/1", "/1/x", "/1/2/3", "/70000/1", "1/2"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn levels_map_both_ways() {
        for level in [0u8, 1, 127, 128, 254, 255] {
            assert_eq!(value_level(&level_value(level, false), false), Ok(level));
            assert_eq!(value_level(&level_value(level, true), true), Ok(level));
        }
        assert_eq!(level_value(255, true), Value::Float(1.0));
        assert_eq!(level_value(200, false), Value::Int(200));
        assert_eq!(value_level(&Value::Float(0.5), true), Ok(128));
        assert_eq!(value_level(&Value::Float(99.6), false), Ok(100));
        assert_eq!(value_level(&Value::Bool(true), false), Ok(255));
        for bad in [
            Value::Int(256),
            Value::Int(-1),
            Value::Float(1.5),
            Value::String("x".into()),
            Value::Null,
        ] {
            assert!(value_level(&bad, true).is_err(), "{bad:?}");
        }
        assert!(value_level(&Value::Int(256), false).is_err());
        assert!(value_level(&Value::Float(-0.1), false).is_err());
    }

    #[test]
    fn frames_are_bytes_or_arrays() {
        assert_eq!(
            value_frame(&Value::Bytes(vec![1, 2]), false),
            Ok(vec![1, 2])
        );
        let arr = Value::Array(vec![Value::Int(3), Value::Int(255)]);
        assert_eq!(value_frame(&arr, false), Ok(vec![3, 255]));
        assert!(value_frame(&Value::Bytes(vec![0; 513]), false).is_err());
        assert!(value_frame(&Value::Int(3), false).is_err());
    }
}
