//! The steps of a `video_clip` task, each a module with plain inputs and
//! outputs so it can be tested alone:
//!
//! - [`media`]: probe, 16 kHz audio, frame-exact clip cuts, thumbnails (ffmpeg);
//! - [`speech`]: which parts of the audio may hold speech (silence is skipped);
//! - [`transcribe`]: whisper.cpp speech to timed text;
//! - [`detect`]: sentences, selling-point scores, clip boundaries;
//! - [`subtitles`]: SRT and WebVTT cues for a clip from the word timings.
//!
//! `crate::jobs::video_clip` sequences them.

pub mod detect;
pub mod media;
pub mod speech;
pub mod subtitles;
pub mod transcribe;
