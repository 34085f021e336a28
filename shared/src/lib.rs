//! What the scheduler, the worker and the enqueue CLI share: the schema and
//! its models, all SQL (one module per table), the Redis side of the queue,
//! configuration, storage and media probing.
//!
//! Layering: `schema`/`models` know nothing; the table modules (`tasks`,
//! `users`, `videos`) use them through `db`; `queue` is Redis only. The
//! binaries combine them. No module here starts tasks of its own.

pub mod audit;
pub mod backoff;
pub mod cache;
pub mod config;
pub mod control;
pub mod db;
pub mod db_health;
pub mod detection;
pub mod downloads;
pub mod error;
pub mod history;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod models;
pub mod overview;
pub mod probe;
pub mod queue;
pub mod quotas;
pub mod redis_url;
pub mod references;
pub mod registration;
pub mod replica;
pub mod schema;
pub mod shutdown;
pub mod storage;
pub mod system_configs;
pub mod tasks;
pub mod templates;
pub mod tls;
pub mod tokens;
pub mod user_configs;
pub mod users;
pub mod videos;

pub use error::{bad_input_reason, exit_code, one_line, BadInput};
