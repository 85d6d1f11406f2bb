//! `--watch`: checks probed on their intervals, states changed only after a run of consistent
//! results (hysteresis, so a restart loop does not flap), recovery commands on CRITICAL within a
//! budget and with exponential backoff, escalation steps while a check stays CRITICAL. Everything
//! that happens is an [`Event`] handed to the caller, which prints it.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::action::{self, Outcome};
use crate::config::{Action, Check, Config, Recovery};
use crate::once::{blocked, blocker, done, CheckResult};
use crate::probe::probe;
use crate::state::State;

#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// Stop after this many rounds (a round probes every check that is due).
    pub iterations: Option<u64>,
    /// Stop after this long.
    pub max_runtime: Option<Duration>,
}

/// Something that happened while watching. `time_ms` is Unix time in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The reported state changed (`from` is `None` for a check's first probe).
    State {
        time_ms: u64,
        check: String,
        from: Option<State>,
        to: State,
        message: String,
        elapsed: Duration,
    },
    /// A recovery command ran.
    Recovery {
        time_ms: u64,
        check: String,
        /// 1 for the first run of this critical episode.
        attempt: u32,
        runs_in_window: u32,
        budget: u32,
        outcome: Outcome,
        /// The earliest next run if the check is still CRITICAL then.
        next_in: Duration,
    },
    /// A recovery was due but the budget for the window is spent (once per exhaustion).
    RecoverySkipped {
        time_ms: u64,
        check: String,
        runs_in_window: u32,
        budget: u32,
        retry_in: Duration,
    },
    /// An escalation step fired (once per step per critical episode).
    Escalation {
        time_ms: u64,
        check: String,
        /// 1-based, in file order.
        step: usize,
        after: Duration,
        webhook: bool,
        outcome: Outcome,
    },
}

