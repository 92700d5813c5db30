//! A MIDI 1.0 byte-stream parser: running status, real-time bytes interleaved anywhere
//! (even inside SysEx), system common cancelling running status. What a raw device, a FIFO
//! or a pty delivers has no message boundaries, so everything is incremental; broken input
//! (stray data bytes, truncated messages, undefined status bytes) is returned as an error to
//! count, and parsing goes on with the next good byte.

/// One complete MIDI message. Channels are 0-15 here (the wire form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MidiMessage {
    /// 0x8n.
    NoteOff { ch: u8, note: u8, velocity: u8 },
    /// 0x9n (velocity 0 is a note-off by convention; mapping treats it so).
    NoteOn { ch: u8, note: u8, velocity: u8 },
    /// 0xAn polyphonic key pressure.
    Poly { ch: u8, note: u8, pressure: u8 },
    /// 0xBn control change.
    Cc { ch: u8, cc: u8, value: u8 },
    /// 0xCn program change.
    Program { ch: u8, program: u8 },
    /// 0xDn channel pressure.
    Pressure { ch: u8, value: u8 },
    /// 0xEn pitch bend, 0-16383 (8192 = centre).
    Pitch { ch: u8, value: u16 },
    /// 0xF0 … 0xF7: the bytes between the delimiters.
    SysEx(Vec<u8>),
    /// 0xF1 MIDI time code quarter frame.
    TimeCode(u8),
    /// 0xF2 song position pointer (MIDI beats).
    SongPosition(u16),
    /// 0xF3.
    SongSelect(u8),
    /// 0xF6.
    TuneRequest,
    /// 0xF8.
    Clock,
    /// 0xFA.
    Start,
    /// 0xFB.
    Continue,
    /// 0xFC.
    Stop,
    /// 0xFE.
    ActiveSensing,
    /// 0xFF.
    Reset,
}

/// Why bytes were dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MidiError {
    /// Data bytes with no status to belong to.
    #[error("{0} stray data byte(s) with no status")]
    Stray(usize),
    /// A message cut short by the next status byte.
    #[error("message with status {0:#04x} cut short")]
    Truncated(u8),
    /// 0xF4, 0xF5, 0xF9, 0xFD, or an 0xF7 outside SysEx.
    #[error("undefined or unexpected status byte {0:#04x}")]
    Undefined(u8),
    /// A SysEx longer than [`MAX_SYSEX`].
    #[error("SysEx longer than {MAX_SYSEX} bytes dropped")]
    SysExTooLong,
}

/// Longest SysEx kept (a sample dump is larger; it is not control data).
pub const MAX_SYSEX: usize = 65_536;

/// Data bytes a status needs.
fn needs(status: u8) -> usize {
    match status & 0xF0 {
        0xC0 | 0xD0 => 1,
        0x80..=0xE0 => 2,
        _ => match status {
            0xF1 | 0xF3 => 1,
            0xF2 => 2,
            _ => 0,
        },
    }
}

/// Incremental parser state.
#[derive(Debug, Default)]
pub struct Parser {
    status: Option<u8>,
    data: Vec<u8>,
    sysex: Option<Vec<u8>>,
    sysex_overflow: bool,
    stray: usize,
}

impl Parser {
    /// Feeds bytes; every complete message or error, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<MidiMessage, MidiError>> {
        let mut out = Vec::new();
        for &b in bytes {
            self.byte(b, &mut out);
        }
        self.flush_stray(&mut out);
        out
    }

    fn flush_stray(&mut self, out: &mut Vec<Result<MidiMessage, MidiError>>) {
        if self.stray > 0 {
            out.push(Err(MidiError::Stray(std::mem::take(&mut self.stray))));
        }
    }

    /// A status byte interrupts an unfinished message or SysEx.
    fn interrupt(&mut self, out: &mut Vec<Result<MidiMessage, MidiError>>) {
        self.flush_stray(out);
        if self.sysex.take().is_some() {
            out.push(Err(MidiError::Truncated(0xF0)));
        }
        if let Some(s) = self.status {
            if !self.data.is_empty() {
                out.push(Err(MidiError::Truncated(s)));
            }
        }
        self.data.clear();
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Result<MidiMessage, MidiError>>) {
        match b {
            0xF8..=0xFF => out.push(match b {
                0xF8 => Ok(MidiMessage::Clock),
                0xFA => Ok(MidiMessage::Start),
                0xFB => Ok(MidiMessage::Continue),
                0xFC => Ok(MidiMessage::Stop),
                0xFE => Ok(MidiMessage::ActiveSensing),
                0xFF => Ok(MidiMessage::Reset),
                other => Err(MidiError::Undefined(other)),
            }),
            0xF7 => match self.sysex.take() {
                Some(body) => {
                    self.flush_stray(out);
                    if std::mem::take(&mut self.sysex_overflow) {
                        out.push(Err(MidiError::SysExTooLong));
                    } else {
                        out.push(Ok(MidiMessage::SysEx(body)));
                    }
                }
                None => {
                    self.interrupt(out);
                    self.status = None;
                    out.push(Err(MidiError::Undefined(b)));
                }
            },
            0xF0 => {
                self.interrupt(out);
                self.status = None;
                self.sysex = Some(Vec::new());
                self.sysex_overflow = false;
            }
            0x80..=0xF6 => {
                self.interrupt(out);
                match b {
                    0xF4 | 0xF5 => {
                        self.status = None;
                        out.push(Err(MidiError::Undefined(b)));
                    }
                    0xF6 => {
                        self.status = None;
                        out.push(Ok(MidiMessage::TuneRequest));
                    }
                    _ => self.status = Some(b),
                }
            }
            data => {
                if let Some(body) = &mut self.sysex {
                    if body.len() < MAX_SYSEX {
                        body.push(data);
                    } else {
                        self.sysex_overflow = true;
                    }
                    return;
                }
                let Some(status) = self.status else {
                    self.stray += 1;
                    return;
                };
                self.flush_stray(out);
                self.data.push(data);
                if self.data.len() >= needs(status) {
                    out.push(Ok(message(status, &self.data)));
                    self.data.clear();
                    if status >= 0xF0 {
                        // System common messages have no running status.
                        self.status = None;
                    }
                }
            }
        }
    }
}

