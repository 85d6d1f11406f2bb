//! A borrowing JSON scanner: the replay's per-event reader.
//!
//! Why not serde_json: building `Value`s (or even driving serde's visitor over strings) was most
//! of the per-event cost, and the mapping needs only a handful of members, most of them strings
//! that end up as bytes in a COPY row (a uuid, a timestamp). This scanner validates the whole
//! document to RFC 8259 — the same documents serde_json accepts, plus the same rejections of
//! lone surrogate escapes and of nesting deeper than 128 — and hands out [`Lit`]s: views into
//! the message bytes, unescaped only when a string actually has escapes.
//!
//! The differential tests in `project.rs` hold it to serde_json's answers on MS5 events and on
//! thousands of random mutations of them.

use std::borrow::Cow;

/// serde_json's limit: deeper documents are refused, never a stack overflow.
pub const MAX_DEPTH: usize = 128;

/// Where a scan failed: the byte offset into the document and why. Small and `Copy` on
/// purpose: every scanning call returns a `Result` of it or of a [`Span`], and at 16 bytes that
/// result can travel in registers instead of through memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    pub at: u32,
    pub why: Why,
}

/// The reasons a document is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    TrailingCharacters,
    EofInString,
    BadUtf8,
    ControlCharacter,
    BadUnicodeEscape,
    LoneLeadingSurrogate,
    LoneTrailingSurrogate,
    BadEscape,
    BadNumber,
    ExpectedValue,
    EofInValue,
    ExpectedName,
    TooDeep,
    EofInContainer,
    ExpectedCommaOrEnd,
    ExpectedColon,
    TooLarge,
}

impl Why {
    pub fn text(self) -> &'static str {
        match self {
            Why::TrailingCharacters => "trailing characters",
            Why::EofInString => "EOF while parsing a string",
            Why::BadUtf8 => "invalid UTF-8 in a string",
            Why::ControlCharacter => "control character in a string",
            Why::BadUnicodeEscape => "invalid \\u escape",
            Why::LoneLeadingSurrogate => "lone leading surrogate in hex escape",
            Why::LoneTrailingSurrogate => "unexpected end of hex escape (lone trailing surrogate)",
            Why::BadEscape => "invalid escape",
            Why::BadNumber => "invalid number",
            Why::ExpectedValue => "expected a value",
            Why::EofInValue => "EOF while parsing a value",
            Why::ExpectedName => "expected a member name",
            Why::TooDeep => "recursion limit exceeded",
            Why::EofInContainer => "EOF while parsing a list or object",
            Why::ExpectedCommaOrEnd => "expected ',' or the container's end",
            Why::ExpectedColon => "expected ':'",
            Why::TooLarge => "document larger than 4 GiB",
        }
    }
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.why.text(), self.at)
    }
}

/// The kind of a scanned value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    True,
    False,
    Num,
    /// A string; `escaped` when its text has backslash escapes (then it must be unescaped).
    Str {
        escaped: bool,
    },
    Obj,
    Arr,
}

/// One value's position in the document: `start..end` is its whole JSON text (quotes included
/// for strings). Positions instead of slices so a slot vector can be reused between messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub kind: Kind,
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// The value this span names in `doc` (the document it was scanned from).
    pub fn lit<'a>(&self, doc: &'a [u8]) -> Lit<'a> {
        let text = doc
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default();
        match self.kind {
            Kind::Null => Lit::Null,
            Kind::True => Lit::Bool(true),
            Kind::False => Lit::Bool(false),
            // Number grammar is ASCII: this cannot fail.
            Kind::Num => Lit::Num(std::str::from_utf8(text).unwrap_or("")),
            Kind::Str { escaped } => Lit::Str {
                raw: text
                    .get(1..text.len().saturating_sub(1))
                    .unwrap_or_default(),
                escaped,
            },
            Kind::Obj => Lit::Obj(text),
            Kind::Arr => Lit::Arr(text),
        }
    }
}

