//! The checks file (TOML), validated whole before any probe: a typo must not become a silent
//! "OK". Raw serde structs are turned into [`Config`], whose targets parse, whose durations are
//! durations and whose dependencies form a graph without cycles, in a topological order.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use replay::kafka::Settings;
use serde::Deserialize;

use crate::duration;
use crate::http::Url;

/// Why a configuration was refused. `drkit health` exits 3 (UNKNOWN) on any of these: the plugin
/// could not check anything, which is Nagios' meaning of UNKNOWN.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Syntax(String),
    #[error("no [[check]] entries")]
    Empty,
    #[error("check {name:?} is defined twice")]
    Duplicate { name: String },
    #[error("check {check:?}: depends_on {dependency:?}, which is not a check in this file")]
    UnknownDependency { check: String, dependency: String },
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("check {check:?}: {field}: {message}")]
    Invalid {
        check: String,
        field: &'static str,
        message: String,
    },
    #[error("escalation step {step}: {message}")]
    Escalation { step: usize, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    check: Vec<RawCheck>,
    #[serde(default)]
    escalation: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: String,
    kind: String,
    #[serde(alias = "url", alias = "dsn", alias = "address", alias = "bootstrap")]
    target: String,
    timeout: Option<String>,
    warn_after: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    expect_status: Option<u16>,
    body_contains: Option<String>,
    body_regex: Option<String>,
    query: Option<String>,
    topic: Option<String>,
    password_env: Option<String>,
    ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    settings: BTreeMap<String, String>,
    interval: Option<String>,
    fail_threshold: Option<u32>,
    recover_threshold: Option<u32>,
    recovery: Option<RawRecovery>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecovery {
    command: Vec<String>,
    budget: Option<u32>,
    window: Option<String>,
    backoff_initial: Option<String>,
    backoff_max: Option<String>,
    timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    after: String,
    command: Option<Vec<String>>,
    webhook: Option<String>,
    timeout: Option<String>,
}

/// A validated checks file.
#[derive(Debug, Clone)]
pub struct Config {
    pub checks: Vec<Check>,
    pub escalation: Vec<Escalation>,
    /// Check indexes, each after all of its dependencies (file order among independent ones).
    pub order: Vec<usize>,
    /// Dependency depth of each check: 0 without dependencies. Checks of one depth run together.
    pub depth: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub kind: Kind,
    /// The target as written, for connecting. Never print it: use [`Check::shown_target`].
    pub target: String,
    pub timeout: Duration,
    /// A success slower than this is WARNING.
    pub warn_after: Option<Duration>,
    /// Indexes into [`Config::checks`].
    pub depends_on: Vec<usize>,
    pub interval: Duration,
    pub fail_threshold: u32,
    pub recover_threshold: u32,
    pub recovery: Option<Recovery>,
}

impl Check {
    /// The target with passwords replaced by `***`.
    pub fn shown_target(&self) -> String {
        replay::gaps_sql::redact_url(&self.target)
    }
}

/// A secret read from the environment; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub enum BodyMatch {
    Contains(String),
    Regex(regex::Regex),
}

