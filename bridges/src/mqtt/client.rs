//! MQTT client bridge (FEATURES MQTT-8): CLASP ↔ an external MQTT broker through paho-mqtt.
//! Broker messages on the subscribed filters become writes under the namespace (retained →
//! SET, others → event); every change under the namespace is published back to the broker
//! (SET → retained, events → not retained) at the configured QoS. The bridge never feeds a
//! value back to where it came from, and keeps what it cannot send while the broker is away.

mod broker;
mod echoes;
mod outbox;
mod session;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clasp_actors::link::RouterLink;
use futures_util::future::LocalBoxFuture;

use crate::mqtt::mapping;
use crate::{Bridge, BridgeError, BridgeStats, Namespace};
use outbox::Outbox;

pub use broker::BrokerUrl;

const DEFAULT_BROKER: &str = "mqtt://127.0.0.1:1883";

/// Settings of `clasp mqtt` and `[[bridge]] kind = "mqtt"`.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttClientConfig {
    /// Broker URL: `mqtt://host:1883` or `mqtts://host:8883` (TLS); `user:pass@` may be
    /// given in the URL.
    #[arg(long, default_value = DEFAULT_BROKER)]
    pub broker: String,
    /// Address prefix: topic `a/b` is `<namespace>/a/b`.
    #[arg(long, default_value = "/mqtt")]
    pub namespace: Namespace,
    /// Topic filter to subscribe to on the broker (repeatable; `+` and `#` wildcards).
    #[arg(long = "subscribe", value_name = "FILTER", default_values_t = vec!["#".to_string()])]
    pub subscribe: Vec<String>,
    /// User name for the broker.
    #[arg(long)]
    pub username: Option<String>,
    /// Password for the broker.
    #[arg(long)]
    pub password: Option<String>,
    /// MQTT client id (default: `clasp-<pid>-<random>`).
    #[arg(long)]
    pub client_id: Option<String>,
    /// QoS of the bridge's publishes to the broker (0, 1 or 2).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// CA certificate (PEM) that signs the broker's certificate, for `mqtts://`.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Speak MQTT 3.1.1 instead of 5 (for old brokers): no retain-as-published, so every
    /// live broker message becomes an event, and own publishes are filtered by value.
    #[arg(long)]
    pub mqtt_v311: bool,
    /// Changes kept while the broker is unreachable (latest value per topic for params,
    /// oldest events dropped first; drops are counted and logged).
    #[arg(long, default_value_t = 10_000)]
    pub max_pending: usize,
}

impl Default for MqttClientConfig {
    fn default() -> Self {
        Self {
            broker: DEFAULT_BROKER.into(),
            namespace: "/mqtt".parse().unwrap_or_default(),
            subscribe: vec!["#".into()],
            username: None,
            password: None,
            client_id: None,
            qos: 0,
            ca_file: None,
            mqtt_v311: false,
            max_pending: 10_000,
        }
    }
}

/// Checked settings one run of the bridge works from.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) url: BrokerUrl,
    pub(crate) namespace: Namespace,
    pub(crate) filters: Vec<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) client_id: String,
    pub(crate) qos: i32,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) v5: bool,
}

impl Settings {
    fn check(config: MqttClientConfig) -> Result<Self, BridgeError> {
        let url: BrokerUrl = config.broker.parse()?;
        if config.qos > 2 {
            return Err(BridgeError::config("qos", "must be 0, 1 or 2"));
        }
        if config.subscribe.is_empty() {
            return Err(BridgeError::config("subscribe", "at least one filter"));
        }
        for filter in &config.subscribe {
            mapping::check_filter(filter)
                .map_err(|e| BridgeError::config("subscribe", e.to_string()))?;
        }
        let client_id = config.client_id.unwrap_or_else(default_client_id);
        let username = config.username.or_else(|| url.username.clone());
        let password = config.password.or_else(|| url.password.clone());
        for (setting, text) in [
            ("client-id", Some(&client_id)),
            ("username", username.as_ref()),
            ("password", password.as_ref()),
        ] {
            if text.is_some_and(|t| t.contains('\0')) {
                return Err(BridgeError::config(setting, "contains a NUL character"));
            }
        }
        if let Some(ca) = &config.ca_file {
            if !ca.is_file() {
                return Err(BridgeError::config(
                    "ca-file",
                    format!("{} is not a readable file", ca.display()),
                ));
            }
        }
        Ok(Settings {
            url,
            namespace: config.namespace,
            filters: config.subscribe,
            username,
            password,
            client_id,
            qos: i32::from(config.qos),
            ca_file: config.ca_file,
            v5: !config.mqtt_v311,
        })
    }
}

/// A client id unique enough that two bridges on one broker do not kick each other off.
fn default_client_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("clasp-{}-{:08x}", std::process::id(), nanos)
}

/// The MQTT client bridge.
pub struct MqttClientBridge {
    settings: Arc<Settings>,
    /// Outbound changes not yet handed to the broker; kept across restarts of the task.
    outbox: Arc<Mutex<Outbox>>,
}

impl MqttClientBridge {
    /// Checks the settings (URL, filters, QoS, CA file) before anything connects.
    pub fn new(config: MqttClientConfig) -> Result<Self, BridgeError> {
        let capacity = config.max_pending.max(1);
        Ok(Self {
            settings: Arc::new(Settings::check(config)?),
            outbox: Arc::new(Mutex::new(Outbox::new(capacity))),
        })
    }
}

impl Bridge for MqttClientBridge {
    fn kind(&self) -> &'static str {
        "mqtt-client"
    }

    fn name(&self) -> String {
        format!("mqtt-client:{}", self.settings.namespace)
    }

    /// An outside broker being down must not take the relay out of service.
    fn gates_readiness(&self) -> bool {
        false
    }

    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        Box::pin(session::run(
            self.settings.clone(),
            link,
            stats,
            self.outbox.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_check() {
        let s = Settings::check(MqttClientConfig::default()).unwrap();
        assert_eq!(s.filters, ["#"]);
        assert!(s.v5);
        assert!(s.client_id.starts_with("clasp-"));
    }

    #[test]
    fn config_file_form() {
        let c: MqttClientConfig = serde_json::from_str(
            r#"{"broker": "mqtts://b:8883", "subscribe": ["a/#"], "qos": 1,
                "namespace": "/ext", "client_id": "x", "mqtt_v311": true}"#,
        )
        .unwrap();
        assert_eq!(c.subscribe, ["a/#"]);
        assert_eq!(c.namespace.as_str(), "/ext");
        assert_eq!(c.max_pending, 10_000, "defaults fill the rest");
        assert!(serde_json::from_str::<MqttClientConfig>(r#"{"brokr": "x"}"#).is_err());
        let s = Settings::check(c).unwrap();
        assert!(s.url.tls && !s.v5);
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad_filter = MqttClientConfig {
            subscribe: vec!["a/#/b".into()],
            ..MqttClientConfig::default()
        };
        assert!(MqttClientBridge::new(bad_filter).is_err());
        let bad_url = MqttClientConfig {
            broker: "http://x".into(),
            ..MqttClientConfig::default()
        };
        assert!(MqttClientBridge::new(bad_url).is_err());
    }
}
