//! Realtime: `postgres_changes` over a Phoenix websocket, fed by logical decoding.

pub mod capture;
pub mod pgoutput;
pub mod socket;
