//! Prefill progress on the terminal: a bar that appears only once reading takes long enough
//! to matter and is cleared when it ends; on a pipe, a plain line to stderr every few seconds
//! instead (nothing would show otherwise).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Reading shorter than this shows nothing.
const SHOW_AFTER: Duration = Duration::from_secs(1);
/// How often a piped run prints a progress line.
const PIPE_EVERY: Duration = Duration::from_secs(10);

/// Progress of reading one prompt.
pub struct PrefillProgress {
    what: String,
    started: Instant,
    terminal: bool,
    bar: Option<ProgressBar>,
    last_line: Instant,
}

impl PrefillProgress {
    /// `what` names the phase, e.g. `reading (infllm)`.
    pub fn new(what: impl Into<String>) -> PrefillProgress {
        let now = Instant::now();
        PrefillProgress {
            what: what.into(),
            started: now,
            terminal: std::io::stderr().is_terminal(),
            bar: None,
            last_line: now,
        }
    }

    /// `done` of `total` prompt tokens read.
    pub fn update(&mut self, done: usize, total: usize) {
        let elapsed = self.started.elapsed();
        if elapsed < SHOW_AFTER || done >= total {
            if let Some(bar) = &self.bar {
                bar.set_position(done as u64);
            }
            return;
        }
        if self.terminal {
            let bar = self.bar.get_or_insert_with(|| {
                let bar =
                    ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {pos}/{len} tokens ({per_sec}, eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_message(self.what.clone());
                bar
            });
            bar.set_position(done as u64);
        } else if self.last_line.elapsed() >= PIPE_EVERY {
            self.last_line = Instant::now();
            let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
            let eta = (total - done) as f64 / rate.max(1e-9);
            eprintln!(
                "{}: {done}/{total} tokens ({rate:.0} tokens/s, eta {eta:.0} s)",
                self.what
            );
        }
    }

    /// Clears the bar (reading is over).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for PrefillProgress {
    fn drop(&mut self) {
        self.finish();
    }
}
