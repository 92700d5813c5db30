//! Where MIDI bytes come from and go to: a port through midir (built with its JACK backend,
//! so ports are JACK MIDI ports), or a raw byte stream (a `/dev/snd/midiC*D*` device, a pty
//! or a FIFO: FEATURES MIDI-8). Both deliver chunks of bytes to the same parser.

use std::os::unix::fs::FileTypeExt;
use std::sync::Arc;

use midir::{Ignore, MidiInput, MidiInputConnection, MidiOutput, MidiOutputConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use super::MidiConfig;
use crate::{BridgeError, BridgeStats};

/// Chunks queued from the JACK thread before further ones are dropped (and counted).
const QUEUE: usize = 8192;
/// Longest a write to a raw device may block.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Our JACK client names start with this; ports of ours are never picked as a device.
pub const CLIENT: &str = "clasp-midi";

/// The message for a JACK client that could not be opened.
fn no_server() -> BridgeError {
    BridgeError::Protocol(
        "cannot open a JACK client: is a JACK server running? (this build's midir uses its \
         JACK backend, not ALSA; start one with `jackd -d dummy` or `jackd -d alsa`)"
            .into(),
    )
}

/// Bytes from the device.
pub enum Input {
    /// Chunks from midir's callback.
    Port(mpsc::Receiver<Vec<u8>>, MidiInputConnection<()>),
    /// A raw stream.
    Raw(pipe::Receiver),
    /// Nothing to read (a device with outputs only).
    None,
}

impl Input {
    /// The next chunk; an error when the device is gone.
    pub async fn read(&mut self, buf: &mut Vec<u8>) -> Result<(), BridgeError> {
        buf.clear();
        match self {
            Input::Port(rx, _) => match rx.recv().await {
                Some(chunk) => {
                    *buf = chunk;
                    Ok(())
                }
                None => Err(BridgeError::Protocol("the MIDI input port closed".into())),
            },
            Input::Raw(r) => {
                buf.resize(1024, 0);
                match r.read(buf).await {
                    Ok(0) => Err(BridgeError::Protocol(
                        "the MIDI device reached end of file".into(),
                    )),
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(())
                    }
                    Err(e) => Err(BridgeError::io("read the MIDI device", e)),
                }
            }
            Input::None => std::future::pending().await,
        }
    }
}

/// Bytes to the device.
pub enum Output {
    /// A midir connection.
    Port(MidiOutputConnection),
    /// A raw stream.
    Raw(pipe::Sender),
    /// Nowhere (a FIFO is read only; a device with inputs only).
    None,
}

impl Output {
    /// Sends one or more complete messages.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<bool, BridgeError> {
        match self {
            Output::Port(c) => {
                // midir takes one message at a time; a 14-bit CC is two.
                for msg in split(bytes) {
                    c.send(msg)
                        .map_err(|e| BridgeError::Protocol(format!("MIDI send: {e}")))?;
                }
                Ok(true)
            }
            Output::Raw(w) => {
                // 31 250 baud drains a few bytes in ms; a device stuck this long is gone.
                match tokio::time::timeout(WRITE_TIMEOUT, w.write_all(bytes)).await {
                    Ok(r) => r.map_err(|e| BridgeError::io("write the MIDI device", e))?,
                    Err(_) => {
                        return Err(BridgeError::Protocol(format!(
                            "the MIDI device took no bytes for {WRITE_TIMEOUT:?}"
                        )))
                    }
                }
                Ok(true)
            }
            Output::None => Ok(false),
        }
    }
}

/// Complete messages built by the mapper, one by one (each starts with a status byte).
fn split(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = if rest.first() == Some(&0xF0) {
            rest.iter()
                .position(|b| *b == 0xF7)
                .map_or(rest.len(), |i| i + 1)
        } else {
            rest.iter()
                .skip(1)
                .position(|b| *b >= 0x80)
                .map_or(rest.len(), |i| i + 1)
        };
        let (msg, tail) = rest.split_at(end);
        rest = tail;
        Some(msg)
    })
}

/// Whether `--device` names a file rather than a port.
pub fn is_path(device: &str) -> bool {
    device.starts_with('/')
}

/// Opens the device the settings name.
pub fn open(config: &MidiConfig, stats: &Arc<BridgeStats>) -> Result<(Input, Output), BridgeError> {
    match config.device.as_deref() {
        Some(path) if is_path(path) => open_raw(path),
        device => open_ports(device, config.virtual_port.as_deref(), stats),
    }
}

fn open_raw(path: &str) -> Result<(Input, Output), BridgeError> {
    let meta =
        std::fs::metadata(path).map_err(|e| BridgeError::io(format!("MIDI device {path}"), e))?;
    if meta.file_type().is_fifo() {
        // Read-write keeps the FIFO open between writers; nothing is written back into it.
        let rx = pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(path)
            .map_err(|e| BridgeError::io(format!("open FIFO {path}"), e))?;
        return Ok((Input::Raw(rx), Output::None));
    }
    if !meta.file_type().is_char_device() {
        return Err(BridgeError::config(
            "device",
            format!("{path}: not a character device (raw MIDI, tty) or a FIFO"),
        ));
    }
    let rx = pipe::OpenOptions::new()
        .unchecked(true)
        .open_receiver(path)
        .map_err(|e| BridgeError::io(format!("open {path} for reading"), e))?;
    let tx = pipe::OpenOptions::new()
        .unchecked(true)
        .open_sender(path)
        .map_err(|e| BridgeError::io(format!("open {path} for writing"), e))?;
    Ok((Input::Raw(rx), Output::Raw(tx)))
}

