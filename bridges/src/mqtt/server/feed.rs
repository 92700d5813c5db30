//! The router → MQTT direction: every signal under the broker's namespace, whoever wrote
//! it (WebSocket clients, other bridges, rules, this broker's retained publishes), goes to
//! the MQTT subscribers whose filters match.

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use clasp_actors::client::{ClientError, Update};
use clasp_proto::SignalType;

use super::broker::Msg;
use super::connection::Shared;
use super::mapping;

/// Runs until the link ends.
pub async fn run(shared: Rc<Shared>) -> Result<(), ClientError> {
    let ns = shared.config.namespace.clone();
    let mut updates = shared.link.subscribe_live(&ns.subtree()).await?;
    while let Some(update) = updates.next().await {
        forward(&shared, update);
    }
    Err(ClientError::Closed)
}

fn forward(shared: &Shared, update: Update) {
    let Some(topic) = mapping::address_to_topic(&shared.config.namespace, update.address.as_str())
    else {
        return;
    };
    let echo = match update.signal {
        SignalType::Param => shared
            .origins
            .borrow_mut()
            .echo(update.address.as_str(), &update.value),
        _ => None,
    };
    let (msg, origin) = match echo {
        // One of ours, back from the router: as it was published.
        Some(o) => (
            Msg {
                topic: Arc::from(topic),
                payload: o.payload,
                qos: o.qos,
                retain: true,
            },
            Some(o.key),
        ),
        None => (
            Msg {
                topic: Arc::from(topic),
                payload: Bytes::from(mapping::value_to_payload(&update.value)),
                // State and events are delivered reliably; streams and gestures at most once.
                qos: match update.signal {
                    SignalType::Stream | SignalType::Gesture => 0,
                    _ => 1,
                },
                retain: update.signal == SignalType::Param,
            },
            None,
        ),
    };
    shared.broker.borrow_mut().route(&msg, origin);
}
