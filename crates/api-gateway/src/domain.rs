//! Input validation: request values become domain values or a 400 naming the field.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// MIME types accepted for uploads (same list for the legacy route and the upload intent).
pub const ALLOWED_MEDIA_TYPES: [&str; 9] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "video/mp4",
    "video/webm",
    "audio/mpeg",
    "audio/wav",
    "audio/ogg",
];

fn bad(field: &str, rule: &str) -> ApiError {
    ApiError::BadRequest(format!("field `{field}` {rule}"))
}

/// A required, non-empty string field.
pub fn required_string<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(bad(field, "must not be empty")),
        Some(_) => Err(bad(field, "must be a string")),
        None => Err(bad(field, "is required")),
    }
}

/// A file name that is safe as the last segment of an object key: no path separators, no `..`,
/// no control characters, at most 255 bytes.
pub fn file_name(body: &Map<String, Value>) -> Result<String, ApiError> {
    let name = required_string(body, "file_name")?;
    substrate::keys::check_segment(name).map_err(|rule| bad("file_name", rule))?;
    Ok(name.to_owned())
}

/// One of [`ALLOWED_MEDIA_TYPES`].
pub fn media_type(body: &Map<String, Value>) -> Result<String, ApiError> {
    let media_type = required_string(body, "media_type")?;
    if ALLOWED_MEDIA_TYPES.contains(&media_type) {
        Ok(media_type.to_owned())
    } else {
        Err(bad("media_type", "is not a supported media type"))
    }
}

/// A positive whole number of bytes that fits in a signed 64-bit integer.
pub fn file_size(body: &Map<String, Value>) -> Result<i64, ApiError> {
    match body.get("file_size") {
        None => Err(bad("file_size", "is required")),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(size) if size > 0 => Ok(size),
            Some(_) => Err(bad("file_size", "must be greater than 0")),
            None if n.is_u64() => Err(bad("file_size", "is too large")),
            None => Err(bad("file_size", "must be a whole number")),
        },
        Some(_) => Err(bad("file_size", "must be a number")),
    }
}

/// An object key the caller refers to: relative, no `..` segments, no control characters.
pub fn file_path(body: &Map<String, Value>) -> Result<String, ApiError> {
    let path = required_string(body, "file_path")?;
    substrate::keys::check_key(path).map_err(|rule| bad("file_path", rule))?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn file_names_are_sanitised() {
        let ok = [
            "photo.jpg",
            "my vacation video.mp4",
            "my file (1).mp4",
            &"a".repeat(254),
        ];
        for name in ok {
            assert_eq!(
                file_name(&body(json!({"file_name": name}))).ok().as_deref(),
                Some(name)
            );
        }
        let bad = [
            json!("../etc/passwd"),
            json!("a/b.jpg"),
            json!("a\\b"),
            json!(".."),
            json!("x\u{7}y"),
            json!("a".repeat(256)),
            json!(""),
            json!(5),
            json!(null),
        ];
        for name in bad {
            assert!(
                file_name(&body(json!({"file_name": name}))).is_err(),
                "{name}"
            );
        }
        assert!(file_name(&Map::new()).is_err());
    }

    #[test]
    fn file_sizes_must_be_positive_whole_numbers() {
        assert_eq!(
            file_size(&body(json!({"file_size": 2_048_000}))).ok(),
            Some(2_048_000)
        );
        assert_eq!(
            file_size(&body(json!({"file_size": i64::MAX}))).ok(),
            Some(i64::MAX)
        );
        for size in [
            json!(0),
            json!(-500),
            json!(1.5),
            json!("10"),
            json!(u64::MAX),
            json!(null),
        ] {
            assert!(
                file_size(&body(json!({"file_size": size}))).is_err(),
                "{size}"
            );
        }
    }

    #[test]
    fn media_types_follow_the_allowlist() {
        for ok in ALLOWED_MEDIA_TYPES {
            assert!(media_type(&body(json!({"media_type": ok}))).is_ok(), "{ok}");
        }
        for bad in [
            "application/pdf",
            "text/plain",
            "image/bmp",
            "video/avi",
            "audio/flac",
            "application/octet-stream",
            "IMAGE/JPEG",
        ] {
            assert!(
                media_type(&body(json!({"media_type": bad}))).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn file_paths_cannot_escape() {
        assert!(file_path(&body(json!({"file_path": "files/u/1/photo.jpg"}))).is_ok());
        for bad in ["/files/a", "files/../x", "./a", "files/a\nb", ""] {
            assert!(
                file_path(&body(json!({"file_path": bad}))).is_err(),
                "{bad}"
            );
        }
    }
}
