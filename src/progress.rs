//! Progress on long work: a bar on stderr when it is a terminal, shown only once the
//! work has taken longer than a delay (so quick runs print nothing), never with
//! `--log-format json` or when stderr is redirected.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) struct Progress {
    bar: ProgressBar,
    started: Instant,
    delay: Duration,
    shown: bool,
    terminal: bool,
    files: u64,
    total_files: u64,
}

impl Progress {
    /// A bar over `total_bytes`, counting files too; appears after `delay`.
    pub(crate) fn bytes(
        what: &'static str,
        total_files: u64,
        total_bytes: u64,
        delay: Duration,
    ) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template(&format!(
            "{what} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Progress {
            bar,
            started: Instant::now(),
            delay,
            shown: false,
            terminal: std::io::stderr().is_terminal(),
            files: 0,
            total_files,
        }
    }

    /// `files` more files of `bytes` in all to do: for work whose size is learnt as it goes.
    pub(crate) fn grow(&mut self, files: u64, bytes: u64) {
        self.total_files += files;
        self.bar.inc_length(bytes);
    }

    /// One more file of `bytes` done.
    pub(crate) fn file(&mut self, bytes: u64) {
        self.files += 1;
        self.bar.inc(bytes);
        if !self.shown && self.terminal && self.started.elapsed() >= self.delay {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        if self.shown {
            self.bar
                .set_message(format!("{}/{} files", self.files, self.total_files));
        }
    }

    /// `bytes` more done, of work that is not counted in files.
    pub(crate) fn advance(&mut self, bytes: u64) {
        self.bar.inc(bytes);
        if !self.shown && self.terminal && self.started.elapsed() >= self.delay {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
