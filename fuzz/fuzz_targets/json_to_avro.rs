//! Any JSON document against any contract: refused with a field error, or converted to a value
//! that encodes and decodes unchanged. The first byte picks the contract.
#![no_main]

use libfuzzer_sys::fuzz_target;
use substrate::avro::properties::{cached_contracts, json_round_trip};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(text) else {
        return;
    };
    let contracts = cached_contracts();
    let contract = &contracts[usize::from(pick) % contracts.len()];
    json_round_trip(&contract.schema, &document);
});
