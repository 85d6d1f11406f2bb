//! Measured RTO per service and RPO per data class, against the objectives.
//!
//! - A service's fault is its own first `fault` event, or else the first drill-wide one (a fault
//!   with no service); the same for `detected`. Restores, health and validation are per service.
//! - RTO = the first end event (`healthy`, or `validated` when so configured) at or after the
//!   fault, minus the fault time. Met when RTO <= the tier's objective.
//! - A data point's fault is that of its service (or the drill-wide one); its RPO = fault time -
//!   `last_good`, 0 when data newer than the fault was recovered. A data class's RPO is its worst
//!   point. Met when RPO <= the class's objective (an objective of 0 means no loss at all).
//! - What cannot be measured (no fault, no end event, no tier, no objective, an expected service
//!   or class absent) is `unmeasured` with the reason: it fails the drill like a miss, because
//!   an objective nobody measured is not known to be met.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use crate::event::{Backup, Event, EventKind};
use crate::objectives::{normalise, Objectives, RtoEnd};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    Unmeasured,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "missed",
            Verdict::Unmeasured => "unmeasured",
        }
    }
}

/// One service's recovery, phase by phase.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceResult {
    /// As first written in the record.
    pub service: String,
    pub tier: Option<String>,
    pub fault: Option<DateTime<Utc>>,
    pub detected: Option<DateTime<Utc>>,
    pub restore_started: Option<DateTime<Utc>>,
    pub restored: Option<DateTime<Utc>>,
    pub healthy: Option<DateTime<Utc>>,
    pub validated: Option<DateTime<Utc>>,
    pub rto: Option<TimeDelta>,
    pub objective: Option<TimeDelta>,
    pub verdict: Verdict,
    pub reason: Option<String>,
    /// Backups named by this service's events, in record order.
    pub backups: Vec<Backup>,
}

/// One data class: its worst data point.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassResult {
    pub class: String,
    pub points: usize,
    pub rpo: Option<TimeDelta>,
    pub objective: Option<TimeDelta>,
    pub verdict: Verdict,
    pub reason: Option<String>,
    /// The worst point's service, newest data recovered and fault time.
    pub service: Option<String>,
    pub last_good: Option<DateTime<Utc>>,
    pub fault: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub rto_end: RtoEnd,
    pub services: Vec<ServiceResult>,
    pub classes: Vec<ClassResult>,
    /// Problems that belong to no row (no fault at all, drill not finished...).
    pub problems: Vec<String>,
}

impl Measured {
    /// True when every objective was measured and met and nothing else is wrong.
    pub fn all_met(&self) -> bool {
        self.problems.is_empty()
            && self.services.iter().all(|s| s.verdict == Verdict::Met)
            && self.classes.iter().all(|c| c.verdict == Verdict::Met)
    }
}

/// What the report must find besides what the record holds.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub services: Vec<String>,
    pub classes: Vec<String>,
}

fn first(events: &[&Event], kind: EventKind) -> Option<DateTime<Utc>> {
    events
        .iter()
        .filter(|e| e.kind() == Some(kind))
        .filter_map(|e| e.at())
        .min()
}

pub fn measure(events: &[Event], o: &Objectives, rto_end: RtoEnd, expect: &Expect) -> Measured {
    let wide: Vec<&Event> = events.iter().filter(|e| e.service.is_none()).collect();
    let wide_fault = first(&wide, EventKind::Fault);
    let wide_detected = first(&wide, EventKind::Detected);
    let mut problems = Vec::new();
    let any_fault = events.iter().any(|e| e.kind() == Some(EventKind::Fault));
    if !any_fault {
        problems.push("the record has no fault event: nothing can be measured".to_string());
    }
    if !events.iter().any(|e| e.kind() == Some(EventKind::Finish)) {
        problems.push(
            "the record has no finish event: the drill is unfinished, or its newest events were removed"
                .to_string(),
        );
    }

    // Services, in order of first appearance (by normalised name).
    let mut order: Vec<String> = Vec::new();
    let mut by_service: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in events {
        let phase = matches!(
            e.kind(),
            Some(
                EventKind::Fault
                    | EventKind::Detected
                    | EventKind::RestoreStarted
                    | EventKind::Restored
                    | EventKind::Healthy
                    | EventKind::Validated
            )
        );
        if let Some(s) = &e.service {
            let key = normalise(s);
            if phase && !by_service.contains_key(&key) {
                order.push(s.clone());
            }
            by_service.entry(key).or_default().push(e);
        }
    }
    for s in &expect.services {
        if !order.iter().any(|o| normalise(o) == normalise(s)) {
            order.push(s.clone());
        }
    }

    let services = order
        .iter()
        .map(|name| {
            let evs = by_service
                .get(&normalise(name))
                .cloned()
                .unwrap_or_default();
            problems.extend(out_of_order(name, &evs));
            service(name, &evs, wide_fault, wide_detected, o, rto_end)
        })
        .collect();

    // Data classes, in order of first appearance.
    let mut class_order: Vec<String> = Vec::new();
    let mut points: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::DataPoint))
    {
        if let Some(c) = &e.class {
            if !points.contains_key(c) {
                class_order.push(c.clone());
            }
            points.entry(c.clone()).or_default().push(e);
        }
    }
    for c in &expect.classes {
        if !class_order.contains(c) {
            class_order.push(c.clone());
        }
    }
    let classes = class_order
        .iter()
        .map(|c| {
            let pts = points.get(c).cloned().unwrap_or_default();
            class(c, &pts, &by_service, wide_fault, o)
        })
        .collect();

    Measured {
        rto_end,
        services,
        classes,
        problems,
    }
}

