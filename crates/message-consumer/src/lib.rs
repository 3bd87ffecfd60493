//! message-consumer: writes user message events from the broker into `user_notifications`.

pub mod configuration;
pub mod startup;
