//! The `host:port` a bridge binds, shared so every UDP/TCP bridge treats IPv6 hosts alike.

/// `host:port` for binding, with an IPv6 host in brackets (`::` and 9000 → `[::]:9000`).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
