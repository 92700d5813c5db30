//! One run of the client bridge: subscribe to the namespace on the router, then connect to
//! the broker, subscribe there, and move messages both ways; on a lost connection reconnect
//! with backoff (1 s doubling to 30 s) and re-subscribe, keeping CLASP changes meanwhile in
//! the outbox. The run ends only when the router link is gone.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clasp_actors::client::{ClientError, Update};
use clasp_actors::link::{LinkSubscription, RouterLink};
use clasp_proto::SignalType;
use paho_mqtt as paho;
use tokio::sync::mpsc;

use super::broker;
use super::echoes::Echoes;
use super::outbox::{Outbox, Pending};
use super::Settings;
use crate::mqtt::mapping;
use crate::noise::BadInput;
use crate::supervise::backoff;
use crate::{BridgeError, BridgeStats};

/// How often pending publishes are retried while connected (paho's in-flight window full).
const RETRY: Duration = Duration::from_millis(200);
/// Broker messages waiting for the router; beyond it they are dropped and counted.
const INBOUND_QUEUE: usize = 65_536;
/// Shortest interval between two logs of dropped broker messages.
const DROP_REPORT: Duration = Duration::from_secs(10);

/// Runs the bridge until the router link closes (an error: the supervisor restarts it).
pub(super) async fn run(
    settings: Arc<Settings>,
    link: RouterLink,
    stats: Arc<BridgeStats>,
    outbox: Arc<Mutex<Outbox>>,
) -> Result<(), BridgeError> {
    // Live changes only: state that exists before the bridge starts is not pushed over the
    // broker's own retained values (over WebSocket the snapshot is skipped in `outbound`).
    let mut sub = link.subscribe_live(&settings.namespace.subtree()).await?;
    let mut client = broker::client(&settings)?;
    let options = broker::connect_options(&settings)?;
    let _disconnect = DisconnectOnDrop(client.clone());
    // Declared after the client's last handle, so it is dropped first: paho's thread never
    // waits on a queue nobody reads.
    let mut stream = Inbound::install(&mut client);
    let mut session = Session {
        settings,
        link,
        stats,
        outbox,
        client,
        from_broker: Echoes::default(),
        own: Echoes::default(),
        bad: BadInput::default(),
    };
    let mut failures = 0u32;
    loop {
        session.stats.set_up(false);
        let token = session.client.connect(options.clone());
        if let Err(e) = session.offline_while(token, &mut sub).await? {
            failures = failures.saturating_add(1);
            let delay = backoff(failures);
            if failures == 1 {
                tracing::warn!(bridge = %session.stats.name, broker = %session.settings.url,
                    error = %e, ?delay, "cannot connect to the MQTT broker; retrying with backoff");
            }
            session.stats.set_error(format!("broker: {e}"));
            session
                .offline_while(tokio::time::sleep(delay), &mut sub)
                .await?;
            continue;
        }
        let token = session.subscribe();
        let granted = session.offline_while(token, &mut sub).await?;
        if let Ok(response) = &granted {
            session.check_granted(response);
        }
        if let Err(e) = granted {
            failures = failures.saturating_add(1);
            let delay = backoff(failures);
            tracing::warn!(bridge = %session.stats.name, error = %e, ?delay,
                "subscribing on the broker failed; reconnecting after a backoff");
            session.stats.set_error(format!("broker subscribe: {e}"));
            drop(session.client.disconnect(None));
            session
                .offline_while(tokio::time::sleep(delay), &mut sub)
                .await?;
            continue;
        }
        failures = 0;
        session.stats.set_up(true);
        let replayed = session.flush();
        tracing::info!(bridge = %session.stats.name, broker = %session.settings.url,
            filters = ?session.settings.filters, replayed, "connected to the MQTT broker");
        session.online(&mut stream, &mut sub).await?;
        tracing::warn!(bridge = %session.stats.name, broker = %session.settings.url,
            "connection to the MQTT broker lost; reconnecting");
    }
}

/// Broker messages as paho's thread hands them over, `None` marking a lost connection.
struct Inbound {
    rx: mpsc::Receiver<Option<paho::Message>>,
    /// Messages dropped because the queue was full (the router slower than the broker).
    dropped: Arc<AtomicU64>,
    reported: u64,
    last_report: Option<Instant>,
}

