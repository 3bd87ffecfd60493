//! The api-gateway: handler behaviour over fakes (`handlers`), and the production build
//! (`Application::build` on a free port) against the real local stack (`stack`, `health`).

mod fakes;
mod handlers;
mod health;
mod helpers;
mod ingress;
mod stack;
mod tokens;
mod trace_context;
