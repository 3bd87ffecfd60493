//! Any bytes as a bearer token: never accepted (nobody signed them), never a panic.
#![no_main]

use std::sync::OnceLock;

use api_gateway::auth::JwtVerifier;
use api_gateway::properties::{unsigned_token_is_refused, verifier};
use libfuzzer_sys::fuzz_target;

static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    unsigned_token_is_refused(VERIFIER.get_or_init(verifier), token);
});
