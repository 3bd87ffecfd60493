//! api-gateway: authenticated HTTP ingress that turns requests into Avro events on the broker.

pub mod configuration;
pub mod startup;
