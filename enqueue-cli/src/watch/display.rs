//! What `watch` shows: progress bars on a terminal, JSON or text lines
//! otherwise, and the final report per task (see the parent module for when
//! a status is shown).

use super::*;

impl Watcher {
    /// A line on stderr that does not tear the bars.
    pub(super) fn note(&self, text: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(format!("enqueue: {text}"));
            }
            None => eprintln!("enqueue: {text}"),
        }
    }

    /// Shows the task as its current database row says (finishing it if final).
    pub(super) fn apply_db(&mut self, i: usize) {
        let Some(shown) = Shown::from_db(&self.tasks[i].db) else { return };
        if shown.status.is_final() {
            self.finish(i);
        } else {
            self.show(i, shown);
        }
    }

    /// Reports `shown` if it differs from what was last reported.
    pub(super) fn show(&mut self, i: usize, shown: Shown) {
        let task = &mut self.tasks[i];
        if task.shown.as_ref() == Some(&shown) {
            return;
        }
        let was = task.shown.as_ref().map(|s| s.status);
        if was != Some(shown.status) {
            task.started = match shown.status {
                TaskStatus::Processing => Some(started_instant(&task.db)),
                _ => None,
            };
        }
        match self.mode {
            Mode::Json => print_line(&json!({
                "task_id": task.db.task_id,
                "status": shown.status.name(),
                "progress": shown.progress,
                "current_step": shown.step,
            })),
            Mode::Text => eprintln!(
                "{} {} {}% {}",
                task.db.task_id,
                shown.status.name(),
                shown.progress,
                shown.step.as_deref().unwrap_or("")
            ),
            Mode::Bars => {}
        }
        task.shown = Some(shown);
        self.redraw(i);
    }

    /// The task's row is final: report it and stop following it.
    pub(super) fn finish(&mut self, i: usize) {
        let Some(shown) = Shown::from_db(&self.tasks[i].db) else { return };
        let took = self.tasks[i].started.map(|s| s.elapsed()).or_else(|| {
            self.tasks[i].db.actual_duration.map(|s| Duration::from_secs(s.max(0) as u64))
        });
        // Finished first: the bar gets its final message below, not a step.
        self.tasks[i].finished = true;
        self.show(i, shown.clone());
        let task = &self.tasks[i];
        match self.mode {
            Mode::Json => {
                let mut value = summary_json(&task.db);
                value["final"] = json!(true);
                print_line(&value);
            }
            Mode::Text => {}
            Mode::Bars => {
                if let Some(bar) = &task.bar {
                    let message = match shown.status {
                        TaskStatus::Completed => {
                            format!(
                                "completed{}",
                                took.map(|t| format!(" in {}", clock(t))).unwrap_or_default()
                            )
                        }
                        other => format!(
                            "{}: {}",
                            other.name(),
                            task.db.error_message.as_deref().unwrap_or("-")
                        ),
                    };
                    bar.set_message(message);
                    bar.set_position(shown.progress.clamp(0, 100) as u64);
                    if shown.status == TaskStatus::Completed {
                        bar.finish();
                    } else {
                        bar.abandon();
                    }
                }
            }
        }
    }

    /// Moves the elapsed and ETA clocks of running tasks' bars.
    pub(super) fn redraw_clocks(&self) {
        for i in 0..self.tasks.len() {
            if !self.tasks[i].finished {
                self.redraw(i);
            }
        }
    }

    pub(super) fn redraw(&self, i: usize) {
        let task = &self.tasks[i];
        let (Some(bar), Some(shown)) = (&task.bar, &task.shown) else { return };
        if task.finished {
            return;
        }
        let step = shown.step.as_deref().unwrap_or(shown.status.name());
        let message = match (shown.status, task.started) {
            (TaskStatus::Processing, Some(started)) => {
                let elapsed = started.elapsed();
                let eta = match shown.progress {
                    p @ 1..=99 => clock(elapsed.mul_f64(f64::from(100 - p) / f64::from(p))),
                    _ => "-".into(),
                };
                format!("{step}  {}  eta {eta}", clock(elapsed))
            }
            (TaskStatus::Pending, _) if task.db.retry_count > 0 => {
                format!("{step}  (retry {}/{})", task.db.retry_count, task.db.max_retries)
            }
            _ => step.to_string(),
        };
        bar.set_message(message);
        bar.set_position(shown.progress.clamp(0, 100) as u64);
    }

    /// Every task is final: exit 0 only if all completed; say why the others did not.
    pub(super) fn report(self) -> ExitCode {
        let mut all_ok = true;
        for task in &self.tasks {
            if task.db.status != TaskStatus::Completed.code() {
                all_ok = false;
                let status =
                    TaskStatus::from_code(task.db.status).map(|s| s.name()).unwrap_or("unknown");
                self.note(&format!(
                    "task {} {status}: {}",
                    task.db.task_id,
                    task.db.error_message.as_deref().unwrap_or("no reason recorded")
                ));
            }
        }
        if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }

    /// Ctrl-C or SIGTERM: stop watching; the tasks are not touched.
    pub(super) fn interrupted(self) -> ExitCode {
        let running = self.tasks.iter().filter(|t| !t.finished).count();
        for task in &self.tasks {
            if let Some(bar) = &task.bar {
                if !task.finished {
                    bar.abandon();
                }
            }
        }
        self.note(&format!(
            "stopped watching; {running} unfinished task(s) keep running (follow them again with enqueue watch or enqueue status)"
        ));
        ExitCode::from(1)
    }
}

