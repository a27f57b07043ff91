//! Progress bars for the benchmarks' long phases (fills, measurement cells, restarts). They
//! draw on stderr and, as indicatif does by default, not at all when stderr is not a
//! terminal: logs, pipes and CI get the plain progress lines that [`say`] prints instead. A
//! bar is cleared when dropped, on an error too.

use std::borrow::Cow;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};

/// Bytes written towards `total`, with the rate and the time left.
pub fn bytes(what: impl Into<Cow<'static, str>>, total: u64) -> ProgressBar {
    bar(
        total,
        "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        what,
    )
}

/// Steps of a phase (measurement cells, restarts, benchmark runs).
pub fn steps(what: impl Into<Cow<'static, str>>, total: u64) -> ProgressBar {
    bar(total, "{msg} [{bar:30}] {pos}/{len} {elapsed}", what)
}

/// A phase whose length is a duration or unknown: what it is and how long it has run.
pub fn phase(what: impl Into<Cow<'static, str>>) -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} {msg} {elapsed}")
        .expect("the phase template is valid");
    let bar = ProgressBar::new_spinner()
        .with_style(style)
        .with_message(what)
        .with_finish(ProgressFinish::AndClear);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn bar(len: u64, template: &str, what: impl Into<Cow<'static, str>>) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .expect("the bar templates are valid")
        .progress_chars("=> ");
    let bar = ProgressBar::new(len)
        .with_style(style)
        .with_message(what)
        .with_finish(ProgressFinish::AndClear);
    // Redrawn on a timer too, so the elapsed time and rate move while a step runs long.
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Prints a progress line above the bar; without a terminal the bar is hidden, and so is
/// its println, so the line goes to stderr.
pub fn say(bar: &ProgressBar, line: impl AsRef<str>) {
    if bar.is_hidden() {
        eprintln!("{}", line.as_ref());
    } else {
        bar.println(line);
    }
}
