//! Properties of the JSON → Avro conversion, checked by the property tests below (in CI) and
//! by the `json_to_avro` fuzz target (`fuzz/`, feature `fuzzing`), which feed them inputs of
//! their own. Each check panics with a message when the property does not hold.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use apache_avro::Schema;
use serde_json::Value as Json;

use super::json::{avro_to_json, json_to_avro};
use super::{decode_datum, encode_datum};

/// One contract of `avro/`: the topic it belongs to (its path, `/` → `.`), its text and schema.
#[derive(Debug, Clone)]
pub struct Contract {
    /// The topic (and subject `<topic>-value`) the file is for.
    pub topic: String,
    /// The `.avsc` text, as registered.
    pub schema_text: String,
    /// The parsed schema.
    pub schema: Schema,
}

/// Every contract under the repository's `avro/`, sorted by path.
pub fn contracts() -> Vec<Contract> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for path in entries.flatten().map(|entry| entry.path()) {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "avsc") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../avro");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let topic = path
                .strip_prefix(&root)
                .map(|p| {
                    p.to_string_lossy()
                        .trim_end_matches(".avsc")
                        .replace('/', ".")
                })
                .unwrap_or_default();
            let schema_text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let schema = Schema::parse_str(&schema_text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Contract {
                topic,
                schema_text,
                schema,
            }
        })
        .collect()
}

/// [`contracts`], read once per process (fuzz targets call this for every input).
pub fn cached_contracts() -> &'static [Contract] {
    static CONTRACTS: OnceLock<Vec<Contract>> = OnceLock::new();
    CONTRACTS.get_or_init(contracts)
}

/// Whatever the document, converting it either fails with a field error or yields a value that
/// fits the schema: it encodes, decodes to the same value, and the JSON a consumer sees for it
/// converts back to that same value (nothing a producer accepted is changed on the way).
pub fn json_round_trip(schema: &Schema, document: &Json) {
    let Ok(value) = json_to_avro(schema, document) else {
        return;
    };
    let bytes = encode_datum(schema, value.clone())
        .unwrap_or_else(|e| panic!("an accepted document does not encode: {e}: {document}"));
    let decoded = decode_datum(schema, &mut bytes.as_slice())
        .unwrap_or_else(|e| panic!("encoded bytes do not decode: {e}: {document}"));
    assert_eq!(decoded, value, "the datum changed on the way: {document}");
    let seen = avro_to_json(&decoded);
    let again = json_to_avro(schema, &seen)
        .unwrap_or_else(|e| panic!("the decoded JSON {seen} is refused: {e}"));
    assert_eq!(
        again, value,
        "the decoded JSON converts differently: {seen}"
    );
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, json};

    use super::*;

    /// Any JSON value, a few levels deep, with the awkward numbers (beyond 2^53, beyond i32,
    /// negative, fractional) and strings (escapes, non-ASCII) that conversions get wrong.
    fn any_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<i32>().prop_map(|n| json!(n)),
            (-1.0e12..1.0e12f64).prop_map(|f| json!(f)),
            "\\PC{0,12}".prop_map(Json::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                    .prop_map(|m| Json::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// A document for a contract: each field absent, or set to a value of any kind.
    fn document_for(schema: &Schema) -> BoxedStrategy<Json> {
        let Schema::Record(record) = schema else {
            return any_json().boxed();
        };
        let fields: Vec<String> = record.fields.iter().map(|f| f.name.clone()).collect();
        prop::collection::vec(prop::option::of(any_json()), fields.len())
            .prop_map(move |values| {
                let mut map = Map::new();
                for (name, value) in fields.iter().zip(values) {
                    if let Some(value) = value {
                        map.insert(name.clone(), value);
                    }
                }
                Json::Object(map)
            })
            .boxed()
    }

    /// A document where every field has a value of its own type (so conversions succeed and
    /// the round trip is exercised, not just the refusals).
    fn fitting_document_for(schema: &Schema) -> BoxedStrategy<Json> {
        let Schema::Record(record) = schema else {
            return any_json().boxed();
        };
        let parts: Vec<(String, BoxedStrategy<Json>)> = record
            .fields
            .iter()
            .map(|f| (f.name.clone(), value_for(&f.schema)))
            .collect();
        let (names, strategies): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        strategies
            .prop_map(move |values| {
                Json::Object(names.iter().cloned().zip(values).collect::<Map<_, _>>())
            })
            .boxed()
    }

    fn value_for(schema: &Schema) -> BoxedStrategy<Json> {
        match schema {
            Schema::String => "\\PC{0,16}".prop_map(Json::String).boxed(),
            Schema::Long => any::<i64>().prop_map(|n| json!(n)).boxed(),
            Schema::Int => any::<i32>().prop_map(|n| json!(n)).boxed(),
            Schema::Boolean => any::<bool>().prop_map(Json::Bool).boxed(),
            Schema::Double => (-1.0e15..1.0e15f64).prop_map(|f| json!(f)).boxed(),
            Schema::Union(union) => {
                let branches: Vec<BoxedStrategy<Json>> =
                    union.variants().iter().map(value_for).collect();
                prop::strategy::Union::new(branches).boxed()
            }
            Schema::Null => Just(Json::Null).boxed(),
            _ => any_json().boxed(),
        }
    }

    #[test]
    fn any_document_either_is_refused_or_round_trips_unchanged() {
        let contracts = contracts();
        assert!(
            contracts.len() >= 20,
            "contracts found: {}",
            contracts.len()
        );
        let strategy = (0..contracts.len()).prop_flat_map(|index| {
            let schema = &contracts[index].schema;
            (
                Just(index),
                document_for(schema),
                fitting_document_for(schema),
            )
        });
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(512));
        runner
            .run(&strategy, |(index, any, fitting)| {
                json_round_trip(&contracts[index].schema, &any);
                json_round_trip(&contracts[index].schema, &fitting);
                Ok(())
            })
            .unwrap();
    }
}
