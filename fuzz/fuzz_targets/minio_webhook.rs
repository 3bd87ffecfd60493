//! Any bytes as an object-store notification body: parsed or refused, and upload events made
//! only for keys that cannot escape `uploads/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_service::properties::webhook_body_yields_only_safe_uploads;

fuzz_target!(|data: &[u8]| {
    webhook_body_yields_only_safe_uploads(data);
});
