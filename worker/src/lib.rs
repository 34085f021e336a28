//! The worker's parts, as a library so the binary, the evaluation tool and
//! the tests share them. See `main.rs` for how they are wired together.

pub mod cancel;
pub mod deadline;
pub mod fetch;
pub mod finisher;
pub mod heartbeat;
pub mod held;
pub mod jobs;
pub mod pipeline;
pub mod progress;
