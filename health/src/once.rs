//! `--once`: every check probed once, in dependency order. Checks of the same dependency depth
//! run together, so a run takes about one timeout per level, not one per check.

use std::time::Duration;

use futures_util::future::join_all;

use crate::config::Config;
use crate::probe::{probe, Probe};
use crate::state::State;

/// The verdict on one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Index into [`Config::checks`].
    pub index: usize,
    pub state: State,
    pub message: String,
    pub elapsed: Duration,
    /// The check was not probed: this dependency is CRITICAL or was not checked either.
    pub blocked_by: Option<usize>,
}

/// Probes every check once; results in [`Config::order`].
pub async fn run_once(cfg: &Config) -> Vec<CheckResult> {
    let mut results: Vec<Option<CheckResult>> = vec![None; cfg.checks.len()];
    let levels = cfg.depth.iter().copied().max().unwrap_or(0);
    for level in 0..=levels {
        let mut runs = Vec::new();
        for &i in &cfg.order {
            if cfg.depth.get(i) != Some(&level) {
                continue;
            }
            let Some(check) = cfg.checks.get(i) else {
                continue;
            };
            match blocker(cfg, i, |d| {
                results.get(d).and_then(|r| r.as_ref()).map(|r| r.state)
            }) {
                Some(d) => {
                    if let Some(slot) = results.get_mut(i) {
                        *slot = Some(blocked(cfg, i, d));
                    }
                }
                None => runs.push(async move { (i, probe(check).await) }),
            }
        }
        for (i, p) in join_all(runs).await {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(done(i, p));
            }
        }
    }
    cfg.order
        .iter()
        .filter_map(|&i| results.get(i).cloned().flatten())
        .collect()
}

/// The first dependency of check `i` that is CRITICAL or UNKNOWN (by `state_of`).
pub(crate) fn blocker(
    cfg: &Config,
    i: usize,
    state_of: impl Fn(usize) -> Option<State>,
) -> Option<usize> {
    cfg.checks.get(i).and_then(|c| {
        c.depends_on
            .iter()
            .copied()
            .find(|&d| matches!(state_of(d), Some(State::Critical | State::Unknown)))
    })
}

pub(crate) fn blocked(cfg: &Config, i: usize, dep: usize) -> CheckResult {
    let name = cfg.checks.get(dep).map(|c| c.name.as_str()).unwrap_or("?");
    CheckResult {
        index: i,
        state: State::Unknown,
        message: format!("not checked: depends on {name}"),
        elapsed: Duration::ZERO,
        blocked_by: Some(dep),
    }
}

pub(crate) fn done(i: usize, p: Probe) -> CheckResult {
    CheckResult {
        index: i,
        state: p.state,
        message: p.message,
        elapsed: p.elapsed,
        blocked_by: None,
    }
}

/// The overall verdict: the worst state (see [`State`] for the order); OK when there are no checks.
pub fn overall(results: &[CheckResult]) -> State {
    results.iter().map(|r| r.state).max().unwrap_or(State::Ok)
}
