//! Which MQTT client a retained publish came from. A retained PUBLISH becomes a SET, and
//! its subscribers get it from the router's echo of that SET, which does not say who wrote
//! it: this remembers the writer (for v5 no-local), the publish QoS and the exact payload
//! bytes until the echo arrives.

use bytes::Bytes;
use clasp_proto::Value;

use super::broker::SessionKey;
use crate::echo::EchoFilter;

/// The MQTT side of a retained publish.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The publisher's session.
    pub key: SessionKey,
    /// Its QoS.
    pub qos: u8,
    /// Its payload as sent.
    pub payload: Bytes,
}

/// Retained publishes on their way through the router.
#[derive(Debug, Default)]
pub struct Origins(EchoFilter<Origin>);

impl Origins {
    /// A retained publish to `address` with `value` is being sent as a SET.
    pub fn sent(&mut self, address: &str, value: &Value, origin: Origin) {
        self.0.inbound(address, origin, value);
    }

    /// The origin of a SET seen on the router, if it is the echo of one of ours.
    pub fn echo(&mut self, address: &str, value: &Value) -> Option<Origin> {
        self.0.origin(address, value)
    }
}
