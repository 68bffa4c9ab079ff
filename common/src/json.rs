//! JSON as PostgreSQL reads and prints it. `json` keeps the text it was given (checked);
//! `jsonb` is the parsed value in canonical form: object keys sorted by length then bytes
//! with the last of duplicate keys kept, numbers as `numeric` prints them (`1.5e1` is `15`),
//! and printed as `{"a": 1, "b": [1, 2]}`.

use std::fmt::Write;

/// A parsed JSON value. Numbers keep their (canonical) text, so no precision is lost.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Why a text is not JSON, worded as PostgreSQL's DETAIL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    pub detail: String,
    /// A `\u0000` escape, which PostgreSQL refuses with 22P05 rather than 22P02.
    pub unsupported_escape: bool,
}

/// Nesting deeper than this is refused (PostgreSQL stops at its stack depth limit).
const MAX_DEPTH: usize = 6400;

/// Parses `text` as JSON, with jsonb's canonical form when `canonical`.
pub fn parse(text: &str, canonical: bool) -> Result<Json, JsonError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        canonical,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.error(format!(
            "Expected end of input, but found \"{}\".",
            p.token()
        )));
    }
    Ok(v)
}

/// `text` as jsonb prints it, or why it is not JSON.
pub fn jsonb_text(text: &str) -> Result<String, JsonError> {
    parse(text, true).map(|v| v.to_string())
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    canonical: bool,
}

