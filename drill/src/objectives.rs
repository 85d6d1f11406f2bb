//! Recovery objectives: RTO per service tier, RPO per data class, and which tier each service is.
//!
//! The built-in table is MS5's runbook (docs/DRILL.md), written in the same TOML a user's
//! `--objectives` file uses and read by the same parser, so the two cannot drift apart.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use serde::Deserialize;

/// MS5.0's disaster-recovery objectives (ms5-system.md), as an objectives file.
pub const MS5: &str = r#"# MS5.0 disaster-recovery objectives (the runbooks' table).
# RTO ends at the first "healthy" event of a service ("validated" to require a data check).
rto_end = "healthy"

[rto]  # per service tier
critical = "1h"
core = "4h"
non-critical = "24h"

[rpo]  # per data class: fault time - newest data recovered
production = "15m"
telemetry = "5m"
configuration = "1h"
audit = "0"

[services]  # service -> tier
gateway-api = "critical"
postgresql-primary = "critical"
redis = "critical"
kafka = "critical"
auth = "critical"
timescaledb-analytics = "core"
graphql-router = "core"
websocket-gateway = "core"
alert-manager = "core"
sqdc = "core"
reports = "non-critical"
export = "non-critical"
developer-portal = "non-critical"
dashboards = "non-critical"
"#;

/// Which event ends a service's recovery time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtoEnd {
    Healthy,
    Validated,
}

impl RtoEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            RtoEnd::Healthy => "healthy",
            RtoEnd::Validated => "validated",
        }
    }

    pub fn parse(s: &str) -> Option<RtoEnd> {
        match s {
            "healthy" => Some(RtoEnd::Healthy),
            "validated" => Some(RtoEnd::Validated),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Objectives {
    pub rto_end: RtoEnd,
    /// Tier name -> RTO.
    pub rto: BTreeMap<String, TimeDelta>,
    /// Data class -> RPO.
    pub rpo: BTreeMap<String, TimeDelta>,
    /// Service (normalised by [`normalise`]) -> tier.
    pub services: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ObjectivesError {
    #[error("not an objectives file: {0}")]
    Toml(String),
    #[error("[{table}] {key} = {value:?}: not a duration (5m, 1h30m, 300s, 0)")]
    Duration {
        table: &'static str,
        key: String,
        value: String,
    },
    #[error("rto_end = {0:?}: must be \"healthy\" or \"validated\"")]
    RtoEnd(String),
    #[error("[services] {service} = {tier:?}: no such tier in [rto]")]
    UnknownTier { service: String, tier: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    rto_end: Option<String>,
    #[serde(default)]
    rto: BTreeMap<String, String>,
    #[serde(default)]
    rpo: BTreeMap<String, String>,
    #[serde(default)]
    services: BTreeMap<String, String>,
}

/// Service names compare case-insensitively, with `_` and spaces as `-`.
pub fn normalise(service: &str) -> String {
    service
        .trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn durations(
    table: &'static str,
    raw: BTreeMap<String, String>,
) -> Result<BTreeMap<String, TimeDelta>, ObjectivesError> {
    raw.into_iter()
        .map(|(k, v)| match replay::gaps::parse_duration(&v) {
            Some(d) if d >= TimeDelta::zero() => Ok((k, d)),
            _ => Err(ObjectivesError::Duration {
                table,
                key: k,
                value: v,
            }),
        })
        .collect()
}

impl Objectives {
    /// Reads an objectives file. It is complete on its own: tables it leaves out are empty, not
    /// MS5's (print the built-in table with `drkit drill objectives` to start from it).
    pub fn from_toml(text: &str) -> Result<Objectives, ObjectivesError> {
        let raw: Raw = toml::from_str(text).map_err(|e| ObjectivesError::Toml(e.to_string()))?;
        let rto_end = match raw.rto_end.as_deref() {
            None => RtoEnd::Healthy,
            Some(s) => RtoEnd::parse(s).ok_or_else(|| ObjectivesError::RtoEnd(s.to_string()))?,
        };
        let rto = durations("rto", raw.rto)?;
        let rpo = durations("rpo", raw.rpo)?;
        let mut services = BTreeMap::new();
        for (service, tier) in raw.services {
            if !rto.contains_key(&tier) {
                return Err(ObjectivesError::UnknownTier { service, tier });
            }
            services.insert(normalise(&service), tier);
        }
        Ok(Objectives {
            rto_end,
            rto,
            rpo,
            services,
        })
    }

    /// MS5's table ([`MS5`]).
    pub fn ms5() -> Objectives {
        // The constant is tested to parse; an empty table is the unreachable fallback.
        Objectives::from_toml(MS5).unwrap_or(Objectives {
            rto_end: RtoEnd::Healthy,
            rto: BTreeMap::new(),
            rpo: BTreeMap::new(),
            services: BTreeMap::new(),
        })
    }

    pub fn tier_of(&self, service: &str) -> Option<&str> {
        self.services.get(&normalise(service)).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms5_table_is_the_runbooks() {
        let o = Objectives::from_toml(MS5).unwrap();
        assert_eq!(o.rto["critical"], TimeDelta::hours(1));
        assert_eq!(o.rto["core"], TimeDelta::hours(4));
        assert_eq!(o.rto["non-critical"], TimeDelta::hours(24));
        assert_eq!(o.rpo["production"], TimeDelta::minutes(15));
        assert_eq!(o.rpo["telemetry"], TimeDelta::minutes(5));
        assert_eq!(o.rpo["configuration"], TimeDelta::hours(1));
        assert_eq!(o.rpo["audit"], TimeDelta::zero());
        assert_eq!(o.services.len(), 14);
        assert_eq!(o.tier_of("PostgreSQL_Primary"), Some("critical"));
        assert_eq!(o.tier_of("SQDC"), Some("core"));
        assert_eq!(o.tier_of("dashboards"), Some("non-critical"));
        assert_eq!(o.rto_end, RtoEnd::Healthy);
    }

    #[test]
    fn bad_files_are_named_precisely() {
        assert!(matches!(
            Objectives::from_toml("[rto]\ncritical = \"soon\""),
            Err(ObjectivesError::Duration { key, .. }) if key == "critical"
        ));
        assert!(matches!(
            Objectives::from_toml("[services]\nx = \"gold\""),
            Err(ObjectivesError::UnknownTier { .. })
        ));
        assert!(matches!(
            Objectives::from_toml("rto_end = \"later\""),
            Err(ObjectivesError::RtoEnd(_))
        ));
        assert!(matches!(
            Objectives::from_toml("[rpo]\nx = 5"),
            Err(ObjectivesError::Toml(_))
        ));
        assert!(matches!(
            Objectives::from_toml("rpo_typo = 1"),
            Err(ObjectivesError::Toml(_))
        ));
    }
}
