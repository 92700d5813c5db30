//! MQTT ↔ CLASP: a client bridge to an external broker (paho-mqtt) and an embedded broker
//! for plain MQTT clients. PLACEHOLDER: the MQTT bridges fill this module in.

pub mod client;
pub mod mapping;
pub mod server;

pub use client::{MqttClientBridge, MqttClientConfig};
pub use server::{MqttServerBridge, MqttServerConfig};