/// When the current attempt started, on this machine's clock: the row's
/// `started_at` (database clock, UTC) if it is recent, else now.
pub(super) fn started_instant(row: &TaskSummary) -> Instant {
    let now = Instant::now();
    let since = row
        .started_at
        .filter(|_| row.status == TaskStatus::Processing.code())
        .and_then(|at| (chrono::Utc::now().naive_utc() - at).to_std().ok());
    since.and_then(|d| now.checked_sub(d)).unwrap_or(now)
}

/// The shortest tail of each id (at least 8 characters) that tells the
/// watched tasks apart. UUIDv7 ids start with their creation time, so the
/// tail is the part that differs.
pub(super) fn short_ids(ids: &[String]) -> Vec<String> {
    let tail = |id: &str, n: usize| -> String {
        let chars: Vec<char> = id.chars().collect();
        chars[chars.len().saturating_sub(n)..].iter().collect()
    };
    let longest = ids.iter().map(|id| id.chars().count()).max().unwrap_or(0);
    let mut n = 8.min(longest);
    loop {
        let shorts: Vec<String> = ids.iter().map(|id| tail(id, n)).collect();
        let unique: std::collections::HashSet<&String> = shorts.iter().collect();
        if unique.len() == ids.iter().collect::<std::collections::HashSet<_>>().len()
            || n >= longest
        {
            let width = shorts.iter().map(|s| s.chars().count()).max().unwrap_or(0);
            return shorts.into_iter().map(|s| format!("{s:>width$}")).collect();
        }
        n += 1;
    }
}

/// `1:05` or `1:02:03`.
pub(super) fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A task's database summary as JSON (the shape of `enqueue status --json`).
pub(super) fn summary_json(task: &TaskSummary) -> serde_json::Value {
    let mut value = serde_json::to_value(task).unwrap_or_default();
    value["status"] =
        json!(TaskStatus::from_code(task.status).map(|s| s.name()).unwrap_or("unknown"));
    value
}

/// One JSON line on stdout, flushed (a closed pipe is not an error here).
pub(super) fn print_line(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_use_the_distinct_tail() {
        let ids: Vec<String> = [
            "0190a1b2-0000-7000-8000-0000aaaaaaaa",
            "0190a1b2-0000-7000-8000-0001aaaaaaaa",
            "0190a1b2-0000-7000-8000-000000000123",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            short_ids(&ids),
            vec!["0000aaaaaaaa", "0001aaaaaaaa", "000000000123"]
                .into_iter()
                .map(|s| s[12 - 9..].to_string())
                .collect::<Vec<_>>()
        );
        let ids: Vec<String> = ["task-x12345678", "task-y00000001"].map(String::from).to_vec();
        assert_eq!(short_ids(&ids), vec!["12345678", "00000001"]);
        assert_eq!(short_ids(&["abc".to_string()]), vec!["abc"]);
        // The same id twice stays one short id.
        assert_eq!(
            short_ids(&["aaaaaaaaaa".to_string(), "aaaaaaaaaa".to_string()]),
            vec!["aaaaaaaa", "aaaaaaaa"]
        );
    }

    #[test]
    fn clock_formats() {
        assert_eq!(clock(Duration::from_secs(65)), "1:05");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }
}