#[derive(Debug, Clone)]
pub enum Kind {
    Http {
        url: Url,
        expect_status: u16,
        body: Option<BodyMatch>,
    },
    Postgres {
        query: String,
    },
    Redis {
        password: Option<Secret>,
    },
    Kafka {
        topic: Option<String>,
        settings: Settings,
    },
    Tcp,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Http { .. } => "http",
            Kind::Postgres { .. } => "postgres",
            Kind::Redis { .. } => "redis",
            Kind::Kafka { .. } => "kafka",
            Kind::Tcp => "tcp",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Recovery {
    pub command: Vec<String>,
    /// At most this many runs per `window`.
    pub budget: u32,
    pub window: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Escalation {
    /// Fires once per critical episode, this long after the check became CRITICAL.
    pub after: Duration,
    pub action: Action,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum Action {
    Command(Vec<String>),
    Webhook(Url),
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Parses and validates a checks file; `env` looks up environment variables (passwords);
/// relative paths in it (`ca_file`) are relative to `base`, the file's directory.
pub fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    base: &std::path::Path,
) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| syntax(text, &e))?;
    if raw.check.is_empty() {
        return Err(ConfigError::Empty);
    }
    let mut index = HashMap::new();
    for (i, c) in raw.check.iter().enumerate() {
        if c.name.trim().is_empty() {
            return Err(ConfigError::Invalid {
                check: c.name.clone(),
                field: "name",
                message: "empty".into(),
            });
        }
        if index.insert(c.name.clone(), i).is_some() {
            return Err(ConfigError::Duplicate {
                name: c.name.clone(),
            });
        }
    }
    let mut checks = Vec::with_capacity(raw.check.len());
    for c in raw.check {
        checks.push(check(c, &index, env, base)?);
    }
    let mut escalation = Vec::new();
    for (i, s) in raw.escalation.into_iter().enumerate() {
        escalation.push(step(i + 1, s)?);
    }
    let order = topological(&checks)?;
    let mut depth = vec![0usize; checks.len()];
    for &i in &order {
        let d = checks
            .get(i)
            .map(|c| {
                c.depends_on
                    .iter()
                    .map(|&j| depth.get(j).copied().unwrap_or(0) + 1)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        if let Some(slot) = depth.get_mut(i) {
            *slot = d;
        }
    }
    Ok(Config {
        checks,
        escalation,
        order,
        depth,
    })
}

/// The TOML error without the quoted source line: that line may hold a password.
fn syntax(text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e.span().map(|r| {
        let before = text.get(..r.start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("line {line}, column {col}: ")
    });
    ConfigError::Syntax(format!(
        "{}{}",
        at.unwrap_or_default(),
        e.message().trim_end()
    ))
}

fn dur(
    check: &str,
    field: &'static str,
    v: Option<&String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(t) => duration::parse(t).map_err(|message| ConfigError::Invalid {
            check: check.to_string(),
            field,
            message,
        }),
    }
}

fn check(
    c: RawCheck,
    index: &HashMap<String, usize>,
    env: &dyn Fn(&str) -> Option<String>,
    base: &std::path::Path,
) -> Result<Check, ConfigError> {
    let name = c.name.clone();
    let invalid = |field: &'static str, message: String| ConfigError::Invalid {
        check: name.clone(),
        field,
        message,
    };
    let timeout = dur(&name, "timeout", c.timeout.as_ref(), DEFAULT_TIMEOUT)?;
    if timeout.is_zero() {
        return Err(invalid("timeout", "must be more than 0".into()));
    }
    let warn_after = match &c.warn_after {
        None => None,
        Some(_) => Some(dur(&name, "warn_after", c.warn_after.as_ref(), timeout)?),
    };
    if warn_after.is_some_and(|w| w >= timeout) {
        // It could never fire: a probe that slow has already timed out (CRITICAL).
        return Err(invalid(
            "warn_after",
            format!("must be less than timeout ({} ms)", timeout.as_millis()),
        ));
    }
    let interval = dur(&name, "interval", c.interval.as_ref(), DEFAULT_INTERVAL)?;
    if interval.is_zero() {
        return Err(invalid("interval", "must be more than 0".into()));
    }
    let mut depends_on = Vec::new();
    for d in &c.depends_on {
        match index.get(d) {
            Some(&j) => depends_on.push(j),
            None => {
                return Err(ConfigError::UnknownDependency {
                    check: name.clone(),
                    dependency: d.clone(),
                })
            }
        }
    }
    let only = |field: &'static str, set: bool, kinds: &str| {
        if set {
            Err(invalid(field, format!("only for kind {kinds}")))
        } else {
            Ok(())
        }
    };
    let k = c.kind.as_str();
    if k != "http" {
        only("expect_status", c.expect_status.is_some(), "http")?;
        only("body_contains", c.body_contains.is_some(), "http")?;
        only("body_regex", c.body_regex.is_some(), "http")?;
        only("ca_file", c.ca_file.is_some(), "http")?;
    }
    if k != "postgres" {
        only("query", c.query.is_some(), "postgres")?;
    }
    if k != "kafka" {
        only("topic", c.topic.is_some(), "kafka")?;
        only("settings", !c.settings.is_empty(), "kafka")?;
    }
    if k != "redis" {
        only("password_env", c.password_env.is_some(), "redis")?;
    }
    let kind = match k {
        "http" => {
            let ca_file = c.ca_file.as_ref().map(|p| base.join(p));
            let url =
                Url::parse_with(&c.target, ca_file.as_deref()).map_err(|m| invalid("target", m))?;
            let body = match (c.body_contains, c.body_regex) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "body_regex",
                        "give body_contains or body_regex, not both".into(),
                    ))
                }
                (Some(s), None) => Some(BodyMatch::Contains(s)),
                (None, Some(r)) => Some(BodyMatch::Regex(
                    regex::Regex::new(&r).map_err(|e| invalid("body_regex", e.to_string()))?,
                )),
                (None, None) => None,
            };
            let expect_status = c.expect_status.unwrap_or(200);
            if !(100..=599).contains(&expect_status) {
                return Err(invalid(
                    "expect_status",
                    format!("{expect_status} is not an HTTP status"),
                ));
            }
            Kind::Http {
                url,
                expect_status,
                body,
            }
        }
        "postgres" => {
            tokio_postgres::Config::from_str(&c.target).map_err(|e| {
                invalid("target", format!("not a PostgreSQL connection string: {e}"))
            })?;
            Kind::Postgres {
                query: c.query.unwrap_or_else(|| "SELECT 1".to_string()),
            }
        }
        "redis" => {
            host_port(&c.target).map_err(|m| invalid("target", m))?;
            let password = match &c.password_env {
                None => None,
                Some(var) => Some(Secret(env(var).ok_or_else(|| {
                    invalid(
                        "password_env",
                        format!("environment variable {var} is not set"),
                    )
                })?)),
            };
            Kind::Redis { password }
        }
        "kafka" => {
            if c.target.trim().is_empty() {
                return Err(invalid("target", "empty bootstrap list".into()));
            }
            for server in c.target.split(',') {
                host_port(server.trim()).map_err(|m| invalid("target", m))?;
            }
            Kind::Kafka {
                topic: c.topic,
                settings: Settings(c.settings.into_iter().collect()),
            }
        }
        "tcp" => {
            host_port(&c.target).map_err(|m| invalid("target", m))?;
            Kind::Tcp
        }
        other => {
            return Err(invalid(
                "kind",
                format!("{other:?} is not one of http, postgres, redis, kafka, tcp"),
            ))
        }
    };
    let fail_threshold = c.fail_threshold.unwrap_or(1);
    let recover_threshold = c.recover_threshold.unwrap_or(1);
    if fail_threshold == 0 {
        return Err(invalid("fail_threshold", "must be at least 1".into()));
    }
    if recover_threshold == 0 {
        return Err(invalid("recover_threshold", "must be at least 1".into()));
    }
    let recovery = match c.recovery {
        None => None,
        Some(r) => {
            if !matches!(r.command.first(), Some(p) if !p.is_empty()) {
                return Err(invalid("recovery.command", "empty command".into()));
            }
            let budget = r.budget.unwrap_or(3);
            if budget == 0 {
                return Err(invalid(
                    "recovery.budget",
                    "must be at least 1 (remove recovery to run none)".into(),
                ));
            }
            let window = dur(
                &name,
                "recovery.window",
                r.window.as_ref(),
                Duration::from_secs(3600),
            )?;
            let backoff_initial = dur(
                &name,
                "recovery.backoff_initial",
                r.backoff_initial.as_ref(),
                Duration::from_secs(10),
            )?;
            let backoff_max = dur(
                &name,
                "recovery.backoff_max",
                r.backoff_max.as_ref(),
                Duration::from_secs(300),
            )?;
            if backoff_max < backoff_initial {
                return Err(invalid(
                    "recovery.backoff_max",
                    "must not be less than backoff_initial".into(),
                ));
            }
            let timeout = dur(
                &name,
                "recovery.timeout",
                r.timeout.as_ref(),
                Duration::from_secs(60),
            )?;
            Some(Recovery {
                command: r.command,
                budget,
                window,
                backoff_initial,
                backoff_max,
                timeout,
            })
        }
    };
    Ok(Check {
        name: c.name,
        kind,
        target: c.target,
        timeout,
        warn_after,
        depends_on,
        interval,
        fail_threshold,
        recover_threshold,
        recovery,
    })
}

