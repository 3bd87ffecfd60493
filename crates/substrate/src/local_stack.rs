//! Addresses of the local development stack, read from the repository's `local-stack.env`.
//!
//! That file is the single definition shared by the stack scripts, the task runner, the Python
//! suites and this workspace; compiling it in keeps the services' defaults and the Rust tests in
//! step with whatever port the stack really uses. Production never relies on these values: its
//! configuration layers override every address.

/// The file's text, embedded at compile time.
const FILE: &str = include_str!("../../../local-stack.env");

/// The value of `key` in `local-stack.env`, or `""` when the file does not define it (a unit
/// test guarantees every key this module asks for is present).
fn value(key: &str) -> &'static str {
    FILE.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .find(|(name, _)| name.trim() == key)
        .map(|(_, value)| value.trim())
        .unwrap_or_default()
}

/// Bootstrap servers of the local broker.
pub fn kafka_brokers() -> &'static str {
    value("LOCAL_KAFKA_BROKERS")
}

/// Base URL of the local schema registry.
pub fn schema_registry_url() -> &'static str {
    value("LOCAL_SCHEMA_REGISTRY_URL")
}

/// `host:port` of the local S3 endpoint.
pub fn s3_endpoint() -> &'static str {
    value("LOCAL_S3_ENDPOINT")
}

/// URL of the local stack's database.
pub fn database_url() -> &'static str {
    value("LOCAL_DATABASE_URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_is_defined() {
        for (name, got) in [
            ("kafka_brokers", kafka_brokers()),
            ("schema_registry_url", schema_registry_url()),
            ("s3_endpoint", s3_endpoint()),
            ("database_url", database_url()),
        ] {
            assert!(!got.is_empty(), "{name} missing from local-stack.env");
            assert!(
                !got.contains(['"', '\'', '$']),
                "{name} must be a plain value: {got}"
            );
        }
        assert!(database_url().starts_with("postgresql://"));
    }

    #[test]
    fn comments_and_unknown_keys_yield_nothing() {
        assert_eq!(value("# LOCAL_DATABASE_URL"), "");
        assert_eq!(value("NOT_A_KEY"), "");
    }
}
