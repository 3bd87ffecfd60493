//! Shared fixtures: the contracts in `avro/`, sample documents generated from a schema, and
//! clients for the local stack.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use apache_avro::Schema;
use serde_json::{Map, Value, json};
use substrate::avro::{AvroCodec, SchemaRegistry};
use substrate::kafka::KafkaPublisher;
use substrate::testing::{TestStack, unique};

pub use substrate::avro::properties::contracts;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A document for `schema` plus the document a decoder must return for it. Fields with a
/// default are left out on every other field, so defaults get exercised too.
pub fn sample(schema: &Schema, seed: usize) -> (Value, Value) {
    let Schema::Record(record) = schema else {
        panic!("contracts are records")
    };
    let mut input = Map::new();
    let mut expected = Map::new();
    for (index, field) in record.fields.iter().enumerate() {
        let omit = field.default.is_some() && (index + seed).is_multiple_of(2);
        if omit {
            let default = field.default.clone().unwrap_or(Value::Null);
            expected.insert(field.name.clone(), default);
            continue;
        }
        let value = sample_value(&field.schema, &field.name, seed);
        input.insert(field.name.clone(), value.clone());
        expected.insert(field.name.clone(), value);
    }
    (Value::Object(input), Value::Object(expected))
}

fn sample_value(schema: &Schema, name: &str, seed: usize) -> Value {
    match schema {
        Schema::String => json!(format!("{name}-{seed}-ünï \"quoted\" <tag> & more")),
        // Beyond 2^53, so a float round trip anywhere on the path would show.
        Schema::Long => json!(9_007_199_254_740_993i64 - seed as i64),
        Schema::Int => json!(2_147_483_000 + seed as i64),
        Schema::Boolean => json!(seed.is_multiple_of(2)),
        Schema::Double => json!(1.5 + seed as f64),
        Schema::Union(union) => {
            let branch = union
                .variants()
                .iter()
                .find(|v| !matches!(v, Schema::Null))
                .unwrap_or_else(|| panic!("{name}: union without a value branch"));
            sample_value(branch, name, seed)
        }
        other => panic!("{name}: no sample for {other:?}"),
    }
}

/// Clients for the local stack.
pub struct Stack {
    pub stack: TestStack,
    pub registry: Arc<SchemaRegistry>,
    pub codec: AvroCodec,
    pub publisher: KafkaPublisher,
}

impl Stack {
    pub fn connect() -> Self {
        let stack = TestStack::from_env();
        let registry = Arc::new(SchemaRegistry::new(&stack.registry).unwrap());
        let publisher = KafkaPublisher::new(&stack.kafka()).unwrap();
        Self {
            codec: AvroCodec::new(registry.clone()),
            registry,
            publisher,
            stack,
        }
    }

    /// A fresh topic named after `base`, created on the broker, with `schema` registered as its
    /// value subject. Returns the topic and the schema id.
    pub async fn topic_with_schema(&self, base: &str, schema: &str) -> (String, u32) {
        let topic = unique(base);
        self.stack.create_topics(&[&topic]).await;
        let id = self
            .registry
            .register_for_topic(&topic, schema)
            .await
            .unwrap_or_else(|e| panic!("register {topic}: {e}"));
        (topic, id)
    }
}

pub const USER_MESSAGE: &str = r#"{"type":"record","name":"UserMessageEvent","namespace":"public.user.message","fields":[
  {"name":"user_id","type":"string"},{"name":"email","type":"string"},{"name":"message","type":"string"},
  {"name":"timestamp","type":"string"},{"name":"visibility","type":"string","default":"broadcast"},
  {"name":"recipient_id","type":["null","string"],"default":null}]}"#;
