//! Object-key safety rules, shared by every service that builds or accepts object keys.
//!
//! Keys are built from user input (`uploads/<user>/<id>/<file name>`) and referred to by users
//! (`files/…`), so both the pieces and the whole must be unable to escape their prefix or smuggle
//! control characters into logs, headers or signatures. Each check returns the broken rule, for
//! the caller to attach to its field name.

/// Longest single segment (user id, file name), in bytes.
pub const MAX_SEGMENT_BYTES: usize = 255;
/// Longest key, in bytes (S3's limit is 1024).
pub const MAX_KEY_BYTES: usize = 1024;

/// One key segment: at most 255 bytes, no `/` or `\`, not `.`/`..`, no control characters.
pub fn check_segment(segment: &str) -> Result<(), &'static str> {
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err("is longer than 255 bytes");
    }
    if segment.contains(['/', '\\']) || segment == "." || segment == ".." {
        return Err("must be a plain name without path separators");
    }
    if segment.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

/// A whole key: at most 1024 bytes, relative, no empty, `.` or `..` segments, no control
/// characters.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.len() > MAX_KEY_BYTES {
        return Err("is longer than 1024 bytes");
    }
    if key.starts_with('/')
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("must be a relative object key without empty, . or .. segments");
    }
    if key.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_plain_names() {
        for ok in [
            "photo.jpg",
            "my vacation video.mp4",
            "my file (1).mp4",
            "ü.png",
            &"a".repeat(255),
        ] {
            assert_eq!(check_segment(ok), Ok(()), "{ok}");
        }
        for bad in [
            "a/b",
            "a\\b",
            ".",
            "..",
            "a\u{7}b",
            "x\ny",
            &"a".repeat(256),
        ] {
            assert!(check_segment(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_cannot_escape_their_prefix() {
        for ok in ["uploads/u/1/a b (1).jpg", "files/u/1/ü.png"] {
            assert_eq!(check_key(ok), Ok(()), "{ok}");
        }
        let long = "a/".repeat(600);
        for bad in [
            "/uploads/u",
            "uploads/../files/x",
            "uploads//x",
            "uploads/./x",
            "uploads/x\ny",
            "",
            long.as_str(),
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
