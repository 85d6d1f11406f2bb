//! The self-contained HTML report: inline CSS and an inline SVG timeline, no scripts, no
//! external references, so it can be mailed or archived with the drill record.

use std::fmt::Write;

use chrono::{DateTime, TimeDelta, Utc};

use crate::chain::Break;
use crate::event::format_time;
use crate::measure::{human, Measured, ServiceResult, Verdict};

/// What the page shows besides the measurements.
pub struct Page<'a> {
    pub drill: &'a str,
    pub record: &'a str,
    pub events: usize,
    /// Events whose time was given by the operator, not the clock.
    pub backfilled: usize,
    pub head: Option<&'a str>,
    pub breaks: &'a [Break],
    pub measured: &'a Measured,
    /// The verdict the exit code carries: true = 0.
    pub pass: bool,
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn t(x: Option<DateTime<Utc>>) -> String {
    x.map(format_time).unwrap_or_else(|| "—".into())
}

fn d(x: Option<TimeDelta>) -> String {
    x.map(human).unwrap_or_else(|| "—".into())
}

fn verdict_cell(v: Verdict) -> String {
    format!("<td class=\"{0}\">{0}</td>", v.as_str())
}

/// The state a service is in after each phase event (same order as [`phases`]), and its bar
/// colour: a bar runs from one recorded event to the next.
const PHASES: &[(&str, &str)] = &[
    ("down, not yet detected", "#d9534f"),
    ("detected, restore not started", "#f0ad4e"),
    ("restoring", "#5bc0de"),
    ("restored, not yet healthy", "#5cb85c"),
    ("healthy, not yet validated", "#2e7d32"),
    ("validated", "#2e7d32"),
];

/// Grid labels: `+30m`, `+2h`, `+1d`.
fn tick(minutes: i64) -> String {
    match minutes {
        m if m % 1440 == 0 => format!("+{}d", m / 1440),
        m if m % 60 == 0 => format!("+{}h", m / 60),
        m if m >= 60 => format!("+{}h{:02}m", m / 60, m % 60),
        m => format!("+{m}m"),
    }
}

fn phases(s: &ServiceResult) -> Vec<(usize, DateTime<Utc>)> {
    [
        s.fault,
        s.detected,
        s.restore_started,
        s.restored,
        s.healthy,
        s.validated,
    ]
    .into_iter()
    .enumerate()
    .filter_map(|(i, x)| x.map(|x| (i, x)))
    .collect()
}