impl Inbound {
    /// Installs the message callback. It must not block: paho calls it holding the
    /// library's global lock, which the bridge's own calls (publish, is_connected) need, so
    /// a full queue drops the message and counts it instead of waiting.
    fn install(client: &mut paho::AsyncClient) -> Inbound {
        // get_stream installs the connection-lost hooks that push the `None`; its channel is
        // then replaced by ours.
        drop(client.get_stream(1));
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        client.set_message_callback(move |_, msg| {
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(msg) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        Inbound {
            rx,
            dropped,
            reported: 0,
            last_report: None,
        }
    }

    /// Logs the drops since the last report, at most once every [`DROP_REPORT`].
    fn report_drops(&mut self, stats: &BridgeStats) {
        let total = self.dropped.load(Ordering::Relaxed);
        let due = self
            .last_report
            .is_none_or(|at| at.elapsed() >= DROP_REPORT);
        if total > self.reported && due {
            self.last_report = Some(Instant::now());
            tracing::warn!(bridge = %stats.name, dropped = total - self.reported, total,
                "broker messages dropped: the router is slower than the broker (queue full)");
            self.reported = total;
        }
    }
}

/// Disconnects from the broker when the run ends or the bridge is stopped.
struct DisconnectOnDrop(paho::AsyncClient);

impl Drop for DisconnectOnDrop {
    fn drop(&mut self) {
        if self.0.is_connected() {
            // The request goes out when called; the token only reports its outcome.
            drop(self.0.disconnect(None));
        }
    }
}

struct Session {
    settings: Arc<Settings>,
    link: RouterLink,
    stats: Arc<BridgeStats>,
    outbox: Arc<Mutex<Outbox>>,
    client: paho::AsyncClient,
    /// Values written to the router from the broker: their echo is not published back.
    from_broker: Echoes,
    /// MQTT 3.1.1 only (no no-local option): what the bridge published, by topic, so the
    /// broker's copy of it is not taken as input.
    own: Echoes,
    bad: BadInput,
}

impl Session {
    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Awaits `fut` while queueing the router's changes for later (broker not ready).
    async fn offline_while<F: Future>(
        &mut self,
        fut: F,
        sub: &mut LinkSubscription,
    ) -> Result<F::Output, BridgeError> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Ok(out),
                update = sub.next() => match update {
                    Some(update) => self.outbound(update, false),
                    None => return Err(ClientError::Closed.into()),
                },
            }
        }
    }

    /// Moves messages both ways until the broker connection is lost (`Ok`) or the router
    /// link closes (`Err`).
    async fn online(
        &mut self,
        stream: &mut Inbound,
        sub: &mut LinkSubscription,
    ) -> Result<(), BridgeError> {
        let mut retry = tokio::time::interval(RETRY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = stream.rx.recv() => match msg {
                    Some(Some(msg)) => self.inbound(msg).await?,
                    // A marker queued before a reconnection the tick already noticed is stale.
                    Some(None) if self.client.is_connected() => {}
                    Some(None) => return Ok(()),
                    None => return Err(BridgeError::Protocol("MQTT client stream closed".into())),
                },
                update = sub.next() => match update {
                    Some(update) => self.outbound(update, true),
                    None => return Err(ClientError::Closed.into()),
                },
                _ = retry.tick() => {
                    stream.report_drops(&self.stats);
                    if !self.client.is_connected() {
                        return Ok(());
                    }
                    self.flush();
                }
            }
        }
    }

    /// Subscribes to the filters at QoS 2 (each message keeps its publisher's QoS); with
    /// MQTT 5, no-local (the bridge's own publishes do not come back) and
    /// retain-as-published (a live retained publish keeps its retain flag).
    fn subscribe(&self) -> paho::SubscribeManyToken {
        let filters = &self.settings.filters;
        let qos = vec![paho::QoS::ExactlyOnce; filters.len()];
        if self.settings.v5 {
            let opts = vec![
                paho::SubscribeOptions::new(
                    true,
                    true,
                    paho::RetainHandling::SendRetainedOnSubscribe
                );
                filters.len()
            ];
            self.client
                .subscribe_many_with_options(filters, &qos, &opts, None)
        } else {
            self.client.subscribe_many(filters, &qos)
        }
    }

    /// Logs the filters the broker refused (a SUBACK code of 0x80 or more, e.g. an ACL):
    /// the others work, so the bridge carries on.
    fn check_granted(&self, response: &paho::ServerResponse) {
        let Some(codes) = response.subscribe_many_response() else {
            return;
        };
        for (filter, code) in self.settings.filters.iter().zip(codes) {
            if code >= 0x80 {
                tracing::warn!(bridge = %self.stats.name, filter, code,
                    "the broker refused this subscription");
                self.stats
                    .set_error(format!("broker refused subscription {filter:?} ({code})"));
            }
        }
    }

    /// One broker message into the router: retained → SET, otherwise → event.
    async fn inbound(&mut self, msg: paho::Message) -> Result<(), BridgeError> {
        let topic = msg.topic();
        let address = match mapping::topic_to_address(&self.settings.namespace, topic) {
            Ok(a) => a,
            Err(e) => {
                self.bad.report(&self.stats, topic, &e);
                return Ok(());
            }
        };
        let value = mapping::decode_payload(msg.payload());
        if !self.settings.v5 && self.own.take(topic, &value) {
            return Ok(());
        }
        let result = if msg.retained() {
            self.from_broker.expect(address.as_str(), &value);
            self.link.set(address.as_str(), value).await.map(|_| ())
        } else {
            self.link
                .publish(SignalType::Event, address.as_str(), value)
                .await
        };
        match result {
            Ok(()) => BridgeStats::bump(&self.stats.received),
            Err(ClientError::Server { code, message, .. }) => {
                BridgeStats::bump(&self.stats.refused);
                tracing::debug!(bridge = %self.stats.name, %address, code, %message,
                    "router refused a write from the broker");
            }
            Err(e @ (ClientError::Address(_) | ClientError::Pattern(_))) => {
                self.bad.report(&self.stats, topic, &e);
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// One router change toward the broker: sent now when connected (after whatever waits
    /// before it), otherwise kept in the outbox.
    fn outbound(&mut self, update: Update, online: bool) {
        // A SNAPSHOT entry (it names its writer; live SETs do not) is state, not a change.
        if update.signal == SignalType::Param && update.writer.is_some() {
            return;
        }
        let address = update.address.as_str();
        let Some(topic) = mapping::address_to_topic(&self.settings.namespace, address) else {
            return;
        };
        if update.signal == SignalType::Param && self.from_broker.take(address, &update.value) {
            return;
        }
        if let Err(e) = mapping::check_publish_topic(topic) {
            self.bad.report(&self.stats, address, &e);
            return;
        }
        let pending = Pending {
            topic: topic.to_string(),
            payload: mapping::encode_payload(&update.value),
            retained: update.signal == SignalType::Param,
        };
        if online && self.outbox().is_empty() {
            if let Err(pending) = self.send(pending) {
                self.outbox().push(pending);
            }
        } else {
            self.outbox().push(pending);
            if online {
                // Behind a backlog: it goes out after what waits before it.
                self.flush();
            }
        }
    }

    /// Hands one publish to paho; gives it back when paho cannot take it now.
    fn send(&mut self, p: Pending) -> Result<(), Pending> {
        let msg = paho::MessageBuilder::new()
            .topic(p.topic.clone())
            .payload(p.payload.clone())
            .qos(self.settings.qos)
            .retained(p.retained)
            .finalize();
        match self.client.try_publish(msg) {
            Ok(_delivery) => {
                BridgeStats::bump(&self.stats.sent);
                if !self.settings.v5 {
                    let value = mapping::decode_payload(&p.payload);
                    self.own.expect(&p.topic, &value);
                }
                Ok(())
            }
            Err(_) => Err(p),
        }
    }

    /// Sends what the outbox holds, as far as paho takes it; the number sent.
    fn flush(&mut self) -> usize {
        let outbox = self.outbox.clone();
        let mut sent = 0;
        loop {
            let next = outbox.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some(p) = next else { break };
            match self.send(p) {
                Ok(()) => sent += 1,
                Err(p) => {
                    self.outbox().unpop(p);
                    break;
                }
            }
        }
        let dropped = self.outbox().take_dropped();
        if dropped > 0 {
            tracing::warn!(bridge = %self.stats.name, dropped,
                "outbound changes dropped while the broker could not take them (outbox full)");
        }
        sent
    }
}
