//! The levels of one universe both ways, and the pure mapping between CLASP values and DMX
//! levels: what goes out is always a whole frame, what comes in is reduced to the channels
//! that changed since the last frame the device reported.

use clasp_proto::Value;

use super::Channels;

/// Why a CLASP value is not a DMX level.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LevelError {
    /// Not a number or bool.
    #[error("a DMX level is a number 0-255, not {0}")]
    NotANumber(&'static str),
}

/// The DMX level for a value: integers and floats are rounded and clamped to 0–255, a bool
/// is 0 or 255.
pub fn level(value: &Value) -> Result<u8, LevelError> {
    let v = match value {
        Value::Int(i) => (*i).clamp(0, 255) as f64,
        Value::Float(f) if f.is_finite() => f.round().clamp(0.0, 255.0),
        Value::Float(_) => return Err(LevelError::NotANumber("a non-finite float")),
        Value::Bool(b) => {
            if *b {
                255.0
            } else {
                0.0
            }
        }
        Value::Null => return Err(LevelError::NotANumber("null")),
        Value::String(_) => return Err(LevelError::NotANumber("a string")),
        Value::Bytes(_) => return Err(LevelError::NotANumber("bytes")),
        Value::Array(_) => return Err(LevelError::NotANumber("an array")),
        Value::Map(_) => return Err(LevelError::NotANumber("a map")),
    };
    Ok(v as u8)
}

/// The channel number of a protocol path (`/12` → 12), if it is one of `channels`.
pub fn channel(path: &str, channels: Channels) -> Option<u16> {
    let n: u16 = path.strip_prefix('/')?.parse().ok()?;
    channels.contains(n).then_some(n)
}

/// Output levels plus the last levels received.
#[derive(Debug, Clone)]
pub struct Universe {
    out: [u8; 512],
    /// Slots sent per frame (the last bridged channel, at least 24 as DMX requires).
    slots: usize,
    dirty: bool,
    seen: Option<[u8; 512]>,
}

impl Universe {
    /// All channels at 0.
    pub fn new(channels: Channels) -> Self {
        Self {
            out: [0; 512],
            slots: usize::from(channels.last).clamp(24, 512),
            dirty: true,
            seen: None,
        }
    }

    /// Sets an output channel (1-512); whether it changed.
    pub fn set(&mut self, channel: u16, level: u8) -> bool {
        let Some(slot) = usize::from(channel)
            .checked_sub(1)
            .and_then(|i| self.out.get_mut(i))
        else {
            return false;
        };
        let changed = *slot != level;
        *slot = level;
        self.dirty |= changed;
        changed
    }

    /// The slots of the next output frame (channel 1 first).
    pub fn frame(&self) -> &[u8] {
        self.out.get(..self.slots).unwrap_or(&self.out)
    }

    /// All 512 output slots (Open DMX always sends a full universe).
    pub fn full_frame(&self) -> &[u8] {
        &self.out
    }

    /// Marks the output as changed, so the next tick sends it (a device was reopened).
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Whether the output changed since [`Universe::sent`].
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Marks the output as sent.
    pub fn sent(&mut self) {
        self.dirty = false;
    }

    /// Forgets what the device reported (it was reopened: report everything again).
    pub fn reset_input(&mut self) {
        self.seen = None;
    }

    /// A received whole frame: the bridged channels whose level differs from the last one
    /// (all of them on the first frame). Slots the frame lacks keep their level.
    pub fn received_frame(&mut self, slots: &[u8], channels: Channels) -> Vec<(u16, u8)> {
        let first = self.seen.is_none();
        let seen = self.seen.get_or_insert([0; 512]);
        let mut changes = Vec::new();
        for (i, &level) in slots.iter().enumerate().take(512) {
            let n = i as u16 + 1;
            let Some(old) = seen.get_mut(i) else { break };
            if channels.contains(n) && (first || *old != level) {
                changes.push((n, level));
            }
            *old = level;
        }
        changes
    }

    /// Received changes (label 9): those of bridged channels, remembered.
    pub fn received_changes(&mut self, list: &[(u16, u8)], channels: Channels) -> Vec<(u16, u8)> {
        let seen = self.seen.get_or_insert([0; 512]);
        let mut out = Vec::new();
        for &(n, level) in list {
            if let Some(old) = usize::from(n).checked_sub(1).and_then(|i| seen.get_mut(i)) {
                *old = level;
                if channels.contains(n) {
                    out.push((n, level));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_to_levels() {
        assert_eq!(level(&Value::Int(300)), Ok(255));
        assert_eq!(level(&Value::Int(-3)), Ok(0));
        assert_eq!(level(&Value::Float(127.6)), Ok(128));
        assert_eq!(level(&Value::Bool(true)), Ok(255));
        assert!(level(&Value::String("x".into())).is_err());
        assert!(level(&Value::Float(f64::NAN)).is_err());
    }

    #[test]
    fn paths_to_channels() {
        let all = Channels::default();
        assert_eq!(channel("/1", all), Some(1));
        assert_eq!(channel("/512", all), Some(512));
        for bad in ["/0", "/513", "/x", "/1/2", "1", ""] {
            assert_eq!(channel(bad, all), None, "{bad}");
        }
        assert_eq!(
            channel(
                "/5",
                Channels {
                    first: 10,
                    last: 20
                }
            ),
            None
        );
    }

    #[test]
    fn input_reports_only_changes() {
        let ch = Channels { first: 1, last: 3 };
        let mut u = Universe::new(ch);
        assert_eq!(
            u.received_frame(&[1, 2, 3, 4], ch),
            [(1, 1), (2, 2), (3, 3)]
        );
        assert_eq!(u.received_frame(&[1, 9, 3, 4], ch), [(2, 9)]);
        assert_eq!(
            u.received_changes(&[(3, 7), (4, 1), (600, 1)], ch),
            [(3, 7)]
        );
        assert_eq!(u.received_frame(&[1, 9, 7, 1], ch), []);
    }

    #[test]
    fn output_frame_and_dirty() {
        let mut u = Universe::new(Channels { first: 1, last: 10 });
        assert_eq!(u.frame().len(), 24);
        u.sent();
        assert!(!u.set(1, 0));
        assert!(u.set(1, 255) && u.dirty());
        assert!(!u.set(0, 1) && !u.set(513, 1));
        assert_eq!(u.frame().first(), Some(&255));
    }
}
