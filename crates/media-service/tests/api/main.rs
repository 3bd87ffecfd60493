//! The media-service: handlers and webhooks over fakes (`handlers`, `webhooks`), and the
//! production build against the real broker, registry, Postgres and object store (`health`,
//! `stack`).

mod fakes;
mod handlers;
mod health;
mod router;
mod stack;
mod webhooks;
