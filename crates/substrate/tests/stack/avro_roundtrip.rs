//! Every contract in `avro/` survives JSON → Avro (Confluent framing) → broker → Avro → JSON,
//! and the bytes are readable by an independent implementation (Python confluent-kafka).

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use substrate::avro::unframe;
use substrate::kafka::{EventPublisher, OutboundRecord};

use crate::helpers::{Stack, contracts, repo_root, sample};

struct Produced {
    topic: String,
    schema_id: u32,
    expected: Value,
}

/// Registers every contract on its own fresh topic, produces one sample per topic and returns
/// what a reader must find.
async fn produce_every_contract(stack: &Stack) -> Vec<Produced> {
    let contracts = contracts();
    assert_eq!(
        contracts.len(),
        25,
        "one contract per topic of the catalogue"
    );
    let mut produced = Vec::new();
    for (seed, contract) in contracts.iter().enumerate() {
        let (topic, schema_id) = stack
            .topic_with_schema(&contract.topic, &contract.schema_text)
            .await;
        let (input, expected) = sample(&contract.schema, seed);
        let bytes = stack
            .codec
            .encode_json(&topic, &input)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", contract.topic));
        let (framed_id, _) = unframe(&bytes).unwrap();
        assert_eq!(
            framed_id, schema_id,
            "{}: frame carries the registry id",
            contract.topic
        );
        stack
            .publisher
            .publish(OutboundRecord::new(topic.clone(), bytes))
            .await
            .unwrap_or_else(|e| panic!("{}: produce: {e}", contract.topic));
        produced.push(Produced {
            topic,
            schema_id,
            expected,
        });
    }
    produced
}

#[tokio::test(flavor = "multi_thread")]
async fn every_contract_round_trips_through_the_real_broker_and_registry() {
    // Arrange + Act: one sample per contract on the broker.
    let stack = Stack::connect();
    let produced = produce_every_contract(&stack).await;

    // Act: read them back with a fresh consumer group.
    let topics: Vec<&str> = produced.iter().map(|p| p.topic.as_str()).collect();
    let messages = stack
        .stack
        .read_topics(&topics, produced.len(), Duration::from_secs(60))
        .await;

    // Assert: each decodes with the registry's writer schema to exactly the expected document.
    assert_eq!(
        messages.len(),
        produced.len(),
        "every produced record is consumed"
    );
    let by_topic: HashMap<&str, _> = messages.iter().map(|m| (m.topic.as_str(), m)).collect();
    for expected in &produced {
        let message = by_topic
            .get(expected.topic.as_str())
            .unwrap_or_else(|| panic!("{} missing", expected.topic));
        let payload = message.payload.as_deref().unwrap_or_default();
        let decoded = stack
            .codec
            .decode(payload)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", expected.topic));
        assert_eq!(decoded.schema_id, expected.schema_id, "{}", expected.topic);
        assert_eq!(decoded.to_json(), expected.expected, "{}", expected.topic);
        assert!(message.key.is_none(), "records are keyless");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_confluent_kafka_decodes_what_substrate_produces() {
    // Arrange: the same contracts produced by substrate.
    let stack = Stack::connect();
    let produced = produce_every_contract(&stack).await;
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing; run ./taskw setup (the venv holds confluent-kafka)",
        python.display()
    );

    // Act: an independent decoder (confluent-kafka's AvroDeserializer) reads every topic.
    let mut command = Command::new(&python);
    command
        .arg(repo_root().join("tests/interop/confluent_decode.py"))
        .arg("--bootstrap")
        .arg(stack.stack.kafka.broker_list().join(","))
        .arg("--registry")
        .arg(&stack.stack.registry.url)
        .arg("--timeout")
        .arg("60");
    for p in &produced {
        command.arg(&p.topic);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("running the python decoder: {e}"));
    assert!(
        output.status.success(),
        "python decoder failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Assert: it saw each record with the same schema id and the same document.
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    assert_eq!(lines.len(), produced.len(), "one decoded record per topic");
    for expected in &produced {
        let line = lines
            .iter()
            .find(|l| l["topic"] == expected.topic.as_str())
            .unwrap_or_else(|| panic!("python did not decode {}", expected.topic));
        assert_eq!(line["schema_id"], expected.schema_id, "{}", expected.topic);
        assert_eq!(line["value"], expected.expected, "{}", expected.topic);
    }
}
