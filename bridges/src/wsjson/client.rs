//! Client mode: the bridge connects out to a JSON WebSocket service. Each JSON message from
//! the service becomes a SET (address from a JSON pointer or a template filled from the
//! message's fields, value from a JSON pointer or the whole message); CLASP changes under
//! the `--forward` patterns go to the service as `{"address": .., "value": ..}`. When the
//! service goes away the run ends with an error and the supervisor reconnects with backoff.

use std::sync::Arc;
use std::time::Duration;

use clasp_actors::client::Update;
use clasp_actors::link::RouterLink;
use clasp_proto::Value;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::protocol::{json_to_value, value_to_json};
use super::WsJsonConfig;
use crate::echo::EchoFilter;
use crate::noise::BadInput;
use crate::{BridgeError, BridgeStats, Namespace};

/// Keep-alive ping period towards the service.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Updates waiting to be sent to the service before newer ones are dropped.
const FORWARD_QUEUE: usize = 4096;

/// One piece of an address template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// A JSON pointer into the message (`{topic}` is `/topic`).
    Field(String),
}

/// How the service's messages map to addresses and values, and CLASP updates back.
#[derive(Debug, Clone)]
pub struct Mapping {
    namespace: Namespace,
    address_field: String,
    value_field: String,
    template: Option<Vec<Part>>,
}

fn pointer_setting(setting: &str, text: &str) -> Result<String, BridgeError> {
    if text.is_empty() || text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err(BridgeError::config(
            setting,
            format!("{text:?} is not a JSON pointer (e.g. /topic)"),
        ))
    }
}

fn parse_template(text: &str) -> Result<Vec<Part>, BridgeError> {
    let bad = |why: &str| BridgeError::config("address-template", format!("{text:?}: {why}"));
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| bad("unclosed {"))?;
        let name = &after[..close];
        if name.is_empty() || name.contains('{') {
            return Err(bad("empty or nested {}"));
        }
        parts.push(Part::Field(if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/{name}")
        }));
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(bad("unopened }"));
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    if !parts.iter().any(|p| matches!(p, Part::Field(_))) {
        return Err(bad("no {field} in it"));
    }
    Ok(parts)
}

impl Mapping {
    /// Checks the client-mode settings.
    pub fn new(config: &WsJsonConfig) -> Result<Self, BridgeError> {
        Ok(Self {
            namespace: config.namespace.clone(),
            address_field: pointer_setting("address-field", &config.address_field)?,
            value_field: pointer_setting("value-field", &config.value_field)?,
            template: config
                .address_template
                .as_deref()
                .map(parse_template)
                .transpose()?,
        })
    }

    /// The CLASP address and value of one message from the service.
    pub fn inbound(&self, message: &Json) -> Result<(String, Value), String> {
        let path = match &self.template {
            Some(parts) => {
                let mut path = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => path.push_str(t),
                        Part::Field(pointer) => match message.pointer(pointer) {
                            Some(Json::String(s)) => path.push_str(s),
                            Some(v @ (Json::Number(_) | Json::Bool(_))) => {
                                path.push_str(&v.to_string())
                            }
                            _ => return Err(format!("no text or number at {pointer}")),
                        },
                    }
                }
                path
            }
            None => match message.pointer(&self.address_field) {
                Some(Json::String(s)) => s.clone(),
                _ => return Err(format!("no address at {}", self.address_field)),
            },
        };
        let address = self
            .namespace
            .address(&path)
            .map_err(|e| format!("invalid address {path:?}: {e}"))?;
        let value = match message.pointer(&self.value_field) {
            Some(v) if !self.value_field.is_empty() => json_to_value(v),
            _ => json_to_value(message),
        };
        Ok((address.as_str().to_string(), value))
    }

    /// The message sent to the service for a CLASP update (`None` outside the namespace).
    pub fn outbound(&self, update: &Update) -> Option<String> {
        let path = self.namespace.strip(update.address.as_str())?;
        Some(json!({"address": path, "value": value_to_json(&update.value)}).to_string())
    }
}