fn message(status: u8, data: &[u8]) -> MidiMessage {
    let ch = status & 0x0F;
    let d0 = data.first().copied().unwrap_or(0);
    let d1 = data.get(1).copied().unwrap_or(0);
    let fourteen = u16::from(d0) | (u16::from(d1) << 7);
    match status & 0xF0 {
        0x80 => MidiMessage::NoteOff {
            ch,
            note: d0,
            velocity: d1,
        },
        0x90 => MidiMessage::NoteOn {
            ch,
            note: d0,
            velocity: d1,
        },
        0xA0 => MidiMessage::Poly {
            ch,
            note: d0,
            pressure: d1,
        },
        0xB0 => MidiMessage::Cc {
            ch,
            cc: d0,
            value: d1,
        },
        0xC0 => MidiMessage::Program { ch, program: d0 },
        0xD0 => MidiMessage::Pressure { ch, value: d0 },
        0xE0 => MidiMessage::Pitch {
            ch,
            value: fourteen,
        },
        _ => match status {
            0xF1 => MidiMessage::TimeCode(d0),
            0xF2 => MidiMessage::SongPosition(fourteen),
            _ => MidiMessage::SongSelect(d0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MidiMessage::*;

    #[test]
    fn running_status_and_realtime_inside() {
        let mut p = Parser::default();
        let out = p.feed(&[0xB0, 74, 64, 75, 0xF8, 1, 0x91, 60]);
        assert_eq!(
            out,
            [
                Ok(Cc {
                    ch: 0,
                    cc: 74,
                    value: 64
                }),
                Ok(Clock),
                Ok(Cc {
                    ch: 0,
                    cc: 75,
                    value: 1
                }),
            ]
        );
        assert_eq!(
            p.feed(&[100]),
            [Ok(NoteOn {
                ch: 1,
                note: 60,
                velocity: 100
            })]
        );
        assert_eq!(p.feed(&[0xE0, 0, 0x40]), [Ok(Pitch { ch: 0, value: 8192 })]);
        assert_eq!(
            p.feed(&[0xC5, 3, 4]),
            [
                Ok(Program { ch: 5, program: 3 }),
                Ok(Program { ch: 5, program: 4 })
            ]
        );
    }

    #[test]
    fn sysex_and_system_common() {
        let mut p = Parser::default();
        let out = p.feed(&[0xF0, 0x7E, 0xF8, 0x01, 0xF7, 0xF2, 0x10, 0x01, 5]);
        assert_eq!(
            out,
            [
                Ok(Clock),
                Ok(SysEx(vec![0x7E, 1])),
                Ok(SongPosition(0x90)),
                Err(MidiError::Stray(1)),
            ]
        );
    }

    #[test]
    fn broken_input_is_reported_and_parsing_goes_on() {
        let mut p = Parser::default();
        let out = p.feed(&[
            1, 2, 0x90, 60, 0xB0, 7, 0xF7, 0xF4, 0xF9, 0xF0, 1, 0x80, 60, 0,
        ]);
        assert_eq!(
            out,
            [
                Err(MidiError::Stray(2)),
                Err(MidiError::Truncated(0x90)),
                Err(MidiError::Truncated(0xB0)),
                Err(MidiError::Undefined(0xF7)),
                Err(MidiError::Undefined(0xF4)),
                Err(MidiError::Undefined(0xF9)),
                Err(MidiError::Truncated(0xF0)),
                Ok(NoteOff {
                    ch: 0,
                    note: 60,
                    velocity: 0
                }),
            ]
        );
    }
}