/// A service's own phase events must not go back in time (fault, detected, restore started,
/// restored, healthy, validated): a restore that ends before it starts is a mistyped `--at`, and
/// the RTO measured from such a record would be wrong without anyone noticing.
fn out_of_order(name: &str, evs: &[&Event]) -> Vec<String> {
    const ORDER: [EventKind; 6] = [
        EventKind::Fault,
        EventKind::Detected,
        EventKind::RestoreStarted,
        EventKind::Restored,
        EventKind::Healthy,
        EventKind::Validated,
    ];
    let present: Vec<(EventKind, DateTime<Utc>)> = ORDER
        .iter()
        .filter_map(|k| first(evs, *k).map(|t| (*k, t)))
        .collect();
    present
        .windows(2)
        .filter_map(|w| match w {
            [(ka, ta), (kb, tb)] if tb < ta => Some(format!(
                "{name}: {} at {} is before {} at {}",
                kb.as_str(),
                crate::event::format_time(*tb),
                ka.as_str(),
                crate::event::format_time(*ta)
            )),
            _ => None,
        })
        .collect()
}

fn service(
    name: &str,
    evs: &[&Event],
    wide_fault: Option<DateTime<Utc>>,
    wide_detected: Option<DateTime<Utc>>,
    o: &Objectives,
    rto_end: RtoEnd,
) -> ServiceResult {
    let tier = evs
        .iter()
        .find_map(|e| e.tier.clone())
        .or_else(|| o.tier_of(name).map(str::to_string));
    let fault = first(evs, EventKind::Fault).or(wide_fault);
    let end_kind = match rto_end {
        RtoEnd::Healthy => EventKind::Healthy,
        RtoEnd::Validated => EventKind::Validated,
    };
    let end = fault.and_then(|f| {
        evs.iter()
            .filter(|e| e.kind() == Some(end_kind))
            .filter_map(|e| e.at())
            .filter(|t| *t >= f)
            .min()
    });
    let objective = tier.as_ref().and_then(|t| o.rto.get(t).copied());
    let rto = fault.zip(end).map(|(f, e)| e - f);
    let reason = if evs.is_empty() {
        Some("expected, but the record has no event for this service".to_string())
    } else if fault.is_none() {
        Some("no fault event for this service nor a drill-wide one".to_string())
    } else if end.is_none() {
        let before = first(evs, end_kind).is_some();
        Some(if before {
            format!("its {} event is before the fault", end_kind.as_str())
        } else {
            format!("no {} event", end_kind.as_str())
        })
    } else if tier.is_none() {
        Some(
            "no tier: give --tier when marking, or map the service in the objectives file"
                .to_string(),
        )
    } else if objective.is_none() {
        Some(format!(
            "tier {:?} has no RTO objective",
            tier.as_deref().unwrap_or_default()
        ))
    } else {
        None
    };
    let verdict = match (rto, objective) {
        (Some(r), Some(obj)) if reason.is_none() => {
            if r <= obj {
                Verdict::Met
            } else {
                Verdict::Missed
            }
        }
        _ => Verdict::Unmeasured,
    };
    ServiceResult {
        service: name.to_string(),
        tier,
        fault,
        detected: first(evs, EventKind::Detected).or(wide_detected),
        restore_started: first(evs, EventKind::RestoreStarted),
        restored: first(evs, EventKind::Restored),
        healthy: first(evs, EventKind::Healthy),
        validated: first(evs, EventKind::Validated),
        rto,
        objective,
        verdict,
        reason,
        backups: evs.iter().flat_map(|e| e.backups.iter().cloned()).collect(),
    }
}