fn step(n: usize, s: RawStep) -> Result<Escalation, ConfigError> {
    let err = |message: String| ConfigError::Escalation { step: n, message };
    let after = duration::parse(&s.after).map_err(|m| err(format!("after: {m}")))?;
    let timeout = match &s.timeout {
        None => Duration::from_secs(30),
        Some(t) => duration::parse(t).map_err(|m| err(format!("timeout: {m}")))?,
    };
    let action = match (s.command, s.webhook) {
        (Some(c), None) => {
            if !matches!(c.first(), Some(p) if !p.is_empty()) {
                return Err(err("empty command".into()));
            }
            Action::Command(c)
        }
        (None, Some(w)) => {
            Action::Webhook(Url::parse(&w).map_err(|m| err(format!("webhook: {m}")))?)
        }
        _ => return Err(err("give exactly one of command or webhook".into())),
    };
    Ok(Escalation {
        after,
        action,
        timeout,
    })
}

/// `host:port` (IPv6 as `[::1]:port`).
pub fn host_port(t: &str) -> Result<(String, u16), String> {
    let (host, port) = t
        .rsplit_once(':')
        .ok_or_else(|| format!("{t:?}: expected host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{t:?}: empty host"));
    }
    if host.contains(['/', '@']) {
        // A URL here would be printed whole in errors: keep its password out of them.
        return Err(format!(
            "{}: expected host:port, not a URL",
            replay::gaps_sql::redact_url(t)
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{t:?}: {port:?} is not a port"))?;
    Ok((host.to_string(), port))
}

/// Kahn's algorithm, file order among ready checks; on a cycle, names one.
fn topological(checks: &[Check]) -> Result<Vec<usize>, ConfigError> {
    let n = checks.len();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let next = (0..n).find(|&i| {
            !placed.get(i).copied().unwrap_or(true)
                && checks.get(i).is_some_and(|c| {
                    c.depends_on
                        .iter()
                        .all(|&d| placed.get(d).copied().unwrap_or(false))
                })
        });
        match next {
            Some(i) => {
                if let Some(p) = placed.get_mut(i) {
                    *p = true;
                }
                order.push(i);
            }
            None => return Err(ConfigError::Cycle(find_cycle(checks, &placed))),
        }
    }
    Ok(order)
}

/// Every unplaced check waits on another unplaced one; following those edges must revisit one.
fn find_cycle(checks: &[Check], placed: &[bool]) -> Vec<String> {
    let unplaced = |i: usize| !placed.get(i).copied().unwrap_or(true);
    let Some(mut at) = (0..checks.len()).find(|&i| unplaced(i)) else {
        return Vec::new();
    };
    let mut path: Vec<usize> = Vec::new();
    loop {
        if let Some(pos) = path.iter().position(|&p| p == at) {
            let mut names: Vec<String> = path
                .iter()
                .skip(pos)
                .filter_map(|&i| checks.get(i).map(|c| c.name.clone()))
                .collect();
            if let Some(c) = checks.get(at) {
                names.push(c.name.clone());
            }
            return names;
        }
        path.push(at);
        let next = checks
            .get(at)
            .and_then(|c| c.depends_on.iter().copied().find(|&d| unplaced(d)));
        match next {
            Some(d) => at = d,
            None => return Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn p(t: &str) -> Result<Config, ConfigError> {
        parse(t, &no_env, std::path::Path::new("."))
    }

    #[test]
    fn order_puts_dependencies_first() {
        let c = p(r#"
            [[check]]
            name = "api"
            kind = "http"
            target = "http://127.0.0.1:1/health"
            depends_on = ["db", "cache"]
            [[check]]
            name = "cache"
            kind = "redis"
            target = "127.0.0.1:6379"
            [[check]]
            name = "db"
            kind = "postgres"
            target = "postgres://u:pw@127.0.0.1:5432/x"
            depends_on = ["cache"]
        "#)
        .unwrap();
        let names: Vec<&str> = c.order.iter().map(|&i| c.checks[i].name.as_str()).collect();
        assert_eq!(names, ["cache", "db", "api"]);
        assert_eq!(c.depth, [2, 0, 1]);
        assert_eq!(
            c.checks[2].shown_target(),
            "postgres://u:***@127.0.0.1:5432/x"
        );
    }

    #[test]
    fn cycle_is_named() {
        let e = p(r#"
            [[check]]
            name = "a"
            kind = "tcp"
            target = "127.0.0.1:1"
            depends_on = ["b"]
            [[check]]
            name = "b"
            kind = "tcp"
            target = "127.0.0.1:1"
            depends_on = ["c"]
            [[check]]
            name = "c"
            kind = "tcp"
            target = "127.0.0.1:1"
            depends_on = ["a"]
        "#)
        .unwrap_err();
        assert_eq!(e.to_string(), "dependency cycle: a -> b -> c -> a");
    }

    #[test]
    fn refusals_name_the_check_and_field() {
        let base = "[[check]]\nname = \"x\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\n";
        let cases = [
            ("depends_on = [\"nope\"]", "depends_on \"nope\""),
            ("timeout = \"5 parsecs\"", "check \"x\": timeout:"),
            ("query = \"select 1\"", "query: only for kind postgres"),
            ("fail_threshold = 0", "fail_threshold"),
            (
                "warn_after = \"5s\"",
                "warn_after: must be less than timeout",
            ),
            ("recovery = { command = [] }", "recovery.command"),
            ("colour = \"red\"", "unknown field"),
        ];
        for (extra, want) in cases {
            let e = p(&format!("{base}{extra}\n")).unwrap_err().to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = p("[[check]]\nname = \"x\"\nkind = \"smtp\"\ntarget = \"a:1\"\n").unwrap_err();
        assert!(e.to_string().contains("not one of"), "{e}");
        let e = p("[[check]]\nname = \"x\"\nkind = \"redis\"\ntarget = \"a:1\"\npassword_env = \"NOPE_PW\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("NOPE_PW is not set"), "{e}");
        assert!(matches!(p(""), Err(ConfigError::Empty)));
        let e = p("[[check]]\nname = \"x\"\nkind = \"redis\"\ntarget = \"redis://:pw@h:6379\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a URL") && !e.contains("pw@"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_place_but_not_the_line() {
        let e = p("[[check]]\nname = \"db\"\ntarget = \"postgres://u:hunter2@h/db\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 3, column "), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let env = |_: &str| Some("hunter2".to_string());
        let c = parse(
            "[[check]]\nname = \"r\"\nkind = \"redis\"\ntarget = \"a:1\"\npassword_env = \"PW\"\n",
            &env,
            std::path::Path::new("."),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