/// The index of the port `device` names (an index, or a case-insensitive part of its
/// name), among `names`; our own ports never count. Without `device`, the first.
pub fn pick(names: &[String], device: Option<&str>) -> Option<usize> {
    let foreign = |n: &String| !n.starts_with(CLIENT);
    match device {
        None => names.iter().position(foreign),
        Some(d) => match d.parse::<usize>() {
            Ok(i) => names.get(i).filter(|n| foreign(n)).map(|_| i),
            Err(_) => {
                let d = d.to_lowercase();
                names
                    .iter()
                    .position(|n| foreign(n) && n.to_lowercase().contains(&d))
            }
        },
    }
}

fn open_ports(
    device: Option<&str>,
    virtual_port: Option<&str>,
    stats: &Arc<BridgeStats>,
) -> Result<(Input, Output), BridgeError> {
    let mut midi_in = MidiInput::new(&format!("{CLIENT}-in")).map_err(|_| no_server())?;
    midi_in.ignore(Ignore::None);
    let midi_out = MidiOutput::new(&format!("{CLIENT}-out")).map_err(|_| no_server())?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let counters = stats.clone();
    let callback = move |_: u64, bytes: &[u8], _: &mut ()| {
        if tx.try_send(bytes.to_vec()).is_err() {
            BridgeStats::bump(&counters.bad_input);
        }
    };
    if let Some(name) = virtual_port {
        use midir::os::unix::{VirtualInput, VirtualOutput};
        let input = midi_in
            .create_virtual(name, callback, ())
            .map_err(|e| BridgeError::Protocol(format!("virtual MIDI input {name:?}: {e}")))?;
        let output = midi_out
            .create_virtual(name)
            .map_err(|e| BridgeError::Protocol(format!("virtual MIDI output {name:?}: {e}")))?;
        return Ok((Input::Port(rx, input), Output::Port(output)));
    }
    let in_ports = midi_in.ports();
    let in_names: Vec<String> = in_ports
        .iter()
        .map(|p| midi_in.port_name(p).unwrap_or_default())
        .collect();
    let out_ports = midi_out.ports();
    let out_names: Vec<String> = out_ports
        .iter()
        .map(|p| midi_out.port_name(p).unwrap_or_default())
        .collect();
    let in_at = pick(&in_names, device);
    let out_at = pick(&out_names, device);
    if in_at.is_none() && out_at.is_none() {
        return Err(BridgeError::Protocol(format!(
            "no MIDI port matches {:?} (inputs: {in_names:?}, outputs: {out_names:?}; see `clasp midi --list`)",
            device.unwrap_or("the first port")
        )));
    }
    let input = match in_at.and_then(|i| in_ports.get(i)) {
        Some(port) => {
            let conn = midi_in
                .connect(port, "in", callback, ())
                .map_err(|e| BridgeError::Protocol(format!("connect MIDI input: {e}")))?;
            Input::Port(rx, conn)
        }
        None => Input::None,
    };
    let output = match out_at.and_then(|i| out_ports.get(i)) {
        Some(port) => Output::Port(
            midi_out
                .connect(port, "out")
                .map_err(|e| BridgeError::Protocol(format!("connect MIDI output: {e}")))?,
        ),
        None => Output::None,
    };
    tracing::info!(
        bridge = %stats.name,
        input = ?in_at.and_then(|i| in_names.get(i)),
        output = ?out_at.and_then(|i| out_names.get(i)),
        "MIDI ports connected"
    );
    Ok((input, output))
}

/// The MIDI ports this build can reach, for `clasp midi --list`.
pub fn list() -> Result<String, BridgeError> {
    let midi_in = MidiInput::new(&format!("{CLIENT}-list")).map_err(|_| no_server())?;
    let midi_out = MidiOutput::new(&format!("{CLIENT}-list")).map_err(|_| no_server())?;
    let mut out = String::from("MIDI inputs (JACK):\n");
    for (i, p) in midi_in.ports().iter().enumerate() {
        out.push_str(&format!(
            "  {i}: {}\n",
            midi_in.port_name(p).unwrap_or_default()
        ));
    }
    out.push_str("MIDI outputs (JACK):\n");
    for (i, p) in midi_out.ports().iter().enumerate() {
        out.push_str(&format!(
            "  {i}: {}\n",
            midi_out.port_name(p).unwrap_or_default()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_complete_messages() {
        let parts: Vec<&[u8]> = split(&[0xB0, 7, 1, 0xB0, 39, 2, 0xF0, 1, 0xF7, 0xF8]).collect();
        assert_eq!(
            parts,
            [&[0xB0, 7, 1][..], &[0xB0, 39, 2], &[0xF0, 1, 0xF7], &[0xF8]]
        );
    }

    #[test]
    fn picks_ports() {
        let names: Vec<String> = ["clasp-midi-in:x", "a:Launchpad", "b:Synth"]
            .map(String::from)
            .into();
        assert_eq!(pick(&names, None), Some(1));
        assert_eq!(pick(&names, Some("synth")), Some(2));
        assert_eq!(pick(&names, Some("2")), Some(2));
        assert_eq!(pick(&names, Some("0")), None);
        assert_eq!(pick(&names, Some("nope")), None);
    }
}
