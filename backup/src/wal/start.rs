//! Where recovery starts and which timelines it follows: base backup start points (backup_manifest
//! `WAL-Ranges`, `backup_label`, `*.backup` history files, a `base.tar`'s first member) and
//! timeline history files.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use super::name::Lsn;

/// The WAL a base backup needs: from `start` on `tli` to at least `end` (the point where the
/// restored cluster becomes consistent), when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStart {
    pub start: Lsn,
    pub tli: u32,
    pub end: Option<Lsn>,
    /// Which file said so, for the report.
    pub source: String,
}

/// Reads a backup's start point from `path`: a pg_basebackup output directory (its
/// `backup_manifest`, else `backup_label`, else `base.tar`'s `backup_label`), a `backup_manifest`,
/// a `backup_label` or `*.backup` file, or a `base.tar` / `base.tar.gz`. `Ok(Err(why))` when the
/// files hold none.
pub fn backup_start(path: &Path) -> io::Result<Result<BackupStart, String>> {
    if path.is_dir() {
        for name in ["backup_manifest", "backup_label", "base.tar", "base.tar.gz"] {
            let p = path.join(name);
            if p.is_file() {
                return backup_start(&p);
            }
        }
        return Ok(Err(format!(
            "{}: no backup_manifest, backup_label or base.tar(.gz) in this directory",
            path.display()
        )));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let shown = path.display().to_string();
    if name.ends_with(".tar") || name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let file = fs::File::open(path)?;
        // pg_basebackup -Ft -z writes base.tar.gz.
        let mut f: Box<dyn Read> = if name.ends_with(".tar") {
            Box::new(file)
        } else {
            Box::new(flate2::read::GzDecoder::new(file))
        };
        let mut head = [0u8; 512];
        if f.read_exact(&mut head).is_err() {
            return Ok(Err(format!("{shown}: shorter than one tar header")));
        }
        let member = String::from_utf8_lossy(head.get(..100).unwrap_or(&[]))
            .trim_end_matches('\0')
            .to_string();
        let size = head
            .get(124..136)
            .map(|f| {
                String::from_utf8_lossy(f)
                    .trim_matches(|c| c == '\0' || c == ' ')
                    .to_string()
            })
            .and_then(|s| u64::from_str_radix(&s, 8).ok());
        return Ok(match size {
            Some(size) if member == "backup_label" && size < 1 << 20 => {
                let mut text = String::new();
                f.take(size).read_to_string(&mut text)?;
                label(&text, &format!("{shown}:backup_label"))
            }
            _ => Err(format!(
                "{shown}: its first member is {member:?}, not backup_label (pg_basebackup writes that first)"
            )),
        });
    }
    let bytes = fs::read(path)?;
    if name == "backup_manifest" || bytes.first() == Some(&b'{') {
        return Ok(manifest(&bytes, &shown));
    }
    Ok(label(&String::from_utf8_lossy(&bytes), &shown))
}

fn manifest(bytes: &[u8], shown: &str) -> Result<BackupStart, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("{shown}: not JSON: {e}"))?;
    let ranges = v
        .get("WAL-Ranges")
        .and_then(|r| r.as_array())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| format!("{shown}: no WAL-Ranges"))?;
    let field = |i: usize, k: &str| ranges.get(i).and_then(|r| r.get(k));
    let lsn = |i: usize, k: &str| {
        field(i, k)
            .and_then(|s| s.as_str())
            .and_then(Lsn::parse)
            .ok_or_else(|| format!("{shown}: WAL-Ranges entry {i} has no valid {k}"))
    };
    let start = lsn(0, "Start-LSN")?;
    let end = lsn(ranges.len() - 1, "End-LSN")?;
    let tli = field(0, "Timeline")
        .and_then(|t| t.as_u64())
        .and_then(|t| u32::try_from(t).ok())
        .ok_or_else(|| format!("{shown}: WAL-Ranges entry 0 has no Timeline"))?;
    Ok(BackupStart {
        start,
        tli,
        end: Some(end),
        source: shown.to_string(),
    })
}

/// `backup_label` or a `.backup` history file: `START WAL LOCATION: 0/2000028 (file ...)`,
/// `START TIMELINE: 1`, and in history files `STOP WAL LOCATION`.
fn label(text: &str, shown: &str) -> Result<BackupStart, String> {
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().split(' ').next().unwrap_or("").to_string())
    };
    let start = value("START WAL LOCATION:")
        .and_then(|v| Lsn::parse(&v))
        .ok_or_else(|| format!("{shown}: no START WAL LOCATION line"))?;
    // Labels from before PostgreSQL 11 have no START TIMELINE: the name in "(file ...)" has it.
    let tli = value("START TIMELINE:")
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            let l = text
                .lines()
                .find(|l| l.starts_with("START WAL LOCATION:"))?;
            let f = l.split("(file ").nth(1)?;
            u32::from_str_radix(f.get(..8)?, 16).ok()
        })
        .ok_or_else(|| format!("{shown}: no START TIMELINE"))?;
    Ok(BackupStart {
        start,
        tli,
        end: value("STOP WAL LOCATION:").and_then(|v| Lsn::parse(&v)),
        source: shown.to_string(),
    })
}

/// One line of a history file: `parent` was left for the next timeline at `switch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ancestor {
    pub tli: u32,
    pub switch: Lsn,
}

/// Parses `TTTTTTTT.history`: lines `parentTLI <tab> switchpoint <tab> reason`, `#` comments.
pub fn parse_history(text: &str) -> Result<Vec<Ancestor>, String> {
    let mut v: Vec<Ancestor> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split_whitespace();
        let tli = f.next().and_then(|t| t.parse::<u32>().ok());
        let switch = f.next().and_then(Lsn::parse);
        match (tli, switch) {
            (Some(tli), Some(switch)) => {
                if v.last().is_some_and(|p| p.tli >= tli || p.switch > switch) {
                    return Err(format!("line {}: timelines must increase", i + 1));
                }
                v.push(Ancestor { tli, switch });
            }
            _ => return Err(format!("line {}: not `TLI  X/Y  reason`: {line:?}", i + 1)),
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_manifests_and_histories() {
        let l = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
                 CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\n\
                 START TIMELINE: 1\nSTOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n";
        let b = label(l, "x").unwrap();
        assert_eq!(
            (b.start, b.tli, b.end),
            (Lsn(0x2000028), 1, Some(Lsn(0x2000100)))
        );
        assert!(label("nothing", "x").is_err());
        let m = br#"{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [],
            "WAL-Ranges": [{ "Timeline": 2, "Start-LSN": "0/5000028", "End-LSN": "0/5000138" }]}"#;
        let b = manifest(m, "m").unwrap();
        assert_eq!(
            (b.start, b.tli, b.end),
            (Lsn(0x5000028), 2, Some(Lsn(0x5000138)))
        );
        let h = parse_history("1\t0/3000150\tno recovery target specified\n\n2\t0/5000000\tx\n")
            .unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[1],
            Ancestor {
                tli: 2,
                switch: Lsn(0x5000000)
            }
        );
        assert!(parse_history("2\t0/5\n1\t0/6\n").is_err());
        assert!(parse_history("garbage\n").is_err());
    }
}
