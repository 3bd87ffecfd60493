//! The message-consumer built as in production (`Application::build`) against the real broker,
//! registry and Postgres. Each test owns its topics, consumer groups and database.

mod consume;
mod health;
