//! The platform's Avro codec: Confluent framing over a schema registry.
//!
//! Wire format (every topic): byte 0 is the magic `0`, bytes 1–4 the schema id (big-endian u32),
//! the rest one Avro binary datum. Producers encode with the latest schema of `<topic>-value`;
//! consumers decode with the writer schema named by the id (no reader-schema resolution).

pub mod json;
#[cfg(any(test, feature = "fuzzing"))]
pub mod properties;
pub mod registry;

use std::sync::Arc;

use apache_avro::types::Value;
use serde_json::Value as Json;

pub use json::{FieldError, avro_to_json, json_to_avro};
pub use registry::{CachedSchema, RegistryError, RegistrySettings, SchemaRegistry, value_subject};

/// The Confluent magic byte.
pub const MAGIC_BYTE: u8 = 0;

/// Frames an Avro body with the Confluent header.
pub fn frame(schema_id: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(5 + body.len());
    bytes.push(MAGIC_BYTE);
    bytes.extend_from_slice(&schema_id.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Splits a Confluent frame into schema id and Avro body.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), CodecError> {
    match bytes {
        [MAGIC_BYTE, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        [first, ..] if bytes.len() >= 5 => Err(CodecError::Framing(format!(
            "magic byte is {first}, expected 0"
        ))),
        _ => Err(CodecError::Framing(format!(
            "{} bytes is shorter than the 5-byte header",
            bytes.len()
        ))),
    }
}

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The registry failed; see [`RegistryError::is_retryable`].
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The JSON does not fit the schema; names the field.
    #[error("payload does not match the schema: {0}")]
    Field(#[from] FieldError),
    /// The bytes are not a Confluent frame.
    #[error("not a Confluent-framed record: {0}")]
    Framing(String),
    /// The Avro body does not decode with its writer schema.
    #[error("Avro body does not decode: {0}")]
    Decode(String),
    /// The value does not encode with the schema.
    #[error("value does not encode: {0}")]
    Encode(String),
}

impl CodecError {
    /// Whether retrying later may succeed (only registry outages); everything else is a
    /// property of the data and permanent.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Registry(e) if e.is_retryable())
    }
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Writer schema id from the frame.
    pub schema_id: u32,
    /// The datum as an Avro value.
    pub value: Value,
}

impl Decoded {
    /// The datum as JSON (unions flattened).
    pub fn to_json(&self) -> Json {
        avro_to_json(&self.value)
    }
}

/// Encodes and decodes Confluent-framed Avro using a shared [`SchemaRegistry`].
#[derive(Debug, Clone)]
pub struct AvroCodec {
    registry: Arc<SchemaRegistry>,
}

impl AvroCodec {
    /// A codec over `registry`.
    pub fn new(registry: Arc<SchemaRegistry>) -> Self {
        Self { registry }
    }

    /// The registry behind the codec.
    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.registry
    }

    /// Encodes a JSON document with the latest schema of `<topic>-value`.
    pub async fn encode_json(&self, topic: &str, document: &Json) -> Result<Vec<u8>, CodecError> {
        let schema = self.registry.latest_for_topic(topic).await?;
        let value = json::json_to_avro_with(&schema.schema, &schema.names, document)?;
        encode(&schema, value)
    }

    /// Encodes an Avro value with the latest schema of `<topic>-value`.
    pub async fn encode_value(&self, topic: &str, value: Value) -> Result<Vec<u8>, CodecError> {
        let schema = self.registry.latest_for_topic(topic).await?;
        encode(&schema, value)
    }

    /// Decodes a framed record with its writer schema.
    pub async fn decode(&self, bytes: &[u8]) -> Result<Decoded, CodecError> {
        let (schema_id, mut body) = unframe(bytes)?;
        let schema = self.registry.by_id(schema_id).await?;
        let value = decode_datum(&schema.schema, &mut body)
            .map_err(|e| CodecError::Decode(e.to_string()))?;
        if !body.is_empty() {
            return Err(CodecError::Decode(format!(
                "{} trailing bytes after the datum",
                body.len()
            )));
        }
        Ok(Decoded { schema_id, value })
    }
}

fn encode(schema: &CachedSchema, value: Value) -> Result<Vec<u8>, CodecError> {
    let body =
        encode_datum(&schema.schema, value).map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(frame(schema.id, &body))
}

/// One Avro binary datum (no container header) of `value`, validated against `schema`.
pub fn encode_datum(
    schema: &apache_avro::Schema,
    value: Value,
) -> apache_avro::AvroResult<Vec<u8>> {
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()?
        .write_value_to_vec(value)
}

/// Reads one Avro binary datum written with `schema`.
pub fn decode_datum(
    schema: &apache_avro::Schema,
    reader: &mut &[u8],
) -> apache_avro::AvroResult<Value> {
    apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()?
        .read_value(reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_magic_and_big_endian_id() {
        let bytes = frame(0x0102_0304, &[9, 8]);
        assert_eq!(bytes, [0, 1, 2, 3, 4, 9, 8]);
        let (id, body) = unframe(&bytes).unwrap();
        assert_eq!((id, body), (0x0102_0304, &[9u8, 8][..]));
    }

    #[test]
    fn short_or_wrong_magic_frames_are_rejected() {
        for bad in [&[][..], &[0, 0, 0, 1][..], &[1, 0, 0, 0, 1, 2][..]] {
            let error = unframe(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(matches!(error, CodecError::Framing(_)), "{error}");
            assert!(!error.is_retryable());
        }
        assert_eq!(unframe(&[0, 0, 0, 0, 7]).ok(), Some((7, &[][..])));
    }
}