/// A scanned JSON value, borrowed from the document. Strings and containers stay bytes until
/// a column asks for text: the scan validated their UTF-8, so [`Lit::str`] and [`Lit::json`]
/// cannot fail, and values nobody reads are never converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lit<'a> {
    Null,
    Bool(bool),
    /// The number's text, valid JSON number grammar.
    Num(&'a str),
    /// The string's text between the quotes, still escaped when `escaped`.
    Str {
        raw: &'a [u8],
        escaped: bool,
    },
    /// The object's whole text.
    Obj(&'a [u8]),
    /// The array's whole text.
    Arr(&'a [u8]),
}

impl<'a> Lit<'a> {
    /// The bytes of a string's value (valid UTF-8): borrowed unless it had escapes. `None`
    /// for other kinds. What the encoder uses: uuids, times and text columns want bytes.
    pub fn bytes(&self) -> Option<Cow<'a, [u8]>> {
        match *self {
            Lit::Str {
                raw,
                escaped: false,
            } => Some(Cow::Borrowed(raw)),
            Lit::Str { raw, escaped: true } => Some(Cow::Owned(unescape(text(raw)).into_bytes())),
            _ => None,
        }
    }

    /// The value of a string; borrowed unless it had escapes. `None` for other kinds.
    pub fn str(&self) -> Option<Cow<'a, str>> {
        match *self {
            Lit::Str { raw, escaped } => {
                let raw = text(raw);
                Some(if escaped {
                    Cow::Owned(unescape(raw))
                } else {
                    Cow::Borrowed(raw)
                })
            }
            _ => None,
        }
    }

    /// The value as compact JSON text, numbers as serde_json writes them: how a non-string
    /// value becomes text (a text column, a gap key). `None` for a number beyond f64.
    pub fn compact_json(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.json())
            .ok()
            .map(|v| v.to_string())
    }

    /// The value's JSON text as it appears in the document.
    pub fn json(&self) -> Cow<'a, str> {
        match *self {
            Lit::Null => "null".into(),
            Lit::Bool(true) => "true".into(),
            Lit::Bool(false) => "false".into(),
            Lit::Num(t) => t.into(),
            Lit::Obj(t) | Lit::Arr(t) => text(t).into(),
            Lit::Str { raw, .. } => format!("\"{}\"", text(raw)).into(),
        }
    }
}

/// Bytes the scan validated as UTF-8.
fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// Unescapes a string body the scanner validated (so every escape is well formed).
fn unescape(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(rest) = raw.get(i..) {
        let Some(off) = rest.find('\\') else {
            out.push_str(rest);
            break;
        };
        out.push_str(rest.get(..off).unwrap_or_default());
        i += off + 1;
        let c = b.get(i).copied().unwrap_or(b'\\');
        i += 1;
        match c {
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let hi = hex4(b, i).unwrap_or(0xfffd);
                i += 4;
                let cp = if (0xd800..0xdc00).contains(&hi) {
                    // Validated: a low surrogate escape follows.
                    let lo = hex4(b, i + 2).unwrap_or(0xdc00);
                    i += 6;
                    0x10000 + ((hi - 0xd800) << 10) + lo.saturating_sub(0xdc00)
                } else {
                    hi
                };
                out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
            }
            other => out.push(other as char),
        }
    }
    out
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let h = b.get(at..at + 4)?;
    h.iter().try_fold(0u32, |acc, &c| {
        let d = (c as char).to_digit(16)?;
        Some(acc << 4 | d)
    })
}

/// Why PostgreSQL's jsonb input would refuse a JSON text the scanner accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonbRefusal {
    /// An escaped NUL (`\u0000`) in a string: jsonb cannot store it.
    Nul,
    /// A number beyond `numeric`'s range (its text).
    Numeric(String),
}

