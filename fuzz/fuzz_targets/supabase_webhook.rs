//! The bodies the database's auth triggers post to the gateway (`/webhooks/{login,signup,
//! signout}`): any JSON object, converted with the identity contracts the webhook routes use.
//! The first byte picks the contract.
#![no_main]

use libfuzzer_sys::fuzz_target;
use substrate::avro::properties::{cached_contracts, json_round_trip};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    // The gateway only takes a JSON object as a webhook body.
    let Ok(document) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
    else {
        return;
    };
    let identity: Vec<_> = cached_contracts()
        .iter()
        .filter(|contract| contract.topic.starts_with("public.identity."))
        .collect();
    let contract = identity[usize::from(pick) % identity.len()];
    json_round_trip(&contract.schema, &serde_json::Value::Object(document));
});
