//! `.sha256` sidecars in the three forms people produce:
//!
//! - GNU coreutils `sha256sum`: `HASH  name` (text mode) or `HASH *name` (binary mode);
//! - BSD `sha256 -r`'s sibling, `shasum --tag`: `SHA256 (name) = HASH`;
//! - a bare `HASH` alone, which names the file the sidecar is named after (`x.dump.sha256` → `x.dump`).
//!
//! A sidecar may name several files. Names are taken as written (relative to the sidecar's directory).

/// One expected digest, as the sidecar wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file it names; `None` for the bare-hash form.
    pub name: Option<String>,
    /// Lower-case hex, 64 characters.
    pub sha256: String,
    /// 1-based line number in the sidecar.
    pub line: usize,
}

/// A line that is in none of the forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub text: String,
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses a sidecar's text. Blank lines and `#` comments are skipped.
pub fn parse(text: &str) -> (Vec<Entry>, Vec<BadLine>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_line(trimmed) {
            Some((name, hash)) => entries.push(Entry {
                name,
                sha256: hash.to_ascii_lowercase(),
                line: i + 1,
            }),
            None => bad.push(BadLine {
                line: i + 1,
                text: line.chars().take(200).collect(),
            }),
        }
    }
    (entries, bad)
}

fn parse_line(line: &str) -> Option<(Option<String>, &str)> {
    if is_hash(line) {
        return Some((None, line));
    }
    // BSD: SHA256 (name) = hash
    if let Some(rest) = line.strip_prefix("SHA256 (") {
        let (name, hash) = rest.rsplit_once(") = ")?;
        return is_hash(hash.trim()).then(|| (Some(name.to_string()), hash.trim()));
    }
    // GNU: hash, one space, then a space (text) or '*' (binary), then the name.
    let hash = line.get(..64)?;
    if !is_hash(hash) {
        return None;
    }
    let rest = line.get(64..)?;
    let name = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))?;
    (!name.is_empty()).then(|| (Some(name.to_string()), hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn three_forms_and_garbage() {
        let text = format!(
            "{H}  a.dump\n{} *b.rdb\nSHA256 (c d.aof) = {H}\n\n# c\n{H}\nnot a line\n{H} x\n",
            H.to_uppercase()
        );
        let (e, bad) = parse(&text);
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].name.as_deref(), Some("a.dump"));
        assert_eq!(e[1].name.as_deref(), Some("b.rdb"));
        assert_eq!(e[1].sha256, H);
        assert_eq!(e[2].name.as_deref(), Some("c d.aof"));
        assert_eq!(e[3].name, None);
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![7, 8]);
    }
}