fn timeline(m: &Measured) -> String {
    let rows: Vec<&ServiceResult> = m.services.iter().filter(|s| s.fault.is_some()).collect();
    let mut times: Vec<DateTime<Utc>> = Vec::new();
    for s in &rows {
        times.extend(phases(s).into_iter().map(|p| p.1));
        if let (Some(f), Some(o)) = (s.fault, s.objective) {
            times.push(f + o);
        }
    }
    let (Some(t0), Some(t1)) = (times.iter().min().copied(), times.iter().max().copied()) else {
        return "<p>No service has a fault time: no timeline.</p>".into();
    };
    let span = (t1 - t0).num_milliseconds().max(1) as f64;
    let (left, width, row_h) = (220.0, 720.0, 30.0);
    let x = |at: DateTime<Utc>| left + (at - t0).num_milliseconds() as f64 / span * width;
    let height = 50.0 + row_h * rows.len() as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg width=\"980\" height=\"{height}\" role=\"img\" aria-label=\"recovery timeline\">"
    );
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"14\" class=\"axis\">{}</text><text x=\"{}\" y=\"14\" class=\"axis\" text-anchor=\"end\">{}</text>",
        escape(&format_time(t0)),
        left + width,
        escape(&format_time(t1))
    );
    // Hour-ish grid lines: the smallest step that gives at most 8 of them.
    let steps = [5, 15, 30, 60, 120, 360, 720, 1440, 10080];
    let span_min = (t1 - t0).num_minutes();
    let step = steps
        .iter()
        .copied()
        .find(|s| span_min / s <= 8)
        .unwrap_or(10080);
    for k in 1..=(span_min / step) {
        let gx = x(t0 + TimeDelta::minutes(k * step));
        let _ = write!(
            svg,
            "<line x1=\"{gx:.1}\" x2=\"{gx:.1}\" y1=\"18\" y2=\"{}\" class=\"grid\"/><text x=\"{gx:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
            height - 14.0,
            height - 2.0,
            tick(k * step)
        );
    }
    for (i, s) in rows.iter().enumerate() {
        let y = 24.0 + row_h * i as f64;
        let cls = if s.verdict == Verdict::Met {
            ""
        } else {
            " bad"
        };
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{}\" class=\"label{cls}\">{} ({})</text>",
            y + 15.0,
            escape(&s.service),
            escape(&d(s.rto))
        );
        let ps = phases(s);
        for pair in ps.windows(2) {
            let (Some((i0, a)), Some((_, b))) = (pair.first(), pair.get(1)) else {
                continue;
            };
            let (name, colour) = PHASES.get(*i0).copied().unwrap_or(("", "#999"));
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"20\" fill=\"{colour}\"><title>{}: {} .. {} ({})</title></rect>",
                x(*a),
                (x(*b) - x(*a)).max(1.0),
                escape(&s.service),
                name,
                escape(&format_time(*a)),
                escape(&human(*b - *a))
            );
        }
        if let (Some(f), Some(o)) = (s.fault, s.objective) {
            let ox = x(f + o);
            let _ = write!(
                svg,
                "<line x1=\"{ox:.1}\" x2=\"{ox:.1}\" y1=\"{}\" y2=\"{}\" class=\"objective\"><title>{} objective: {} after the fault</title></line>",
                y - 3.0,
                y + 23.0,
                escape(&s.service),
                escape(&human(o))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

pub fn render(p: &Page<'_>) -> String {
    let m = p.measured;
    let mut h = String::new();
    let verdict = if p.pass {
        "<p class=\"met verdict\">PASS: every objective measured and met, record intact.</p>"
    } else {
        "<p class=\"missed verdict\">FAIL: see the problems below.</p>"
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>drkit drill {drill}</title>\n<style>\n\
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:14px}}th{{background:#f4f4f4}}\
.met{{color:#2e7d32;font-weight:bold}}.missed,.unmeasured,.bad{{color:#c62828;font-weight:bold}}\
.verdict{{font-size:18px}}.axis{{font-size:11px;fill:#555}}.label{{font-size:13px}}\
.objective{{stroke:#000;stroke-width:2;stroke-dasharray:3,2}}.grid{{stroke:#ddd;stroke-width:1}}\
code{{font-size:12px;word-break:break-all}}.sw{{display:inline-block;width:12px;height:12px;margin:0 3px}}\n\
</style></head><body>\n<h1>Drill {drill}</h1>\n<p>Record <code>{record}</code>: {events} events ({backfilled} back-filled), chain {chain}, head <code>{head}</code>. RTO ends at <b>{end}</b>.</p>\n{verdict}\n",
        drill = escape(p.drill),
        record = escape(p.record),
        events = p.events,
        backfilled = p.backfilled,
        chain = if p.breaks.is_empty() { "intact" } else { "BROKEN" },
        head = escape(p.head.unwrap_or("—")),
        end = m.rto_end.as_str(),
    );
    h.push_str("<h2>Timeline</h2>\n<p>");
    for (name, colour) in PHASES.iter().take(PHASES.len() - 1) {
        let _ = write!(
            h,
            "<span class=\"sw\" style=\"background:{colour}\"></span>{name} "
        );
    }
    h.push_str(
        "— dashed line: fault + the tier's RTO objective; +N: time since the first fault.</p>\n",
    );
    h.push_str(&timeline(m));
    h.push_str("\n<h2>RTO per service</h2>\n<table><tr><th>service</th><th>tier</th><th>fault</th><th>detected</th><th>restore started</th><th>restored</th><th>healthy</th><th>validated</th><th>RTO</th><th>objective</th><th>verdict</th><th>why</th><th>backups</th></tr>\n");
    for s in &m.services {
        let backups: Vec<String> = s
            .backups
            .iter()
            .map(|b| {
                format!(
                    "<code>{}</code> sha256 <code>{}</code> ({} bytes)",
                    escape(&b.path),
                    escape(&b.sha256),
                    b.bytes
                )
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}<td>{}</td><td>{}</td></tr>",
            escape(&s.service),
            escape(s.tier.as_deref().unwrap_or("—")),
            t(s.fault),
            t(s.detected),
            t(s.restore_started),
            t(s.restored),
            t(s.healthy),
            t(s.validated),
            d(s.rto),
            d(s.objective),
            verdict_cell(s.verdict),
            escape(s.reason.as_deref().unwrap_or("")),
            backups.join("<br>")
        );
    }
    h.push_str("</table>\n<h2>RPO per data class</h2>\n<table><tr><th>class</th><th>points</th><th>RPO (worst)</th><th>objective</th><th>verdict</th><th>fault</th><th>last good data</th><th>service</th><th>why</th></tr>\n");
    for c in &m.classes {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.class),
            c.points,
            d(c.rpo),
            d(c.objective),
            verdict_cell(c.verdict),
            t(c.fault),
            t(c.last_good),
            escape(c.service.as_deref().unwrap_or("—")),
            escape(c.reason.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>\n");
    let failing: Vec<String> = m
        .services
        .iter()
        .filter(|s| s.verdict != Verdict::Met)
        .map(|s| {
            format!(
                "{} RTO {}: {}",
                s.service,
                s.verdict.as_str(),
                s.reason.clone().unwrap_or_else(|| format!(
                    "{} against {}",
                    d(s.rto),
                    d(s.objective)
                ))
            )
        })
        .chain(
            m.classes
                .iter()
                .filter(|c| c.verdict != Verdict::Met)
                .map(|c| {
                    format!(
                        "{} RPO {}: {}",
                        c.class,
                        c.verdict.as_str(),
                        c.reason.clone().unwrap_or_else(|| format!(
                            "{} against {}",
                            d(c.rpo),
                            d(c.objective)
                        ))
                    )
                }),
        )
        .collect();
    if !p.breaks.is_empty() || !m.problems.is_empty() || !failing.is_empty() {
        h.push_str("<h2>Problems</h2>\n<ul>\n");
        for f in &failing {
            let _ = writeln!(h, "<li class=\"bad\">{}</li>", escape(f));
        }
        for b in p.breaks {
            let _ = writeln!(
                h,
                "<li class=\"bad\">record line {}: {}: {}</li>",
                b.line,
                b.kind.as_str(),
                escape(&b.message)
            );
        }
        for pr in &m.problems {
            let _ = writeln!(h, "<li class=\"bad\">{}</li>", escape(pr));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectives::RtoEnd;

    #[test]
    fn names_are_escaped() {
        let m = Measured {
            rto_end: RtoEnd::Healthy,
            services: Vec::new(),
            classes: Vec::new(),
            problems: vec!["<script>alert(1)</script> & more".into()],
        };
        let page = render(&Page {
            drill: "d\"<blink>",
            record: "r&.jsonl",
            events: 0,
            backfilled: 0,
            head: None,
            breaks: &[],
            measured: &m,
            pass: false,
        });
        assert!(!page.contains("<script>") && !page.contains("<blink>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
        assert!(page.contains("d&quot;&lt;blink&gt;") && page.contains("r&amp;.jsonl"));
    }
}
