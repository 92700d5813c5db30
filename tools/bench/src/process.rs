//! Child processes a bench starts and the loopback ports it gives them.

use std::net::{Ipv4Addr, TcpListener};
use std::process::Child;

/// A process the bench started: killed and reaped when dropped, so a bench that fails or is
/// interrupted halfway leaves no relay, broker or pty pair behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
