//! Progress bars: on stderr, only when stderr is a terminal and the work is large enough to wait for.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Below this much data a bar would only flicker.
const MIN_BYTES: u64 = 256 << 20;

pub fn bytes_bar(total: u64, enabled: bool) -> ProgressBar {
    if !enabled || total < MIN_BYTES || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}
