//! Timestamps in the platform's wire format.

use chrono::{SecondsFormat, Utc};

/// Now as RFC 3339 UTC at whole-second precision with a `Z` suffix (`2026-02-25T10:00:00Z`),
/// the format every service writes into events, as the Go services did.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_whole_seconds_with_z_suffix() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z'), "{now}");
        assert!(chrono::DateTime::parse_from_rfc3339(&now).is_ok(), "{now}");
    }
}
