//! JSON ⇄ Avro values, driven by the schema.
//!
//! JSON → Avro accepts at least everything the original gateway accepted and
//! fixes its gaps: numbers inside arrays convert, integers fill `int` (when in range), `float` and
//! `double`. Extra JSON keys are ignored, a missing key takes the field's default, and every error
//! names the offending field by its path (`payload.items[2].size`).

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, RecordSchema, UnionSchema};
use apache_avro::types::Value;
use serde_json::{Map, Number, Value as Json};

/// A JSON value does not fit the schema; `path` names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{path}`: {reason}")]
pub struct FieldError {
    /// Dotted path of the offending field (`$` for the whole document).
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Named types of a schema, so `Schema::Ref` can be followed.
pub(crate) type Names = HashMap<Name, Schema>;

/// Collects every named type (records, enums, fixed) defined inside `schema`.
pub(crate) fn collect_names(schema: &Schema) -> Names {
    fn walk(schema: &Schema, names: &mut Names) {
        match schema {
            Schema::Record(record) => {
                names.insert(record.name.clone(), schema.clone());
                for field in &record.fields {
                    walk(&field.schema, names);
                }
            }
            Schema::Enum(e) => {
                names.insert(e.name.clone(), schema.clone());
            }
            Schema::Fixed(f) => {
                names.insert(f.name.clone(), schema.clone());
            }
            Schema::Array(array) => walk(&array.items, names),
            Schema::Map(map) => walk(&map.types, names),
            Schema::Union(union) => {
                for variant in union.variants() {
                    walk(variant, names);
                }
            }
            _ => {}
        }
    }
    let mut names = Names::new();
    walk(schema, &mut names);
    names
}

/// Converts a JSON document to an Avro value of `schema`.
pub fn json_to_avro(schema: &Schema, json: &Json) -> Result<Value, FieldError> {
    let names = collect_names(schema);
    Converter { names: &names }.convert(schema, json, "$")
}

pub(crate) fn json_to_avro_with(
    schema: &Schema,
    names: &Names,
    json: &Json,
) -> Result<Value, FieldError> {
    Converter { names }.convert(schema, json, "$")
}

struct Converter<'a> {
    names: &'a Names,
}

fn err(path: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        path: path.trim_start_matches("$.").to_owned(),
        reason: reason.into(),
    }
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_f64() => "number",
        Json::Number(_) => "integer",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