fn class(
    name: &str,
    pts: &[&Event],
    by_service: &BTreeMap<String, Vec<&Event>>,
    wide_fault: Option<DateTime<Utc>>,
    o: &Objectives,
) -> ClassResult {
    let objective = o.rpo.get(name).copied();
    let mut worst: Option<(TimeDelta, &Event, DateTime<Utc>, DateTime<Utc>)> = None;
    let mut no_fault = 0usize;
    for p in pts {
        let own = p
            .service
            .as_deref()
            .and_then(|s| by_service.get(&normalise(s)))
            .and_then(|evs| first(evs, EventKind::Fault));
        let (Some(f), Some(lg)) = (own.or(wide_fault), p.last_good_at()) else {
            no_fault += 1;
            continue;
        };
        let rpo = (f - lg).max(TimeDelta::zero());
        if worst.is_none_or(|(w, ..)| rpo > w) {
            worst = Some((rpo, p, lg, f));
        }
    }
    let reason = if pts.is_empty() {
        Some("expected, but the record has no data_point for this class".to_string())
    } else if no_fault > 0 {
        Some(format!(
            "{no_fault} data point(s) have no fault time (no fault for their service nor a drill-wide one)"
        ))
    } else if objective.is_none() {
        Some("no RPO objective for this class".to_string())
    } else {
        None
    };
    let rpo = worst.map(|w| w.0);
    let verdict = match (rpo, objective) {
        (Some(r), Some(obj)) if reason.is_none() => {
            if r <= obj {
                Verdict::Met
            } else {
                Verdict::Missed
            }
        }
        _ => Verdict::Unmeasured,
    };
    ClassResult {
        class: name.to_string(),
        points: pts.len(),
        rpo,
        objective,
        verdict,
        reason,
        service: worst.and_then(|w| w.1.service.clone()),
        last_good: worst.map(|w| w.2),
        fault: worst.map(|w| w.3),
    }
}

