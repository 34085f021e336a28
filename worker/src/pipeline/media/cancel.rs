//! The media steps use the worker's one cancellation type.

pub use crate::cancel::Cancel;
