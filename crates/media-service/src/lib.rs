//! media-service: presigns uploads and downloads, runs the move and delete sagas, receives object-store webhooks.

pub mod configuration;
pub mod startup;
