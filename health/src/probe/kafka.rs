//! Kafka: a metadata request through librdkafka (the client the rest of drkit uses). With a topic,
//! the metadata must list it, without error, with a leader for every partition.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use replay::kafka::Settings;

pub async fn probe(
    bootstrap: &str,
    topic: Option<&str>,
    settings: &Settings,
    timeout: Duration,
) -> Result<String, String> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        // A health check must not create the topic it is looking for.
        .set("allow.auto.create.topics", "false")
        .set("socket.timeout.ms", timeout.as_millis().max(10).to_string());
    for (k, v) in &settings.0 {
        c.set(k, v);
    }
    let topic = topic.map(str::to_string);
    // librdkafka blocks: off the async executor.
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = c.create().map_err(|e| format!("client: {e}"))?;
        let md = consumer
            .fetch_metadata(topic.as_deref(), timeout)
            .map_err(|e| format!("metadata: {e}"))?;
        let brokers = md.brokers().len();
        let Some(t) = topic else {
            return Ok(format!("{brokers} broker(s)"));
        };
        let Some(tm) = md.topics().iter().find(|x| x.name() == t) else {
            return Err(format!("topic {t:?} not in the metadata"));
        };
        if let Some(e) = tm.error() {
            return Err(format!("topic {t:?}: {:?}", e));
        }
        if tm.partitions().is_empty() {
            return Err(format!("topic {t:?}: no partitions"));
        }
        let leaderless: Vec<i32> = tm
            .partitions()
            .iter()
            .filter(|p| p.leader() < 0 || p.error().is_some())
            .map(|p| p.id())
            .collect();
        if !leaderless.is_empty() {
            return Err(format!(
                "topic {t:?}: partitions without a leader: {leaderless:?}"
            ));
        }
        Ok(format!(
            "{brokers} broker(s), topic {t:?}: {} partition(s) with leaders",
            tm.partitions().len()
        ))
    })
    .await
    .map_err(|e| format!("metadata task: {e}"))?
}