/// Whether PostgreSQL would refuse `json` (already validated by the scanner) as jsonb. Either
/// refusal would fail the whole COPY, so the caller makes the message a dead letter instead.
/// Checked only for jsonb columns: the text is walked once, strings skipped.
pub fn jsonb_refusal(json: &str) -> Option<JsonbRefusal> {
    let b = json.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return None,
                        Some(b'\\') => {
                            if b.get(i + 1) == Some(&b'u') && b.get(i + 2..i + 6) == Some(b"0000") {
                                return Some(JsonbRefusal::Nul);
                            }
                            i += 2;
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = b.get(i) {
                    i += 1;
                }
                let num = json.get(start..i).unwrap_or_default();
                if !pg_numeric_fits(num) {
                    return Some(JsonbRefusal::Numeric(num.to_string()));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Whether a JSON number fits PostgreSQL's `numeric` (what jsonb stores numbers as): at most
/// 131,072 digits before the decimal point (weight 32,767 in base 10,000) and 16,383 after it
/// (the display scale), with the exponent applied as `numeric_in` applies it.
pub fn pg_numeric_fits(num: &str) -> bool {
    let s = num.strip_prefix('-').unwrap_or(num);
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(p) => match s.get(p + 1..).map(str::parse::<i64>) {
            Some(Ok(e)) => (s.get(..p).unwrap_or_default(), e),
            _ => return false,
        },
        None => (s, 0),
    };
    if exp.abs() >= i64::from(i32::MAX / 2) {
        return false;
    }
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if frac.len() as i64 - exp > 16_383 {
        return false;
    }
    let weight = match int.bytes().position(|c| c != b'0') {
        Some(p) => (int.len() - p - 1) as i64 + exp,
        None => match frac.bytes().position(|c| c != b'0') {
            Some(p) => exp - p as i64 - 1,
            None => return true, // zero
        },
    };
    weight < 131_072
}

/// The scanner over one document's bytes. UTF-8 is checked string by string, and only for
/// strings with non-ASCII bytes: outside strings the grammar admits ASCII alone.
pub struct Scanner<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

const SPLAT: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

impl<'a> Scanner<'a> {
    pub fn new(b: &'a [u8]) -> Scanner<'a> {
        Scanner { b, pos: 0 }
    }

    pub fn err<T>(&self, why: Why) -> Result<T, ScanError> {
        Err(ScanError {
            at: self.pos as u32,
            why,
        })
    }

    #[inline]
    pub fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Consumes `c` (after whitespace) or fails with `what`.
    #[inline]
    pub fn expect(&mut self, c: u8, what: Why) -> Result<(), ScanError> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(what)
        }
    }

    /// After the whole document: only whitespace may remain.
    pub fn end(&mut self) -> Result<(), ScanError> {
        self.ws();
        if self.pos == self.b.len() {
            Ok(())
        } else {
            self.err(Why::TrailingCharacters)
        }
    }

    /// Scans a string whose opening quote is at `pos`; returns its span.
    pub fn string(&mut self) -> Result<Span, ScanError> {
        let b = self.b;
        let start = self.pos;
        let mut i = start + 1;
        let mut escaped = false;
        let mut high = 0u64;
        loop {
            // Eight bytes at a time to the first quote, backslash or control character. The
            // lowest flagged byte of each test is exact (borrows only run upwards).
            while let Some(chunk) = b.get(i..i + 8) {
                let Ok(a) = <[u8; 8]>::try_from(chunk) else {
                    break;
                };
                let w = u64::from_le_bytes(a);
                high |= w;
                let ctrl = w.wrapping_sub(SPLAT * 0x20) & !w;
                let q = w ^ (SPLAT * b'"' as u64);
                let quote = q.wrapping_sub(SPLAT) & !q;
                let bs = w ^ (SPLAT * b'\\' as u64);
                let back = bs.wrapping_sub(SPLAT) & !bs;
                let hit = (ctrl | quote | back) & HIGH;
                if hit != 0 {
                    i += (hit.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            match b.get(i) {
                None => {
                    self.pos = i;
                    return self.err(Why::EofInString);
                }
                Some(b'"') => {
                    if high & HIGH != 0
                        && b.get(start + 1..i)
                            .is_none_or(|t| std::str::from_utf8(t).is_err())
                    {
                        self.pos = start;
                        return self.err(Why::BadUtf8);
                    }
                    self.pos = i + 1;
                    return Ok(Span {
                        kind: Kind::Str { escaped },
                        start: start as u32,
                        end: (i + 1) as u32,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos = i;
                    self.escape()?;
                    i = self.pos;
                }
                Some(c) if *c < 0x20 => {
                    self.pos = i;
                    return self.err(Why::ControlCharacter);
                }
                Some(c) => {
                    high |= *c as u64;
                    i += 1;
                }
            }
        }
    }

    /// One escape sequence at `pos` (the backslash).
    fn escape(&mut self) -> Result<(), ScanError> {
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                let Some(cp) = hex4(self.b, self.pos + 1) else {
                    return self.err(Why::BadUnicodeEscape);
                };
                self.pos += 5;
                match cp {
                    0xd800..=0xdbff => {
                        if self.b.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return self.err(Why::LoneLeadingSurrogate);
                        }
                        match hex4(self.b, self.pos + 2) {
                            Some(0xdc00..=0xdfff) => {
                                self.pos += 6;
                                Ok(())
                            }
                            _ => self.err(Why::LoneLeadingSurrogate),
                        }
                    }
                    0xdc00..=0xdfff => self.err(Why::LoneTrailingSurrogate),
                    _ => Ok(()),
                }
            }
            _ => self.err(Why::BadEscape),
        }
    }

    /// A number at `pos`, by JSON's grammar.
    fn number(&mut self) -> Result<Span, ScanError> {
        let start = self.pos;
        let digits = |s: &mut Scanner<'_>| {
            let from = s.pos;
            while let Some(b'0'..=b'9') = s.peek() {
                s.pos += 1;
            }
            s.pos - from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return self.err(Why::BadNumber),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return self.err(Why::BadNumber);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.err(Why::BadNumber);
            }
        }
        Ok(Span {
            kind: Kind::Num,
            start: start as u32,
            end: self.pos as u32,
        })
    }

    fn word(&mut self, w: &'static [u8], kind: Kind) -> Result<Span, ScanError> {
        let start = self.pos;
        if self.b.get(start..start + w.len()) == Some(w) {
            self.pos += w.len();
            Ok(Span {
                kind,
                start: start as u32,
                end: self.pos as u32,
            })
        } else {
            self.err(Why::ExpectedValue)
        }
    }

    /// Scans any value at `pos` (after whitespace) that is not an object or array, or skips
    /// and validates one that is; `depth` counts the containers around it.
    pub fn scalar_or_skip(&mut self, depth: usize) -> Result<Span, ScanError> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'{') => self.container(depth, b'}', Kind::Obj, |s, _| s.skip_member(depth + 1)),
            Some(b'[') => self.container(depth, b']', Kind::Arr, |s, _| {
                s.scalar_or_skip(depth + 1).map(|_| ())
            }),
            Some(b't') => self.word(b"true", Kind::True),
            Some(b'f') => self.word(b"false", Kind::False),
            Some(b'n') => self.word(b"null", Kind::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            None => self.err(Why::EofInValue),
            Some(_) => self.err(Why::ExpectedValue),
        }
    }

    fn skip_member(&mut self, depth: usize) -> Result<(), ScanError> {
        self.key()?;
        self.scalar_or_skip(depth).map(|_| ())
    }

    /// A member name and its colon; returns the name's span.
    pub fn key(&mut self) -> Result<Span, ScanError> {
        self.ws();
        if self.peek() != Some(b'"') {
            return self.err(Why::ExpectedName);
        }
        let k = self.string()?;
        self.expect(b':', Why::ExpectedColon)?;
        Ok(k)
    }

    /// An object or array at `pos`; `item` scans one member or element (it gets the index).
    /// Refuses nesting deeper than [`MAX_DEPTH`].
    #[inline]
    pub fn container<F>(
        &mut self,
        depth: usize,
        close: u8,
        kind: Kind,
        mut item: F,
    ) -> Result<Span, ScanError>
    where
        F: FnMut(&mut Scanner<'a>, usize) -> Result<(), ScanError>,
    {
        if depth + 1 >= MAX_DEPTH {
            return self.err(Why::TooDeep);
        }
        let start = self.pos;
        self.pos += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(Span {
                kind,
                start: start as u32,
                end: self.pos as u32,
            });
        }
        let mut i = 0;
        loop {
            item(self, i)?;
            i += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(Span {
                        kind,
                        start: start as u32,
                        end: self.pos as u32,
                    });
                }
                None => return self.err(Why::EofInContainer),
                Some(_) => return self.err(Why::ExpectedCommaOrEnd),
            }
        }
    }
}