impl Converter<'_> {
    fn convert(&self, schema: &Schema, json: &Json, path: &str) -> Result<Value, FieldError> {
        let mismatch =
            |expected: &str| err(path, format!("expected {expected}, got {}", kind(json)));
        match schema {
            Schema::Null => match json {
                Json::Null => Ok(Value::Null),
                _ => Err(mismatch("null")),
            },
            Schema::Boolean => json
                .as_bool()
                .map(Value::Boolean)
                .ok_or_else(|| mismatch("boolean")),
            Schema::Int => match json {
                Json::Number(n) => integer(n)
                    .and_then(|i| i32::try_from(i).ok())
                    .map(Value::Int)
                    .ok_or_else(|| mismatch("int (32-bit integer)")),
                _ => Err(mismatch("int")),
            },
            Schema::Long => match json {
                Json::Number(n) => integer(n)
                    .map(Value::Long)
                    .ok_or_else(|| mismatch("long (64-bit integer)")),
                _ => Err(mismatch("long")),
            },
            Schema::Float => match json {
                Json::Number(n) => n
                    .as_f64()
                    .map(|f| Value::Float(f as f32))
                    .ok_or_else(|| mismatch("float")),
                _ => Err(mismatch("float")),
            },
            Schema::Double => match json {
                Json::Number(n) => n
                    .as_f64()
                    .map(Value::Double)
                    .ok_or_else(|| mismatch("double")),
                _ => Err(mismatch("double")),
            },
            Schema::String => match json {
                Json::String(s) => Ok(Value::String(s.clone())),
                _ => Err(mismatch("string")),
            },
            Schema::Bytes => match json {
                // Avro's JSON encoding of bytes: each char is one byte (ISO-8859-1).
                Json::String(s) => latin1(s)
                    .map(Value::Bytes)
                    .ok_or_else(|| mismatch("bytes as a latin-1 string")),
                _ => Err(mismatch("bytes")),
            },
            Schema::Uuid(_) => match json {
                Json::String(s) => uuid::Uuid::parse_str(s)
                    .map(Value::Uuid)
                    .map_err(|e| err(path, format!("expected a UUID: {e}"))),
                _ => Err(mismatch("uuid string")),
            },
            Schema::Date => self.convert(&Schema::Int, json, path).map(|v| match v {
                Value::Int(i) => Value::Date(i),
                other => other,
            }),
            Schema::TimestampMillis => self.convert(&Schema::Long, json, path).map(|v| match v {
                Value::Long(i) => Value::TimestampMillis(i),
                other => other,
            }),
            Schema::TimestampMicros => self.convert(&Schema::Long, json, path).map(|v| match v {
                Value::Long(i) => Value::TimestampMicros(i),
                other => other,
            }),
            Schema::Enum(e) => match json {
                Json::String(s) => e
                    .symbols
                    .iter()
                    .position(|sym| sym == s)
                    .map(|i| Value::Enum(i as u32, s.clone()))
                    .ok_or_else(|| err(path, format!("{s:?} is not one of {:?}", e.symbols))),
                _ => Err(mismatch("enum symbol string")),
            },
            Schema::Fixed(f) => match json {
                Json::String(s) => match latin1(s) {
                    Some(bytes) if bytes.len() == f.size => Ok(Value::Fixed(f.size, bytes)),
                    _ => Err(err(path, format!("expected {} bytes", f.size))),
                },
                _ => Err(mismatch("fixed bytes string")),
            },
            Schema::Array(array) => match json {
                Json::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.convert(&array.items, item, &format!("{path}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                _ => Err(mismatch("array")),
            },
            Schema::Map(map) => match json {
                Json::Object(entries) => entries
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            self.convert(&map.types, v, &format!("{path}.{k}"))?,
                        ))
                    })
                    .collect::<Result<HashMap<_, _>, _>>()
                    .map(Value::Map),
                _ => Err(mismatch("object")),
            },
            Schema::Union(union) => self.union(union, json, path),
            Schema::Record(record) => match json {
                Json::Object(object) => self.record(record, object, path),
                _ => Err(mismatch("object")),
            },
            Schema::Ref { name } => match self.names.get(name) {
                Some(target) => self.convert(target, json, path),
                None => Err(err(path, format!("schema references unknown type {name}"))),
            },
            other => Err(err(
                path,
                format!("Avro type {other:?} is not supported for JSON input"),
            )),
        }
    }

    fn record(
        &self,
        record: &RecordSchema,
        object: &Map<String, Json>,
        path: &str,
    ) -> Result<Value, FieldError> {
        let mut fields = Vec::with_capacity(record.fields.len());
        for field in &record.fields {
            let field_path = format!("{path}.{}", field.name);
            let value = match (object.get(&field.name), &field.default) {
                (Some(json), _) => self.convert(&field.schema, json, &field_path)?,
                (None, Some(default)) => self.default(&field.schema, default, &field_path)?,
                (None, None) => return Err(err(&field_path, "required field is missing")),
            };
            fields.push((field.name.clone(), value));
        }
        Ok(Value::Record(fields))
    }

    /// A field default is written in the JSON encoding of the field's type; for a union it
    /// belongs to the first branch (Avro spec).
    fn default(&self, schema: &Schema, default: &Json, path: &str) -> Result<Value, FieldError> {
        match schema {
            Schema::Union(union) => match union.variants().first() {
                Some(first) => {
                    let value = self.convert(first, default, path)?;
                    Ok(Value::Union(0, Box::new(value)))
                }
                None => Err(err(path, "empty union")),
            },
            other => self.convert(other, default, path),
        }
    }

    fn union(&self, union: &UnionSchema, json: &Json, path: &str) -> Result<Value, FieldError> {
        // Branch choice: null → the null branch; otherwise the first branch that accepts the
        // value, trying "natural" matches first so an integer prefers long over double.
        let variants = union.variants();
        if json.is_null() {
            return variants
                .iter()
                .position(|v| matches!(v, Schema::Null))
                .map(|i| Value::Union(i as u32, Box::new(Value::Null)))
                .ok_or_else(|| err(path, "null is not allowed here"));
        }
        let mut last_error = None;
        for pass in [true, false] {
            for (i, variant) in variants.iter().enumerate() {
                if matches!(variant, Schema::Null) || natural(variant, json) != pass {
                    continue;
                }
                match self.convert(variant, json, path) {
                    Ok(value) => return Ok(Value::Union(i as u32, Box::new(value))),
                    Err(e) => last_error = Some(e),
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            err(
                path,
                format!("no branch of the union accepts a {}", kind(json)),
            )
        }))
    }
}