impl Parser<'_> {
    fn error(&self, detail: String) -> JsonError {
        JsonError {
            detail,
            unsupported_escape: false,
        }
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// The token at the current position, for messages.
    fn token(&self) -> String {
        let rest = &self.text[self.i.min(self.text.len())..];
        let end = rest
            .char_indices()
            .find(|(i, c)| *i > 0 && (c.is_whitespace() || ",:]}[{\"".contains(*c)))
            .map_or(rest.len(), |(i, _)| i);
        rest[..end.max(rest.chars().next().map_or(0, char::len_utf8))].to_string()
    }

    fn expect_value(&self) -> JsonError {
        if self.i >= self.s.len() {
            self.error("The input string ended unexpectedly.".into())
        } else {
            self.error(format!("Token \"{}\" is invalid.", self.token()))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("JSON nested too deeply.".into()));
        }
        match self.s.get(self.i) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => {
                for (word, v) in [
                    ("true", Json::Bool(true)),
                    ("false", Json::Bool(false)),
                    ("null", Json::Null),
                ] {
                    if self.text[self.i..].starts_with(word)
                        && !self
                            .s
                            .get(self.i + word.len())
                            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    {
                        self.i += word.len();
                        return Ok(v);
                    }
                }
                Err(self.expect_value())
            }
            None => Err(self.expect_value()),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.i += 1;
        let mut fields: Vec<(String, Json)> = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(if self.i >= self.s.len() {
                    self.expect_value()
                } else {
                    self.error(format!(
                        "Expected string or \"}}\", but found \"{}\".",
                        self.token()
                    ))
                });
            }
            let key = self.string()?;
            self.ws();
            if self.s.get(self.i) != Some(&b':') {
                return Err(if self.i >= self.s.len() {
                    self.expect_value()
                } else {
                    self.error(format!("Expected \":\", but found \"{}\".", self.token()))
                });
            }
            self.i += 1;
            self.ws();
            let value = self.value(depth + 1)?;
            fields.push((key, value));
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                None => return Err(self.expect_value()),
                Some(_) => {
                    return Err(self.error(format!(
                        "Expected \",\" or \"}}\", but found \"{}\".",
                        self.token()
                    )));
                }
            }
        }
        if self.canonical {
            // The last of duplicate keys wins; keys sort by length, then bytes.
            let mut seen = std::collections::HashSet::with_capacity(fields.len());
            let mut kept: Vec<(String, Json)> = Vec::with_capacity(fields.len());
            for (k, v) in fields.into_iter().rev() {
                if seen.insert(k.clone()) {
                    kept.push((k, v));
                }
            }
            kept.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            fields = kept;
        }
        Ok(Json::Object(fields))
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                None => return Err(self.expect_value()),
                Some(_) => {
                    return Err(self.error(format!(
                        "Expected \",\" or \"]\", but found \"{}\".",
                        self.token()
                    )));
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .text
            .get(self.i..self.i + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                self.error("\"\\u\" must be followed by four hexadecimal digits.".into())
            })?;
        self.i += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("bad \\u escape".into()))
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && !matches!(self.s[self.i], b'"' | b'\\') {
                if self.s[self.i] < 0x20 {
                    return Err(self.error(format!(
                        "Character with value 0x{:02x} must be escaped.",
                        self.s[self.i]
                    )));
                }
                self.i += 1;
            }
            out.push_str(&self.text[start..self.i]);
            match self.s.get(self.i) {
                None => return Err(self.expect_value()),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => {}
            }
            self.i += 1;
            let Some(&e) = self.s.get(self.i) else {
                return Err(self.expect_value());
            };
            self.i += 1;
            match e {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let mut code = self.hex4()?;
                    if (0xD800..0xDC00).contains(&code) {
                        if !self.text[self.i..].starts_with("\\u") {
                            return Err(self.error(
                                "Unicode low surrogate must follow a high surrogate.".into(),
                            ));
                        }
                        self.i += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..0xE000).contains(&low) {
                            return Err(self.error(
                                "Unicode low surrogate must follow a high surrogate.".into(),
                            ));
                        }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    } else if (0xDC00..0xE000).contains(&code) {
                        return Err(self
                            .error("Unicode low surrogate must follow a high surrogate.".into()));
                    }
                    if code == 0 && self.canonical {
                        return Err(JsonError {
                            detail: "\\u0000 cannot be converted to text.".into(),
                            unsupported_escape: true,
                        });
                    }
                    match char::from_u32(code) {
                        Some(c) => out.push(c),
                        None => return Err(self.error("invalid Unicode escape".into())),
                    }
                }
                _ => {
                    let c = self.text[self.i - 1..].chars().next().unwrap_or('?');
                    return Err(self.error(format!("Escape sequence \"\\{c}\" is invalid.")));
                }
            }
        }
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.i;
        let digits = |p: &mut Parser<'_>| {
            let s = p.i;
            while p.s.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i - s
        };
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        let int_len = digits(self);
        let bad = |p: &mut Parser<'_>| {
            while p.s.get(p.i).is_some_and(|b| {
                b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-' || *b == b'+'
            }) {
                p.i += 1;
            }
            let token = p.text[start..p.i].to_string();
            Err(p.error(format!("Token \"{token}\" is invalid.")))
        };
        if int_len == 0 || (int_len > 1 && self.s[int_start] == b'0') {
            return bad(self);
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return bad(self);
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return bad(self);
            }
        }
        if self
            .s
            .get(self.i)
            .is_some_and(|b| b.is_ascii_alphanumeric())
        {
            return bad(self);
        }
        let text = &self.text[start..self.i];
        if !self.canonical {
            return Ok(Json::Number(text.to_string()));
        }
        canonical_number(text)
            .map(Json::Number)
            .ok_or_else(|| self.error(format!("Token \"{text}\" is invalid.")))
    }
}

/// A JSON number as PostgreSQL's `numeric` prints it: the exponent applied, the scale kept
/// (`1.50` stays `1.50`, `1.5e1` is `15`, `1e-2` is `0.01`), no sign on zero. `None` past
/// numeric's range.
pub fn canonical_number(text: &str) -> Option<String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if exp.abs() > 16383 {
        return None;
    }
    let all: String = format!("{int_part}{frac_part}");
    // value = all × 10^shift
    let shift = exp - frac_part.len() as i64;
    let mut body = if shift >= 0 {
        let mut s = all;
        s.extend(std::iter::repeat_n('0', shift as usize));
        s
    } else {
        let scale = (-shift) as usize;
        let mut s = all;
        if s.len() <= scale {
            s = format!("{}{s}", "0".repeat(scale + 1 - s.len()));
        }
        s.insert(s.len() - scale, '.');
        s
    };
    // Leading zeros of the integer part, keeping one.
    let int_len = body.find('.').unwrap_or(body.len());
    let leading = body[..int_len].bytes().take_while(|b| *b == b'0').count();
    body.drain(..leading.min(int_len.saturating_sub(1)));
    let zero = body.bytes().all(|b| b == b'0' || b == b'.');
    Some(if negative && !zero {
        format!("-{body}")
    } else {
        body
    })
}

