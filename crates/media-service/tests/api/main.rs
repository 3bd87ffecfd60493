//! The media-service built as in production (`Application::build`) on a free port.

mod health;
