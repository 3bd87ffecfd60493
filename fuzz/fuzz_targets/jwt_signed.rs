//! Any header and claims bytes, signed with the gateway's secret: accepted only when the
//! algorithm and every claim hold, and then as exactly the token's subject. A 0xFF byte
//! separates header from claims.
#![no_main]

use std::sync::OnceLock;

use api_gateway::auth::JwtVerifier;
use api_gateway::properties::{signed_token_verdict_is_sound, verifier};
use libfuzzer_sys::fuzz_target;

static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0xFF).unwrap_or(data.len());
    let (header, claims) = data.split_at(split);
    let claims = claims.get(1..).unwrap_or_default();
    signed_token_verdict_is_sound(VERIFIER.get_or_init(verifier), header, claims);
});
