//! The broker side of the client bridge: its URL, and the paho client and connect options
//! built from the settings (TLS for `mqtts://`, credentials, MQTT version).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use paho_mqtt as paho;

use super::Settings;
use crate::BridgeError;

/// A broker URL (`mqtt://[user[:pass]@]host[:port]`, `mqtts://...` for TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Whether the connection uses TLS.
    pub tls: bool,
    /// Host name or IP.
    pub host: String,
    /// TCP port (1883, or 8883 with TLS, when not given).
    pub port: u16,
    /// User name given in the URL.
    pub username: Option<String>,
    /// Password given in the URL.
    pub password: Option<String>,
}

impl BrokerUrl {
    /// The URI paho connects to (`tcp://host:port` or `ssl://host:port`).
    pub fn paho_uri(&self) -> String {
        let scheme = if self.tls { "ssl" } else { "tcp" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for BrokerUrl {
    /// The URL without credentials, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl FromStr for BrokerUrl {
    type Err = BridgeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| BridgeError::config("broker", format!("{s:?}: {why}"));
        let (scheme, rest) = s.split_once("://").unwrap_or(("mqtt", s));
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" | "tls" => true,
            _ => return Err(bad("the scheme must be mqtt:// or mqtts://")),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains(['/', '\0', '?', '#']) {
            return Err(bad("a broker URL has no path"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (Some(n.to_string()), Some(p.to_string())),
                None => (Some(u.to_string()), None),
            },
            None => (None, None),
        };
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("bad port")),
            };
            (host.to_string(), port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("bad port"))?),
                None => (hostport.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(BrokerUrl {
            tls,
            host,
            port,
            username,
            password,
        })
    }
}

/// A paho client for the settings: in-memory persistence only (nothing written to disk).
pub(super) fn client(settings: &Settings) -> Result<paho::AsyncClient, BridgeError> {
    let version = if settings.v5 {
        paho::MQTT_VERSION_5
    } else {
        paho::MQTT_VERSION_3_1_1
    };
    let create = paho::CreateOptionsBuilder::new()
        .server_uri(settings.url.paho_uri())
        .client_id(settings.client_id.clone())
        .persistence(None)
        .mqtt_version(version)
        .finalize();
    paho::AsyncClient::new(create).map_err(|e| BridgeError::Protocol(format!("mqtt client: {e}")))
}

/// Connect options: a clean session each time (the bridge re-subscribes itself), keep-alive,
/// credentials and TLS.
pub(super) fn connect_options(settings: &Settings) -> Result<paho::ConnectOptions, BridgeError> {
    let mut opts = if settings.v5 {
        paho::ConnectOptionsBuilder::new_v5()
    } else {
        paho::ConnectOptionsBuilder::new_v3()
    };
    if settings.v5 {
        opts.clean_start(true);
    } else {
        opts.clean_session(true);
    }
    opts.keep_alive_interval(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
        .max_inflight(1024);
    if let Some(user) = &settings.username {
        opts.user_name(user.clone());
    }
    if let Some(password) = &settings.password {
        opts.password(password.clone());
    }
    if settings.url.tls {
        let mut ssl = paho::SslOptionsBuilder::new();
        ssl.enable_server_cert_auth(true).verify(true);
        if let Some(ca) = &settings.ca_file {
            ssl.trust_store(ca)
                .map_err(|e| BridgeError::config("ca-file", e.to_string()))?;
        }
        opts.ssl_options(ssl.finalize());
    }
    Ok(opts.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u: BrokerUrl = "mqtt://127.0.0.1:1884".parse().unwrap();
        assert_eq!(u.paho_uri(), "tcp://127.0.0.1:1884");
        let u: BrokerUrl = "mqtts://bob:s3cret@broker.example".parse().unwrap();
        assert!(u.tls);
        assert_eq!(u.port, 8883);
        assert_eq!(u.username.as_deref(), Some("bob"));
        assert_eq!(u.password.as_deref(), Some("s3cret"));
        assert_eq!(u.to_string(), "mqtts://broker.example:8883");
        let u: BrokerUrl = "localhost".parse().unwrap();
        assert_eq!(u.paho_uri(), "tcp://localhost:1883");
        let u: BrokerUrl = "mqtt://[::1]:1999".parse().unwrap();
        assert_eq!(u.paho_uri(), "tcp://[::1]:1999");
        for bad in ["http://x", "mqtt://", "mqtt://h:port", "mqtt://h/path"] {
            assert!(bad.parse::<BrokerUrl>().is_err(), "{bad}");
        }
    }
}
