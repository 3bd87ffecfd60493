//! Any text as `routes.yaml`: refused, or parsed to one unambiguous table.
#![no_main]

use api_gateway::properties::routes_parse_is_deterministic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        routes_parse_is_deterministic(text);
    }
});