impl Event {
    /// The JSON Lines form (docs/HEALTH.md); webhooks receive the same objects.
    pub fn to_json(&self) -> Value {
        match self {
            Event::State {
                time_ms,
                check,
                from,
                to,
                message,
                elapsed,
            } => json!({
                "type": "state",
                "time_ms": time_ms,
                "check": check,
                "from": from.map(State::as_str),
                "to": to.as_str(),
                "code": to.code(),
                "message": message,
                "elapsed_ms": ms(*elapsed),
            }),
            Event::Recovery {
                time_ms,
                check,
                attempt,
                runs_in_window,
                budget,
                outcome,
                next_in,
            } => json!({
                "type": "recovery",
                "time_ms": time_ms,
                "check": check,
                "attempt": attempt,
                "runs_in_window": runs_in_window,
                "budget": budget,
                "ok": outcome.ok,
                "exit_code": outcome.code,
                "message": outcome.message,
                "next_in_ms": ms(*next_in),
            }),
            Event::RecoverySkipped {
                time_ms,
                check,
                runs_in_window,
                budget,
                retry_in,
            } => json!({
                "type": "recovery_skipped",
                "time_ms": time_ms,
                "check": check,
                "reason": "budget",
                "runs_in_window": runs_in_window,
                "budget": budget,
                "retry_in_ms": ms(*retry_in),
            }),
            Event::Escalation {
                time_ms,
                check,
                step,
                after,
                webhook,
                outcome,
            } => json!({
                "type": "escalation",
                "time_ms": time_ms,
                "check": check,
                "step": step,
                "after_ms": ms(*after),
                "action": if *webhook { "webhook" } else { "command" },
                "ok": outcome.ok,
                "code": outcome.code,
                "message": outcome.message,
            }),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(ms)
        .unwrap_or(0)
}

/// How a watch ended.
#[derive(Debug, Clone)]
pub struct WatchSummary {
    pub rounds: u64,
    /// Each check's reported state at the end, in [`Config::order`]; `None` if never probed.
    pub states: Vec<(usize, Option<State>)>,
}

impl WatchSummary {
    /// The worst reported state; a check never probed counts as UNKNOWN.
    pub fn overall(&self) -> State {
        self.states
            .iter()
            .map(|(_, s)| s.unwrap_or(State::Unknown))
            .max()
            .unwrap_or(State::Ok)
    }
}

/// The hysteresis of one check: the state it reports and the run of results that may change it.
#[derive(Debug, Clone, Default)]
pub struct Hysteresis {
    pub reported: Option<State>,
    pending: Option<(State, u32)>,
}

impl Hysteresis {
    /// Feeds one probe result; returns `(from, to)` when the reported state changes. A change to
    /// OK needs `recover` consecutive OK results, a change to any other state `fail` consecutive
    /// non-OK ones (the last one's state is reported). The first result is reported as it is.
    pub fn observe(
        &mut self,
        raw: State,
        fail: u32,
        recover: u32,
    ) -> Option<(Option<State>, State)> {
        let Some(cur) = self.reported else {
            self.reported = Some(raw);
            return Some((None, raw));
        };
        if cur == raw {
            self.pending = None;
            return None;
        }
        let count = match self.pending {
            Some((p, n)) if (p == State::Ok) == (raw == State::Ok) => n.saturating_add(1),
            _ => 1,
        };
        let need = if raw == State::Ok { recover } else { fail };
        if count >= need {
            self.pending = None;
            self.reported = Some(raw);
            Some((Some(cur), raw))
        } else {
            self.pending = Some((raw, count));
            None
        }
    }
}

struct Tracker {
    hyst: Hysteresis,
    next_due: Instant,
    critical_since: Option<Instant>,
    fired: Vec<bool>,
    attempt: u32,
    rec_next: Option<Instant>,
    rec_runs: VecDeque<Instant>,
    /// A recovery command of this check is running.
    recovering: bool,
    probed_since_recovery: bool,
    skip_noted: bool,
    message: String,
}

/// The delay before recovery attempt `n + 1`: full jitter, uniform in 0..=min(max, initial * 2^n)
/// (many watchers restarting one service must not do it in step).
pub fn backoff(r: &Recovery, n: u32) -> Duration {
    let cap = 1u64
        .checked_shl(n.min(63))
        .and_then(|f| ms(r.backoff_initial).checked_mul(f))
        .unwrap_or(u64::MAX)
        .min(ms(r.backoff_max));
    Duration::from_millis(fastrand::u64(0..=cap))
}

/// A finished recovery or escalation action, sent back by its task.
enum Done {
    Recovery {
        check: usize,
        attempt: u32,
        runs_in_window: u32,
        outcome: Outcome,
    },
    Escalation {
        check: usize,
        step: usize,
        webhook: bool,
        outcome: Outcome,
    },
}

type Sender = mpsc::UnboundedSender<Done>;

/// Watches until `opts` or `stop` says to end, or `emit` returns false (its reader went away).
/// Recovery and escalation actions run beside the probes (a restart that takes a minute does not
/// pause the other checks); their events are emitted when they end, and a watch that ends waits
/// for running actions (each bounded by its timeout) so none goes unreported.
pub async fn watch<S, F>(cfg: &Config, opts: &WatchOptions, stop: S, mut emit: F) -> WatchSummary
where
    S: Future<Output = ()>,
    F: FnMut(&Event) -> bool,
{
    tokio::pin!(stop);
    let start = Instant::now();
    let deadline = opts.max_runtime.map(|d| start + d);
    let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
    let mut running = 0usize;
    let mut t: Vec<Tracker> = cfg
        .checks
        .iter()
        .map(|_| Tracker {
            hyst: Hysteresis::default(),
            next_due: start,
            critical_since: None,
            fired: vec![false; cfg.escalation.len()],
            attempt: 0,
            rec_next: None,
            rec_runs: VecDeque::new(),
            recovering: false,
            probed_since_recovery: false,
            skip_noted: false,
            message: String::new(),
        })
        .collect();
    let levels = cfg.depth.iter().copied().max().unwrap_or(0);
    let mut rounds = 0u64;
    let mut open = true;
    'run: while open {
        while let Ok(d) = rx.try_recv() {
            running = running.saturating_sub(1);
            open &= emit(&finished(cfg, &mut t, d));
        }
        if opts.iterations.is_some_and(|n| rounds >= n) {
            break;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if t.iter().any(|x| x.next_due <= now) {
            rounds += 1;
            for level in 0..=levels {
                let mut results: Vec<CheckResult> = Vec::new();
                let mut runs = Vec::new();
                for &i in &cfg.order {
                    let (Some(check), Some(tr)) = (cfg.checks.get(i), t.get(i)) else {
                        continue;
                    };
                    if cfg.depth.get(i) != Some(&level) || tr.next_due > now {
                        continue;
                    }
                    match blocker(cfg, i, |d| t.get(d).and_then(|x| x.hyst.reported)) {
                        Some(d) => results.push(blocked(cfg, i, d)),
                        None => runs.push(async move { done(i, probe(check).await) }),
                    }
                }
                results.extend(join_all(runs).await);
                for r in results {
                    let (Some(check), Some(tr)) = (cfg.checks.get(r.index), t.get_mut(r.index))
                    else {
                        continue;
                    };
                    tr.next_due = now + check.interval;
                    tr.probed_since_recovery = true;
                    tr.message.clone_from(&r.message);
                    let Some((from, to)) =
                        tr.hyst
                            .observe(r.state, check.fail_threshold, check.recover_threshold)
                    else {
                        continue;
                    };
                    if to == State::Critical {
                        tr.critical_since = Some(Instant::now());
                        tr.fired.iter_mut().for_each(|f| *f = false);
                        tr.attempt = 0;
                        tr.rec_next = Some(Instant::now());
                        tr.skip_noted = false;
                    } else {
                        tr.critical_since = None;
                        tr.rec_next = None;
                    }
                    open &= emit(&Event::State {
                        time_ms: now_ms(),
                        check: check.name.clone(),
                        from,
                        to,
                        message: r.message,
                        elapsed: r.elapsed,
                    });
                }
            }
        }
        for &i in &cfg.order {
            let (Some(check), Some(tr)) = (cfg.checks.get(i), t.get_mut(i)) else {
                continue;
            };
            let (events, started) = act(cfg, i, check, tr, &tx);
            running += started;
            for e in events {
                open &= emit(&e);
            }
        }
        if !open || opts.iterations.is_some_and(|n| rounds >= n) {
            continue;
        }
        let mut wake = t.iter().flat_map(|x| wake_times(cfg, x)).min();
        if let Some(d) = deadline {
            wake = Some(wake.map_or(d, |w| w.min(d)));
        }
        let Some(wake) = wake else {
            break;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            Some(d) = rx.recv() => {
                running = running.saturating_sub(1);
                open &= emit(&finished(cfg, &mut t, d));
            }
            _ = &mut stop => break 'run,
        }
    }
    while running > 0 {
        let Some(d) = rx.recv().await else {
            break;
        };
        running -= 1;
        if open {
            open &= emit(&finished(cfg, &mut t, d));
        }
    }
    WatchSummary {
        rounds,
        states: cfg
            .order
            .iter()
            .map(|&i| (i, t.get(i).and_then(|x| x.hyst.reported)))
            .collect(),
    }
}

fn wake_times(cfg: &Config, x: &Tracker) -> Vec<Instant> {
    let mut w = vec![x.next_due];
    if let Some(since) = x.critical_since {
        if let Some(r) = x
            .rec_next
            .filter(|_| x.probed_since_recovery && !x.recovering)
        {
            w.push(r);
        }
        for (step, fired) in cfg.escalation.iter().zip(&x.fired) {
            if !fired {
                w.push(since + step.after);
            }
        }
    }
    w
}

/// The event for a finished action; a finished recovery schedules the next one (if the check is
/// still CRITICAL after a fresh probe).
fn finished(cfg: &Config, t: &mut [Tracker], d: Done) -> Event {
    match d {
        Done::Recovery {
            check,
            attempt,
            runs_in_window,
            outcome,
        } => {
            let c = cfg.checks.get(check);
            let budget = c.and_then(|c| c.recovery.as_ref()).map_or(0, |r| r.budget);
            let next_in = c
                .and_then(|c| c.recovery.as_ref())
                .map_or(Duration::ZERO, |r| backoff(r, attempt.saturating_sub(1)));
            if let Some(tr) = t.get_mut(check) {
                tr.recovering = false;
                tr.probed_since_recovery = false;
                tr.rec_next = tr.critical_since.map(|_| Instant::now() + next_in);
            }
            Event::Recovery {
                time_ms: now_ms(),
                check: c.map(|c| c.name.clone()).unwrap_or_default(),
                attempt,
                runs_in_window,
                budget,
                outcome,
                next_in,
            }
        }
        Done::Escalation {
            check,
            step,
            webhook,
            outcome,
        } => Event::Escalation {
            time_ms: now_ms(),
            check: cfg
                .checks
                .get(check)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            step: step + 1,
            after: cfg.escalation.get(step).map_or(Duration::ZERO, |s| s.after),
            webhook,
            outcome,
        },
    }
}

/// Starts the recovery and escalation actions due for a CRITICAL check; returns the events known
/// now (a spent budget) and how many actions were started.
fn act(
    cfg: &Config,
    i: usize,
    check: &Check,
    tr: &mut Tracker,
    tx: &Sender,
) -> (Vec<Event>, usize) {
    let mut events = Vec::new();
    let mut started = 0;
    let Some(since) = tr.critical_since else {
        return (events, started);
    };
    let env = vec![
        ("DRKIT_CHECK", check.name.clone()),
        ("DRKIT_STATE", "CRITICAL".to_string()),
        ("DRKIT_MESSAGE", tr.message.clone()),
    ];
    if let (Some(rec), Some(next)) = (&check.recovery, tr.rec_next) {
        let now = Instant::now();
        if now >= next && tr.probed_since_recovery && !tr.recovering {
            while tr
                .rec_runs
                .front()
                .is_some_and(|&r| now.duration_since(r) >= rec.window)
            {
                tr.rec_runs.pop_front();
            }
            let used = u32::try_from(tr.rec_runs.len()).unwrap_or(u32::MAX);
            if used >= rec.budget {
                let free_at = tr.rec_runs.front().map_or(now, |&r| r + rec.window);
                tr.rec_next = Some(free_at);
                if !tr.skip_noted {
                    tr.skip_noted = true;
                    events.push(Event::RecoverySkipped {
                        time_ms: now_ms(),
                        check: check.name.clone(),
                        runs_in_window: used,
                        budget: rec.budget,
                        retry_in: free_at.saturating_duration_since(now),
                    });
                }
            } else {
                tr.rec_runs.push_back(now);
                tr.attempt = tr.attempt.saturating_add(1);
                tr.recovering = true;
                tr.skip_noted = false;
                let (argv, timeout, env, tx) =
                    (rec.command.clone(), rec.timeout, env.clone(), tx.clone());
                let (attempt, runs_in_window) = (tr.attempt, used.saturating_add(1));
                tokio::spawn(async move {
                    let outcome = action::run_command(&argv, &env, timeout).await;
                    let _ = tx.send(Done::Recovery {
                        check: i,
                        attempt,
                        runs_in_window,
                        outcome,
                    });
                });
                started += 1;
            }
        }
    }
    for (k, step) in cfg.escalation.iter().enumerate() {
        let due = since.elapsed() >= step.after;
        let Some(fired) = tr.fired.get_mut(k) else {
            continue;
        };
        if *fired || !due {
            continue;
        }
        *fired = true;
        let tx = tx.clone();
        let timeout = step.timeout;
        match &step.action {
            Action::Command(argv) => {
                let (argv, env) = (argv.clone(), env.clone());
                tokio::spawn(async move {
                    let outcome = action::run_command(&argv, &env, timeout).await;
                    let _ = tx.send(Done::Escalation {
                        check: i,
                        step: k,
                        webhook: false,
                        outcome,
                    });
                });
            }
            Action::Webhook(url) => {
                let body = json!({
                    "type": "escalation",
                    "time_ms": now_ms(),
                    "check": check.name,
                    "step": k + 1,
                    "after_ms": ms(step.after),
                    "state": "CRITICAL",
                    "message": tr.message,
                    "critical_for_ms": ms(since.elapsed()),
                })
                .to_string();
                let url = url.clone();
                tokio::spawn(async move {
                    let outcome = action::post_json(&url, body.as_bytes(), timeout).await;
                    let _ = tx.send(Done::Escalation {
                        check: i,
                        step: k,
                        webhook: true,
                        outcome,
                    });
                });
            }
        }
        started += 1;
    }
    (events, started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternating_results_never_flap_with_thresholds_of_two() {
        let mut h = Hysteresis::default();
        assert_eq!(h.observe(State::Ok, 2, 2), Some((None, State::Ok)));
        for _ in 0..10 {
            assert_eq!(h.observe(State::Critical, 2, 2), None);
            assert_eq!(h.observe(State::Ok, 2, 2), None);
        }
        assert_eq!(h.observe(State::Critical, 2, 2), None);
        assert_eq!(
            h.observe(State::Warning, 2, 2),
            Some((Some(State::Ok), State::Warning))
        );
        assert_eq!(h.observe(State::Ok, 2, 3), None);
        assert_eq!(h.observe(State::Ok, 2, 3), None);
        assert_eq!(
            h.observe(State::Ok, 2, 3),
            Some((Some(State::Warning), State::Ok))
        );
    }

    #[test]
    fn thresholds_of_one_follow_every_result() {
        let mut h = Hysteresis::default();
        h.observe(State::Ok, 1, 1);
        assert!(h.observe(State::Critical, 1, 1).is_some());
        assert!(h.observe(State::Ok, 1, 1).is_some());
    }

    #[test]
    fn backoff_stays_under_its_doubling_cap() {
        let r = Recovery {
            command: vec!["true".into()],
            budget: 1,
            window: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            timeout: Duration::from_secs(1),
        };
        for _ in 0..200 {
            assert!(backoff(&r, 0) <= Duration::from_millis(100));
            assert!(backoff(&r, 2) <= Duration::from_millis(400));
            assert!(backoff(&r, 60) <= Duration::from_millis(1000));
            assert!(backoff(&r, u32::MAX) <= Duration::from_millis(1000));
        }
    }
}
