//! Reading decoded events: required fields, lenient integers, safe object keys, and the typed
//! events of the topics whose records must be usable as a whole ([`delete_retry`],
//! [`upload_retry`]).
//!
//! Events arrive as JSON objects decoded from Avro (Flink-written topics make every column a
//! nullable union, so any field can be null).

use serde_json::{Map, Value};
use substrate::media::events::{DeleteRetry, UploadRetry};

/// A decoded event.
pub type Fields = Map<String, Value>;

/// An event field is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {problem}")]
pub struct Invalid {
    /// Field name.
    pub field: &'static str,
    /// What is wrong.
    pub problem: &'static str,
}

fn invalid(field: &'static str, problem: &'static str) -> Invalid {
    Invalid { field, problem }
}

/// A present, non-empty string.
pub fn required<'a>(fields: &'a Fields, field: &'static str) -> Result<&'a str, Invalid> {
    match fields.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(invalid(field, "is empty")),
        None | Some(Value::Null) => Err(invalid(field, "is missing")),
        Some(_) => Err(invalid(field, "is not a string")),
    }
}

/// A string that may be absent or null (then empty).
pub fn optional<'a>(fields: &'a Fields, field: &'static str) -> &'a str {
    fields
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A whole number (also accepted as a float without fraction or a numeric string).
pub fn integer(fields: &Fields, field: &'static str) -> Result<i64, Invalid> {
    match fields.get(field) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| invalid(field, "is not a whole number")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| invalid(field, "is not a number")),
        None | Some(Value::Null) => Err(invalid(field, "is missing")),
        Some(_) => Err(invalid(field, "is not a number")),
    }
}

/// `retry_count` as the original read it: any integer representation, otherwise 0; negative
/// values count as 0 and values beyond `u32` saturate (so they dead-letter rather than loop).
pub fn retry_count(fields: &Fields) -> u32 {
    integer(fields, "retry_count")
        .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// An object key that stays inside its prefix (see [`substrate::keys::check_key`]).
pub fn safe_key(field: &'static str, key: &str) -> Result<(), Invalid> {
    substrate::keys::check_key(key).map_err(|problem| invalid(field, problem))
}

/// A single key segment such as a user id or file name (see [`substrate::keys::check_segment`]).
pub fn safe_segment(field: &'static str, segment: &str) -> Result<(), Invalid> {
    substrate::keys::check_segment(segment).map_err(|problem| invalid(field, problem))
}

/// A whole number for an Avro `int` field: saturates instead of wrapping.
fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// `internal.media.delete.retry` as the retry loop needs it: every pass-through field usable
/// (or neither the next retry nor the dead letter could be encoded, and the file would be lost
/// silently, as in the original), the key safe. `failed_at` is kept as it came (it may be
/// empty or unparsable: the loop then times the retry from the record instead).
pub fn delete_retry(f: &Fields) -> Result<DeleteRetry, Invalid> {
    let file_path = required(f, "file_path")?;
    safe_key("file_path", file_path)?;
    Ok(DeleteRetry {
        user_id: required(f, "user_id")?.to_owned(),
        file_path: file_path.to_owned(),
        file_name: required(f, "file_name")?.to_owned(),
        media_type: required(f, "media_type")?.to_owned(),
        file_size: integer(f, "file_size")?,
        request_id: required(f, "request_id")?.to_owned(),
        retry_count: int(retry_count(f)),
        failed_at: optional(f, "failed_at").to_owned(),
    })
}

/// `internal.media.upload.retry` as the move needs it: everything `upload.received` carries
/// (the move saga writes every column as nullable, and a null there would make the re-produce
/// unencodable), both keys safe and the permanent one the same key under `files/`.
pub fn upload_retry(f: &Fields) -> Result<UploadRetry, Invalid> {
    let file_path = required(f, "file_path")?;
    let permanent_path = required(f, "permanent_path")?;
    safe_key("file_path", file_path)?;
    safe_key("permanent_path", permanent_path)?;
    let expected = file_path
        .strip_prefix("uploads/")
        .map(|rest| format!("files/{rest}"));
    if expected.as_deref() != Some(permanent_path) {
        return Err(invalid(
            "permanent_path",
            "is not the upload's key under files/",
        ));
    }
    Ok(UploadRetry {
        user_id: required(f, "user_id")?.to_owned(),
        email: optional(f, "email").to_owned(),
        file_path: file_path.to_owned(),
        permanent_path: permanent_path.to_owned(),
        file_name: required(f, "file_name")?.to_owned(),
        file_size: integer(f, "file_size")?,
        media_type: required(f, "media_type")?.to_owned(),
        upload_time: required(f, "upload_time")?.to_owned(),
        retry_count: int(retry_count(f)),
        retry_time: optional(f, "retry_time").to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn required_strings_must_be_present_non_empty_strings() {
        let f = fields(json!({"a": "x", "b": "", "c": 5, "d": null, "e": 1.5, "g": true}));
        assert_eq!(required(&f, "a"), Ok("x"));
        for field in ["b", "c", "d", "e", "g", "missing"] {
            assert!(required(&f, field).is_err(), "{field}");
        }
    }

    #[test]
    fn retry_counts_accept_every_integer_representation() {
        let cases = [
            (json!({"retry_count": 0}), 0),
            (json!({"retry_count": 2}), 2),
            (json!({"retry_count": 2.0}), 2),
            (json!({"retry_count": "1"}), 1),
            (json!({"retry_count": 3_000_000_000i64}), 3_000_000_000),
            (json!({"retry_count": 5_000_000_000i64}), u32::MAX),
            (json!({"retry_count": -4}), 0),
            (json!({"retry_count": "x"}), 0),
            (json!({"retry_count": null}), 0),
            (json!({}), 0),
        ];
        for (input, expected) in cases {
            assert_eq!(retry_count(&fields(input.clone())), expected, "{input}");
        }
    }
}