/// A duration for people: `1h 02m 03s`, `4m 30s`, `12s` (milliseconds only when present).
pub fn human(d: TimeDelta) -> String {
    let sign = if d < TimeDelta::zero() { "-" } else { "" };
    let ms = d.num_milliseconds().unsigned_abs();
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let fr = if frac == 0 {
        String::new()
    } else {
        format!(".{frac:03}")
    };
    if h > 0 {
        format!("{sign}{h}h {m:02}m {s:02}{fr}s")
    } else if m > 0 {
        format!("{sign}{m}m {s:02}{fr}s")
    } else {
        format!("{sign}{s}{fr}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{format_time, NewEvent};
    use crate::record::chained;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, h, m, s).unwrap()
    }

    struct B(Vec<Event>);
    impl B {
        fn ev(&mut self, kind: EventKind, at: DateTime<Utc>, service: Option<&str>) -> &mut Event {
            let mut n = NewEvent::new(kind, at, at);
            n.service = service.map(str::to_string);
            let prev = self
                .0
                .last()
                .map(|e| e.hash.clone())
                .unwrap_or(crate::chain::GENESIS.into());
            let e = chained(&n, self.0.len() as u64 + 1, "d", &prev).unwrap();
            self.0.push(e);
            self.0.last_mut().unwrap()
        }
        fn point(&mut self, class: &str, lg: DateTime<Utc>, service: Option<&str>) {
            let at = t(12, 0, 0);
            let e = self.ev(EventKind::DataPoint, at, service);
            e.class = Some(class.into());
            e.last_good = Some(format_time(lg));
        }
    }

    fn drill() -> B {
        let mut b = B(Vec::new());
        b.ev(EventKind::Start, t(9, 0, 0), None);
        b.ev(EventKind::Fault, t(10, 0, 0), None);
        b.ev(EventKind::Detected, t(10, 3, 0), None);
        b.ev(EventKind::Fault, t(10, 10, 0), Some("redis"));
        b.ev(
            EventKind::Healthy,
            t(10, 59, 59),
            Some("postgresql-primary"),
        );
        b.ev(EventKind::Healthy, t(11, 10, 0), Some("redis"));
        b.ev(EventKind::Healthy, t(13, 0, 0), Some("graphql-router"));
        b.point("telemetry", t(9, 55, 30), Some("postgresql-primary"));
        b.point("telemetry", t(9, 57, 0), None);
        b.point("audit", t(10, 0, 0), None);
        b.ev(EventKind::Finish, t(14, 0, 0), None);
        b
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human(TimeDelta::seconds(3723)), "1h 02m 03s");
        assert_eq!(human(TimeDelta::seconds(270)), "4m 30s");
        assert_eq!(human(TimeDelta::zero()), "0s");
        assert_eq!(human(TimeDelta::milliseconds(1500)), "1.500s");
        assert_eq!(human(TimeDelta::hours(25)), "25h 00m 00s");
    }

    #[test]
    fn rto_and_rpo_arithmetic() {
        let m = measure(
            &drill().0,
            &Objectives::ms5(),
            RtoEnd::Healthy,
            &Expect::default(),
        );
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        let s: Vec<_> = m
            .services
            .iter()
            .map(|s| (s.service.as_str(), s.rto, s.verdict))
            .collect();
        assert_eq!(
            s,
            vec![
                (
                    "redis",
                    Some(TimeDelta::minutes(60)),
                    Verdict::Met // its own fault at 10:10, healthy at 11:10: exactly the objective
                ),
                (
                    "postgresql-primary",
                    Some(TimeDelta::seconds(3599)),
                    Verdict::Met
                ),
                ("graphql-router", Some(TimeDelta::hours(3)), Verdict::Met),
            ]
        );
        let tel = &m.classes[0];
        assert_eq!(tel.class, "telemetry");
        assert_eq!(tel.rpo, Some(TimeDelta::seconds(270)));
        assert_eq!(tel.service.as_deref(), Some("postgresql-primary"));
        assert_eq!(tel.verdict, Verdict::Met);
        assert_eq!(m.classes[1].rpo, Some(TimeDelta::zero()));
        assert_eq!(m.classes[1].verdict, Verdict::Met);
        assert!(m.all_met());
    }

    #[test]
    fn misses_and_gaps_fail() {
        let mut b = drill();
        b.0.pop();
        b.point("audit", t(9, 59, 59), None); // one second of audit log lost
        b.ev(EventKind::Healthy, t(12, 0, 1), Some("kafka")); // 2h00m01s > 1h
        b.ev(EventKind::Healthy, t(11, 0, 0), Some("mystery-box"));
        let m = measure(
            &b.0,
            &Objectives::ms5(),
            RtoEnd::Healthy,
            &Expect {
                services: vec!["auth".into()],
                classes: vec!["production".into()],
            },
        );
        assert!(!m.all_met());
        let get = |n: &str| m.services.iter().find(|s| s.service == n).unwrap();
        assert_eq!(get("kafka").rto, Some(TimeDelta::seconds(7201)));
        assert_eq!(get("kafka").verdict, Verdict::Missed);
        assert_eq!(get("auth").verdict, Verdict::Unmeasured);
        assert_eq!(get("mystery-box").verdict, Verdict::Unmeasured);
        assert!(get("mystery-box")
            .reason
            .as_deref()
            .unwrap()
            .contains("no tier"));
        let audit = m.classes.iter().find(|c| c.class == "audit").unwrap();
        assert_eq!(audit.rpo, Some(TimeDelta::seconds(1)));
        assert_eq!(audit.verdict, Verdict::Missed);
        let prod = m.classes.iter().find(|c| c.class == "production").unwrap();
        assert_eq!(prod.verdict, Verdict::Unmeasured);
        assert!(m.problems.iter().any(|p| p.contains("no finish")));
    }

    #[test]
    fn phases_out_of_order_are_problems() {
        let mut b = drill();
        b.ev(EventKind::RestoreStarted, t(10, 30, 0), Some("redis"));
        b.ev(EventKind::Restored, t(10, 25, 0), Some("redis"));
        let m = measure(
            &b.0,
            &Objectives::ms5(),
            RtoEnd::Healthy,
            &Expect::default(),
        );
        assert_eq!(
            m.problems,
            vec![
                "redis: restored at 2026-11-20T10:25:00Z is before restore_started at 2026-11-20T10:30:00Z"
                    .to_string()
            ]
        );
        assert!(!m.all_met());
    }

    #[test]
    fn validated_can_end_rto() {
        let mut b = drill();
        b.ev(EventKind::Validated, t(12, 0, 0), Some("redis"));
        let m = measure(
            &b.0,
            &Objectives::ms5(),
            RtoEnd::Validated,
            &Expect::default(),
        );
        let redis = m.services.iter().find(|s| s.service == "redis").unwrap();
        assert_eq!(redis.rto, Some(TimeDelta::minutes(110)));
        assert_eq!(redis.verdict, Verdict::Missed);
        let pg = m
            .services
            .iter()
            .find(|s| s.service == "postgresql-primary")
            .unwrap();
        assert_eq!(pg.verdict, Verdict::Unmeasured);
        assert_eq!(pg.reason.as_deref(), Some("no validated event"));
    }
}