/// A string as a JSON string literal, escaped as PostgreSQL's `escape_json` does.
pub fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        self.write(&mut out, None, 0);
        f.write_str(&out)
    }
}

impl Json {
    /// Prints as jsonb does; with `indent`, as `jsonb_pretty` does.
    fn write(&self, out: &mut String, indent: Option<usize>, level: usize) {
        let newline = |out: &mut String, level: usize| {
            if let Some(width) = indent {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', width * level));
            }
        };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => quote(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        if indent.is_none() {
                            out.push(' ');
                        }
                    }
                    newline(out, level + 1);
                    v.write(out, indent, level + 1);
                }
                if !items.is_empty() {
                    newline(out, level);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        if indent.is_none() {
                            out.push(' ');
                        }
                    }
                    newline(out, level + 1);
                    quote(k, out);
                    out.push_str(": ");
                    v.write(out, indent, level + 1);
                }
                if !fields.is_empty() {
                    newline(out, level);
                }
                out.push('}');
            }
        }
    }

    /// `jsonb_pretty`: four spaces an indent level.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(4), 0);
        out
    }

    /// `json_typeof`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// `-> 'key'`: an object's field.
    pub fn field(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `-> n`: an array's element; a negative index counts from the end.
    pub fn element(&self, index: i64) -> Option<&Json> {
        match self {
            Json::Array(items) => {
                let len = items.len() as i64;
                let i = if index < 0 { len + index } else { index };
                usize::try_from(i).ok().and_then(|i| items.get(i))
            }
            _ => None,
        }
    }

    /// `#> '{a,0,b}'`: each step a field name, or an array index.
    pub fn path<S: AsRef<str>>(&self, steps: &[S]) -> Option<&Json> {
        let mut at = self;
        for step in steps {
            let step = step.as_ref();
            at = match at {
                Json::Object(_) => at.field(step)?,
                Json::Array(_) => at.element(step.trim().parse().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }

    /// What `->>` gives: a string unquoted, `null` as SQL NULL, anything else its JSON text.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Json::Null => None,
            Json::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// `?`: a top-level key of an object, a string element of an array, or the string itself.
    pub fn has_key(&self, key: &str) -> bool {
        match self {
            Json::Object(fields) => fields.iter().any(|(k, _)| k == key),
            Json::Array(items) => items
                .iter()
                .any(|v| matches!(v, Json::String(s) if s == key)),
            Json::String(s) => s == key,
            _ => false,
        }
    }

    /// `@>`: jsonb containment.
    pub fn contains(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Object(a), Json::Object(b)) => b.iter().all(|(k, bv)| {
                a.iter()
                    .rev()
                    .find(|(ak, _)| ak == k)
                    .is_some_and(|(_, av)| av.contains(bv))
            }),
            (Json::Array(a), Json::Array(b)) => b.iter().all(|bv| match bv {
                Json::Array(_) | Json::Object(_) => a.iter().any(|av| av.contains(bv)),
                scalar => a.iter().any(|av| av.scalar_eq(scalar)),
            }),
            // A top-level array contains a scalar element.
            (
                Json::Array(a),
                scalar @ (Json::Null | Json::Bool(_) | Json::Number(_) | Json::String(_)),
            ) => a.iter().any(|av| av.scalar_eq(scalar)),
            (a, b) => a.scalar_eq(b),
        }
    }

    fn scalar_eq(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Number(a), Json::Number(b)) => numbers_equal(a, b),
            (Json::Array(_) | Json::Object(_), _) | (_, Json::Array(_) | Json::Object(_)) => false,
            (a, b) => a == b,
        }
    }
}