/// Aborts the forwarding tasks when the run ends, however it ends.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Runs one connection to the service; returns when it fails or closes.
pub(crate) async fn run(
    link: RouterLink,
    config: Arc<WsJsonConfig>,
    stats: Arc<BridgeStats>,
) -> Result<(), BridgeError> {
    let mapping = Mapping::new(&config)?;
    let url = config
        .connect
        .clone()
        .ok_or_else(|| BridgeError::config("connect", "client mode needs the service URL"))?;
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| BridgeError::Protocol(format!("cannot connect to {url}: {e}")))?;
    let (mut sink, mut source) = ws.split();
    let (tx, mut updates) = mpsc::channel::<Update>(FORWARD_QUEUE);
    let mut tasks = Tasks(Vec::new());
    for pattern in &config.forward {
        let full = format!("{}{}", config.namespace.as_str(), pattern);
        let mut sub = link.subscribe(&full).await?;
        let tx = tx.clone();
        tasks.0.push(actix_web::rt::spawn(async move {
            while let Some(u) = sub.next().await {
                if tx.send(u).await.is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    stats.set_up(true);
    tracing::info!(bridge = %stats.name, url, "connected to the JSON WebSocket service");
    let mut echo: EchoFilter<()> = EchoFilter::default();
    let mut bad = BadInput::default();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = source.next() => match msg {
                None | Some(Ok(Message::Close(_))) => {
                    return Err(BridgeError::Protocol(format!("{url} closed the connection")));
                }
                Some(Err(e)) => return Err(BridgeError::Protocol(format!("{url}: {e}"))),
                Some(Ok(Message::Text(text))) => {
                    let parsed = serde_json::from_str::<Json>(&text)
                        .map_err(|e| format!("invalid JSON: {e}"))
                        .and_then(|j| mapping.inbound(&j));
                    match parsed {
                        Ok((address, value)) => {
                            BridgeStats::bump(&stats.received);
                            echo.inbound(&address, (), &value);
                            if let Err(e) = link.set(&address, value).await {
                                BridgeStats::bump(&stats.refused);
                                bad.report(&stats, "router", &e);
                            }
                        }
                        Err(e) => bad.report(&stats, &url, &e),
                    }
                }
                Some(Ok(Message::Binary(_))) => bad.report(&stats, &url, &"binary message ignored"),
                Some(Ok(_)) => {}
            },
            Some(update) = updates.recv() => {
                if echo.origin(update.address.as_str(), &update.value).is_some() {
                    continue;
                }
                if let Some(text) = mapping.outbound(&update) {
                    sink.send(Message::Text(text))
                        .await
                        .map_err(|e| BridgeError::Protocol(format!("{url}: {e}")))?;
                    BridgeStats::bump(&stats.sent);
                }
            }
            _ = ping.tick() => {
                sink.send(Message::Ping(Vec::new()))
                    .await
                    .map_err(|e| BridgeError::Protocol(format!("{url}: {e}")))?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(template: Option<&str>) -> WsJsonConfig {
        WsJsonConfig {
            address_field: "/topic".into(),
            value_field: "/data/v".into(),
            address_template: template.map(str::to_string),
            namespace: "/svc".parse().unwrap(),
            ..WsJsonConfig::default()
        }
    }

    #[test]
    fn maps_pointer_and_template() {
        let m = Mapping::new(&config(None)).unwrap();
        let msg = json!({"topic": "room/temp", "data": {"v": 21.5}});
        assert_eq!(
            m.inbound(&msg).unwrap(),
            ("/svc/room/temp".to_string(), Value::Float(21.5))
        );
        let m = Mapping::new(&config(Some("/ws/{kind}/{/data/id}"))).unwrap();
        let msg = json!({"kind": "sensor", "data": {"id": 4, "v": 1}});
        assert_eq!(m.inbound(&msg).unwrap().0, "/svc/ws/sensor/4");
        assert!(m.inbound(&json!({"kind": "x"})).is_err());
    }

    #[test]
    fn whole_message_without_value_field() {
        let m = Mapping::new(&config(None)).unwrap();
        let msg = json!({"topic": "a", "x": 1});
        assert_eq!(m.inbound(&msg).unwrap().1, json_to_value(&msg));
    }

    #[test]
    fn refuses_bad_settings() {
        assert!(parse_template("/ws/{topic").is_err());
        assert!(parse_template("/ws/plain").is_err());
        assert!(pointer_setting("address-field", "topic").is_err());
    }
}
