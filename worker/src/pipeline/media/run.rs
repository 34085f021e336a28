//! Running ffmpeg (through ffmpeg-sidecar, with progress and cancellation) and
//! ffprobe (through the shared runner), plus temporary-path helpers.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::time::Duration;

use anyhow::Context;
use ffmpeg_sidecar::child::FfmpegChild;
use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};

use shared::probe::FfprobeFailed;

use super::{Cancel, MediaError};

/// How often a running ffmpeg is checked for cancellation.
const POLL: Duration = Duration::from_millis(25);
/// Log lines kept for error messages.
const LOG_TAIL: usize = 12;

/// Builder-free argument list helper: `args!["-i", path, "-c", "copy"]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        vec![$(std::ffi::OsString::from($a)),*]
    };
}
pub(crate) use args;

/// Kills the child if the future running it is dropped (caller aborted).
struct KillOnDrop(Option<FfmpegChild>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            if matches!(child.as_inner_mut().try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.as_inner_mut().wait();
            }
        }
    }
}

/// Runs `ffmpeg -y <args>`. Progress events call `on_time` with the output time
/// in seconds. With `capture_stdout`, returns everything ffmpeg wrote to stdout.
/// Returns `MediaError::Cancelled` (child killed) when `cancel` fires and
/// `MediaError::ToolFailed` on a non-zero exit. Success is judged by the exit
/// status only (ffmpeg-sidecar reports a harmless "No streams found" error for
/// file outputs).
pub(crate) async fn ffmpeg<F: FnMut(f64)>(
    args: Vec<OsString>,
    cancel: &Cancel,
    capture_stdout: bool,
    mut on_time: F,
) -> anyhow::Result<Vec<u8>> {
    crate::cancel::check(cancel)?;
    let mut cmd = FfmpegCommand::new();
    cmd.hide_banner().arg("-nostdin").arg("-y").args(&args);
    tracing::debug!(args = ?cmd.get_args().collect::<Vec<_>>(), "ffmpeg");
    let started = std::time::Instant::now();
    let child = cmd.spawn().context("cannot start ffmpeg (is it installed and on PATH?)")?;
    let mut guard = KillOnDrop(Some(child));
    let child = guard.0.as_mut().expect("child present");

    let stdout = child.take_stdout();
    let stdout_reader = if capture_stdout {
        let mut out = stdout.context("ffmpeg stdout missing")?;
        Some(tokio::task::spawn_blocking(move || {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut out, &mut buf).map(|_| buf)
        }))
    } else {
        drop(stdout);
        None
    };

    // ffmpeg-sidecar's iterator blocks; forward its events from a thread.
    let iter = child.iter().context("reading ffmpeg stderr")?;
    let (tx, rx) = mpsc::channel::<FfmpegEvent>();
    std::thread::spawn(move || {
        for ev in iter {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });

    let mut log_tail: Vec<String> = Vec::new();
    let mut events_done = false;
    let status = loop {
        if !events_done {
            loop {
                match rx.try_recv() {
                    Ok(ev) => handle_event(ev, &mut on_time, &mut log_tail),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        events_done = true;
                        break;
                    }
                }
            }
        }
        if cancel.is_cancelled() {
            let _ = child.kill();
            let _ = child.as_inner_mut().wait();
            guard.0 = None;
            return Err(MediaError::Cancelled.into());
        }
        if events_done {
            if let Some(status) = child.as_inner_mut().try_wait()? {
                break status;
            }
        }
        tokio::time::sleep(POLL).await;
    };
    guard.0 = None;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "ffmpeg finished");

    let stdout = match stdout_reader {
        Some(h) => h.await.context("stdout reader panicked")?.context("reading ffmpeg stdout")?,
        None => Vec::new(),
    };
    if !status.success() {
        return Err(MediaError::ToolFailed {
            tool: "ffmpeg",
            status: status.to_string(),
            log: log_tail.join(" | "),
        }
        .into());
    }
    Ok(stdout)
}

fn handle_event<F: FnMut(f64)>(ev: FfmpegEvent, on_time: &mut F, log_tail: &mut Vec<String>) {
    match ev {
        FfmpegEvent::Progress(p) => {
            if let Some(t) = parse_clock(&p.time) {
                on_time(t);
            }
        }
        FfmpegEvent::Log(level, msg) => {
            if matches!(level, LogLevel::Error | LogLevel::Fatal | LogLevel::Warning) {
                tracing::trace!(%msg, "ffmpeg log");
                if log_tail.len() == LOG_TAIL {
                    log_tail.remove(0);
                }
                log_tail.push(msg);
            }
        }
        _ => {}
    }
}

/// Parses ffmpeg's `HH:MM:SS.cc` (possibly negative) into seconds.
pub(crate) fn parse_clock(s: &str) -> Option<f64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut total = 0.0;
    for part in s.split(':') {
        total = total * 60.0 + part.trim().parse::<f64>().ok()?;
    }
    Some(if neg { -total } else { total })
}

/// Runs ffprobe through [`shared::probe::run_ffprobe`] (the workspace's one
/// runner) and returns its stdout; a failed run becomes
/// [`MediaError::ToolFailed`], which the job layer treats as a media problem.
pub(crate) async fn ffprobe<I, S>(args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    shared::probe::run_ffprobe(args).await.map_err(as_media_error)
}

/// [`FfprobeFailed`] as [`MediaError::ToolFailed`]; any other error unchanged.
pub(crate) fn as_media_error(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<FfprobeFailed>() {
        Ok(f) => MediaError::ToolFailed { tool: "ffprobe", status: f.status, log: f.log }.into(),
        Err(e) => e,
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique hidden path next to `dest` (same directory, so a rename is atomic)
/// that keeps `dest`'s extension, so ffmpeg picks the same muxer.
pub(crate) fn temp_sibling(dest: &Path, tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = dest.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = dest.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    let stem = name.strip_suffix(&ext).unwrap_or(&name).to_string();
    dest.with_file_name(format!(".{stem}.{tag}-{}-{n}{ext}", std::process::id()))
}

/// A path removed (file or directory tree) when dropped unless `keep` was called.
pub(crate) struct TempPath {
    path: PathBuf,
    keep: bool,
}

impl TempPath {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, keep: false }
    }
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    /// Disarms removal (after the file was renamed into place).
    pub(crate) fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.keep {
            if self.path.is_dir() {
                let _ = std::fs::remove_dir_all(&self.path);
            } else {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Formats seconds for ffmpeg with microsecond precision.
pub(crate) fn secs(t: f64) -> String {
    format!("{t:.6}")
}