/// Numeric equality of two canonical number texts (`1.0` equals `1`).
fn numbers_equal(a: &str, b: &str) -> bool {
    fn trimmed(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    trimmed(a) == trimmed(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonb(s: &str) -> String {
        jsonb_text(s).unwrap()
    }

    #[test]
    fn jsonb_prints_like_postgres() {
        assert_eq!(
            jsonb(r#"{"b": 1, "aa": [1,2, {"x":null}], "a": true, "b": 2}"#),
            r#"{"a": true, "b": 2, "aa": [1, 2, {"x": null}]}"#
        );
        assert_eq!(jsonb(" [ ] "), "[]");
        assert_eq!(jsonb("{}"), "{}");
        assert_eq!(jsonb(r#""a\u00e9\n\"""#), r#""aé\n\"""#);
        assert_eq!(jsonb(r#""\ud83d\ude00""#), "\"😀\"");
        for (input, expected) in [
            ("1.50", "1.50"),
            ("1.5e1", "15"),
            ("1.50e1", "15.0"),
            ("1e-2", "0.01"),
            ("-0", "0"),
            ("-0.0", "0.0"),
            ("12E+2", "1200"),
            ("0.001e2", "0.1"),
            ("-3.25", "-3.25"),
        ] {
            assert_eq!(jsonb(input), expected, "{input}");
        }
    }

    #[test]
    fn bad_json_is_refused_with_postgres_details() {
        let detail = |s: &str| parse(s, true).unwrap_err().detail;
        assert_eq!(detail("{"), "The input string ended unexpectedly.");
        assert_eq!(detail("[1,]"), "Token \"]\" is invalid.");
        assert_eq!(detail("nul"), "Token \"nul\" is invalid.");
        assert_eq!(detail("01"), "Token \"01\" is invalid.");
        assert_eq!(detail("{\"a\" 1}"), "Expected \":\", but found \"1\".");
        assert_eq!(detail("[1 2]"), "Expected \",\" or \"]\", but found \"2\".");
        assert_eq!(detail("1 2"), "Expected end of input, but found \"2\".");
        assert!(parse(r#""\u0000""#, true).unwrap_err().unsupported_escape);
        assert!(parse(r#""\u0000""#, false).is_ok());
        assert!(parse("\"a\tb\"", true).is_err());
    }

    #[test]
    fn operators() {
        let v = parse(r#"{"a": {"b": [10, 20, {"c": "x"}]}, "n": null}"#, true).unwrap();
        assert_eq!(
            v.path(&["a", "b", "2", "c"])
                .and_then(Json::as_text)
                .as_deref(),
            Some("x")
        );
        assert_eq!(
            v.path(&["a", "b", "-1"]).map(|j| j.to_string()).as_deref(),
            Some(r#"{"c": "x"}"#)
        );
        assert_eq!(v.field("n").and_then(Json::as_text), None);
        assert!(v.has_key("n") && !v.has_key("b"));
        let c = |a: &str, b: &str| parse(a, true).unwrap().contains(&parse(b, true).unwrap());
        assert!(c(r#"{"a": 1, "b": [1, 2, 3]}"#, r#"{"b": [3, 1]}"#));
        assert!(!c(r#"{"a": 1}"#, r#"{"a": 2}"#));
        assert!(c(r#"[1, 2, [3]]"#, "[[3]]"));
        assert!(c(r#"["a", "b"]"#, r#""a""#));
        assert!(c("1.0", "1"));
        assert!(!c("[1]", "[[1]]"));
        assert_eq!(
            parse(r#"{"a": [1, {"b": 2}]}"#, true).unwrap().pretty(),
            "{\n    \"a\": [\n        1,\n        {\n            \"b\": 2\n        }\n    ]\n}"
        );
    }
}