/// Whether `schema` is the obvious home for a JSON value of this kind.
fn natural(schema: &Schema, json: &Json) -> bool {
    match json {
        Json::Bool(_) => matches!(schema, Schema::Boolean),
        Json::Number(n) if n.is_f64() => matches!(schema, Schema::Double | Schema::Float),
        Json::Number(_) => matches!(schema, Schema::Long | Schema::Int),
        Json::String(_) => matches!(schema, Schema::String | Schema::Enum(_) | Schema::Uuid(_)),
        Json::Array(_) => matches!(schema, Schema::Array(_)),
        Json::Object(_) => matches!(
            schema,
            Schema::Record(_) | Schema::Map(_) | Schema::Ref { .. }
        ),
        Json::Null => matches!(schema, Schema::Null),
    }
}

/// An integral JSON number as i64; also accepts floats with no fractional part that fit
/// (`5.0`), which JSON producers sometimes emit for whole numbers.
fn integer(n: &Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    let in_range = f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64;
    in_range.then_some(f as i64)
}

fn latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Converts a decoded Avro value to JSON: unions become their plain branch value, records
/// objects, longs and ints numbers, bytes latin-1 strings.
pub fn avro_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => Json::from(*i),
        Value::Long(i)
        | Value::TimeMicros(i)
        | Value::TimestampMillis(i)
        | Value::TimestampMicros(i)
        | Value::TimestampNanos(i)
        | Value::LocalTimestampMillis(i)
        | Value::LocalTimestampMicros(i)
        | Value::LocalTimestampNanos(i) => Json::from(*i),
        Value::Float(f) => Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number),
        Value::Double(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Bytes(b) | Value::Fixed(_, b) => {
            Json::String(b.iter().map(|&c| char::from(c)).collect())
        }
        Value::String(s) | Value::Enum(_, s) => Json::String(s.clone()),
        Value::Uuid(u) => Json::String(u.to_string()),
        Value::Union(_, inner) => avro_to_json(inner),
        Value::Array(items) => Json::Array(items.iter().map(avro_to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect(),
        ),
        Value::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect(),
        ),
        other => Json::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(text: &str) -> Schema {
        Schema::parse_str(text).unwrap_or_else(|e| panic!("schema: {e}"))
    }

    fn upload_intent() -> Schema {
        schema(
            r#"{"type":"record","name":"UploadIntent","namespace":"internal.media","fields":[
                {"name":"user_id","type":"string"},
                {"name":"file_size","type":"long"},
                {"name":"visibility","type":"string","default":"broadcast"},
                {"name":"recipient_id","type":["null","string"],"default":null},
                {"name":"retry_count","type":"int","default":0}
            ]}"#,
        )
    }

    #[test]
    fn converts_strings_longs_defaults_and_nullable_unions() {
        let value = json_to_avro(
            &upload_intent(),
            &json!({"user_id": "u1", "file_size": 2048000, "extra": "ignored"}),
        )
        .unwrap();
        assert_eq!(
            value,
            Value::Record(vec![
                ("user_id".into(), Value::String("u1".into())),
                ("file_size".into(), Value::Long(2_048_000)),
                ("visibility".into(), Value::String("broadcast".into())),
                (
                    "recipient_id".into(),
                    Value::Union(0, Box::new(Value::Null))
                ),
                ("retry_count".into(), Value::Int(0)),
            ])
        );
        let json = avro_to_json(&value);
        assert_eq!(
            json,
            json!({"user_id":"u1","file_size":2048000,"visibility":"broadcast","recipient_id":null,"retry_count":0})
        );
    }

    #[test]
    fn errors_name_the_offending_field() {
        let cases = [
            (json!({"file_size": 1}), "user_id", "missing"),
            (
                json!({"user_id": 7, "file_size": 1}),
                "user_id",
                "expected string",
            ),
            (
                json!({"user_id": "u", "file_size": "big"}),
                "file_size",
                "expected long",
            ),
            (
                json!({"user_id": "u", "file_size": 1.5}),
                "file_size",
                "expected long",
            ),
            (
                json!({"user_id": "u", "file_size": 1, "recipient_id": 5}),
                "recipient_id",
                "",
            ),
            (
                json!({"user_id": "u", "file_size": 1, "retry_count": 3_000_000_000u64}),
                "retry_count",
                "int",
            ),
            (json!(["not", "an", "object"]), "$", "expected object"),
        ];
        for (input, field, fragment) in cases {
            let error = json_to_avro(&upload_intent(), &input)
                .err()
                .unwrap_or_else(|| panic!("{input} should be rejected"));
            assert_eq!(error.path, field, "{input}: {error}");
            assert!(error.to_string().contains(fragment), "{input}: {error}");
        }
    }

    #[test]
    fn numbers_inside_arrays_and_nested_records_convert() {
        let schema = schema(
            r#"{"type":"record","name":"Outer","fields":[
                {"name":"sizes","type":{"type":"array","items":"long"}},
                {"name":"ratio","type":"double"},
                {"name":"inner","type":{"type":"record","name":"Inner","fields":[{"name":"n","type":"int"}]}},
                {"name":"again","type":["null","Inner"],"default":null}
            ]}"#,
        );
        let value = json_to_avro(
            &schema,
            &json!({"sizes":[1,2,3],"ratio":5,"inner":{"n":4},"again":{"n":5}}),
        )
        .unwrap();
        assert_eq!(
            avro_to_json(&value),
            json!({"sizes":[1,2,3],"ratio":5.0,"inner":{"n":4},"again":{"n":5}})
        );
        let error = json_to_avro(&schema, &json!({"sizes":[1,"x"],"ratio":1,"inner":{"n":1}}))
            .err()
            .unwrap_or_else(|| panic!("should fail"));
        assert_eq!(error.path, "sizes[1]");
    }

    #[test]
    fn encoded_values_round_trip_through_avro_binary() {
        let schema = upload_intent();
        let value = json_to_avro(
            &schema,
            &json!({"user_id":"u","file_size":9_223_372_036_854_775_807i64,"recipient_id":"r"}),
        )
        .unwrap();
        let bytes = crate::avro::encode_datum(&schema, value.clone()).unwrap();
        let decoded = crate::avro::decode_datum(&schema, &mut bytes.as_slice()).unwrap();
        assert_eq!(avro_to_json(&decoded), avro_to_json(&value));
        assert_eq!(avro_to_json(&decoded)["recipient_id"], json!("r"));
    }
}
