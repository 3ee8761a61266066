//! Progress display: a spinner for long single steps, a bar per tree level.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner with `message`, hidden when `quiet`.
pub fn spinner(message: &str, quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A bar counting to `total` with `message`, hidden when `quiet`.
pub fn counter_bar(total: u64, message: &str, quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} {elapsed} (eta {eta})")
            .expect("valid template"),
    );
    bar.set_message(message.to_string());
    bar
}

/// One bar per tree level.
pub struct LevelBars {
    _multi: MultiProgress,
    bars: Vec<ProgressBar>,
}

impl LevelBars {
    /// Bars for levels of the given sizes; level 0 is the leaves.
    pub fn new(level_sizes: &[usize], quiet: bool) -> Self {
        let multi = MultiProgress::with_draw_target(if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        let style = ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("valid template")
            .progress_chars("=> ");
        let bars = level_sizes
            .iter()
            .enumerate()
            .map(|(level, &size)| {
                let bar = multi.add(ProgressBar::new(size as u64));
                bar.set_style(style.clone());
                bar.set_prefix(match level {
                    0 => "leaves".to_string(),
                    l => format!("level {l}"),
                });
                bar
            })
            .collect();
        LevelBars {
            _multi: multi,
            bars,
        }
    }

    /// One more proof done at `level`.
    pub fn inc(&self, level: usize) {
        if let Some(bar) = self.bars.get(level) {
            bar.inc(1);
        }
    }

    /// Finish all bars.
    pub fn finish(&self) {
        for bar in &self.bars {
            bar.finish();
        }
    }
}
