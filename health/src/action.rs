//! Running recovery and escalation actions: a command (no shell; argv as configured) or an HTTP
//! POST of the event as JSON. Commands get the check in their environment (`DRKIT_CHECK`,
//! `DRKIT_STATE`, `DRKIT_MESSAGE`); their output goes to /dev/null, because stdout is the JSON
//! Lines stream and a daemon started by a restart script would otherwise hold our pipes open.

use std::process::Stdio;
use std::time::Duration;

use crate::http::{request_within, Url};

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// The command's exit code, or the webhook's HTTP status.
    pub code: Option<i32>,
    pub message: String,
}

/// Runs `argv` (killed after `timeout`); `env` is added to the environment.
pub async fn run_command(argv: &[String], env: &[(&str, String)], timeout: Duration) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return Outcome {
            ok: false,
            code: None,
            message: "empty command".into(),
        };
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                ok: false,
                code: None,
                message: format!("cannot run {program}: {e}"),
            }
        }
    };
    let mut child = child;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => Outcome {
            ok: status.success(),
            code: status.code(),
            message: match status.code() {
                Some(c) => format!("{program} exited with {c}"),
                None => format!("{program} ended by a signal"),
            },
        },
        Ok(Err(e)) => Outcome {
            ok: false,
            code: None,
            message: format!("{program}: {e}"),
        },
        Err(_) => {
            let _ = child.kill().await;
            Outcome {
                ok: false,
                code: None,
                message: format!("{program} killed after {} ms", timeout.as_millis()),
            }
        }
    }
}

/// POSTs `body` (JSON) to `url`; any 2xx status is success.
pub async fn post_json(url: &Url, body: &[u8], timeout: Duration) -> Outcome {
    match request_within(url, "POST", Some(("application/json", body)), timeout).await {
        Ok(r) => Outcome {
            ok: (200..300).contains(&r.status),
            code: Some(i32::from(r.status)),
            message: format!("webhook answered {}", r.status),
        },
        Err(m) => Outcome {
            ok: false,
            code: None,
            message: format!("webhook: {m}"),
        },
    }
}