/// Byte equality for member names, inline: names are short, and a `memcmp` call per
/// candidate showed as 5 % of the narrow preset's time.
#[inline]
pub fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a, b);
    while let (Some((xa, xr)), Some((ya, yr))) =
        (x.split_first_chunk::<8>(), y.split_first_chunk::<8>())
    {
        if xa != ya {
            return false;
        }
        (x, y) = (xr, yr);
    }
    x.iter().zip(y).all(|(p, q)| p == q)
}

/// Two member names equal after unescaping.
pub fn same_name(a: &Lit<'_>, b: &Lit<'_>) -> bool {
    match (a, b) {
        (
            Lit::Str {
                raw: x,
                escaped: false,
            },
            Lit::Str {
                raw: y,
                escaped: false,
            },
        ) => x == y,
        _ => a.bytes() == b.bytes(),
    }
}

/// A member name equal to `want` after unescaping.
pub fn name_is(name: &Lit<'_>, want: &str) -> bool {
    match name {
        Lit::Str {
            raw,
            escaped: false,
        } => *raw == want.as_bytes(),
        _ => name.bytes().as_deref() == Some(want.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(doc: &str) -> Result<Span, ScanError> {
        let mut s = Scanner::new(doc.as_bytes());
        let v = s.scalar_or_skip(0)?;
        s.end()?;
        Ok(v)
    }

    #[test]
    fn accepts_and_refuses_like_serde_json() {
        let cases = [
            r#"{"a":[1,-0,0.5,1e5,1E-5,-1.25e+3,true,false,null,"x\n\u00e9\ud83d\ude00"],"b":{}}"#,
            "[]",
            " 12 ",
            "\"\\/\"",
            "{\"a\" : 1 , \"b\":[ ]}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:2}",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\ud800\\u0041\"",
            "\"\\udc00\"",
            "\"\\u12\"",
            "\"a\tb\"",
            "tru",
            "nul",
            "[1 2]",
            "",
            "  ",
            "{\"a\":1} {",
            "\"abcdefghijklmnopqrstuvwxyz\"",
            "\"abcdefgh\\\"ijklmnop\"",
            "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
        ];
        for c in cases {
            let ours = scan(c).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(c).is_ok();
            assert_eq!(ours, theirs, "{c:?}");
        }
        for n in [100, 127, 128, 129, 5000] {
            let deep = "[".repeat(n) + &"]".repeat(n);
            let theirs = serde_json::from_str::<serde_json::Value>(&deep).is_ok();
            assert_eq!(scan(&deep).is_ok(), theirs, "depth {n}");
        }
    }

    #[test]
    fn utf8_is_checked_in_every_string() {
        for (doc, ok) in [
            (
                &b"\"caf\xc3\xa9 long enough to take the fast path\""[..],
                true,
            ),
            (b"\"caf\xc3\"", false),
            (b"{\"k\xff\":1}", false),
            (b"[\"0123456789\xe2\x82\", 1]", false),
            (b"[\"0123456789abcdef\xe2\x82\xac\"]", true),
            (b"[1]\xff", false),
            (b"[\xc3\xa9]", false),
        ] {
            let mut s = Scanner::new(doc);
            let ours = s.scalar_or_skip(0).and_then(|_| s.end()).is_ok();
            assert_eq!(ours, ok, "{}", String::from_utf8_lossy(doc));
            assert_eq!(serde_json::from_slice::<serde_json::Value>(doc).is_ok(), ok);
        }
    }

    #[test]
    fn results_fit_in_two_registers() {
        assert!(std::mem::size_of::<Result<Span, ScanError>>() <= 16);
    }

    #[test]
    fn strings_unescape_like_serde_json() {
        for c in [
            r#""plain""#,
            r#""tab\there \"q\" back\\slash \/ \b\f\n\r""#,
            r#""\u00e9\u20AC\ud83d\ude00 mixed é""#,
            r#""""#,
        ] {
            let span = scan(c).unwrap();
            let lit = span.lit(c.as_bytes());
            let want: String = serde_json::from_str(c).unwrap();
            assert_eq!(lit.str().unwrap(), want, "{c}");
        }
    }

    #[test]
    fn nul_escapes_are_found_only_in_strings() {
        let nul = Some(JsonbRefusal::Nul);
        assert_eq!(jsonb_refusal(r#"{"a":"x\u0000"}"#), nul);
        assert_eq!(jsonb_refusal(r#"{"a":"x\\u0000"}"#), None);
        assert_eq!(jsonb_refusal(r#"{"a":"x\\\u0000"}"#), nul);
        assert_eq!(jsonb_refusal(r#"{"a":"\u0001"}"#), None);
        assert_eq!(jsonb_refusal(r#"{"1e999999":"2e999999"}"#), None);
    }

    /// The limits as PostgreSQL 15 answered `SELECT '{"a":N}'::jsonb` for each N.
    #[test]
    fn numbers_beyond_postgres_numeric_are_found() {
        for ok in [
            "0",
            "-0",
            "12.50",
            "1e400",
            "1e131071",
            "9999e131068",
            "1e-16383",
            "1.5e-16382",
            "-123456789012345678901234567890.5",
            "0e5",
            "1E+3",
            "0.0001e4",
        ] {
            assert!(pg_numeric_fits(ok), "{ok}");
            assert_eq!(jsonb_refusal(&format!("[{ok}]")), None, "{ok}");
        }
        for bad in [
            "1e131072",
            "10000e131068",
            "1e1000000",
            "1e-16384",
            "1e-1000000",
            "0e-20000",
            "1e99999999999999999999",
            "-1e131072",
        ] {
            assert!(!pg_numeric_fits(bad), "{bad}");
            assert_eq!(
                jsonb_refusal(&format!(r#"{{"k":[1,"s",{bad}]}}"#)),
                Some(JsonbRefusal::Numeric(bad.to_string())),
                "{bad}"
            );
        }
    }
}
