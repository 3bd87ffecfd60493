//! The api-gateway driven over HTTP, built exactly as in production (`Application::build`) on a
//! free port against the local stack.

mod health;
mod helpers;
