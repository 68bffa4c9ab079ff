//! PostgreSQL's text input for types whose syntax both the wire frontends (parameters) and
//! compute (casts, INSERT) must accept the same way, and `array_out`'s element quoting.

use crate::error::{SqlState, ThunderError};

/// `byteain`: hex (`\x0102`, white space allowed between pairs) or the escape format
/// (`a\000b`, `\\`).
pub fn parse_bytea(s: &str) -> Result<Vec<u8>, ThunderError> {
    let bytes = s.as_bytes();
    if let Some(hex) = s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err(ThunderError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                "invalid hexadecimal data: odd number of digits",
            ));
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let nibble = |b: u8| (b as char).to_digit(16);
                match (nibble(pair[0]), nibble(pair[1])) {
                    (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                    _ => Err(ThunderError::new(
                        SqlState::INVALID_PARAMETER_VALUE,
                        "invalid hexadecimal digit",
                    )),
                }
            })
            .collect();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if let Some(oct) = bytes.get(i + 1..i + 4)
            && oct[0] <= b'3'
            && oct.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            out.push((oct[0] - b'0') * 64 + (oct[1] - b'0') * 8 + (oct[2] - b'0'));
            i += 4;
        } else {
            return Err(ThunderError::new(
                SqlState::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type bytea",
            ));
        }
    }
    Ok(out)
}

/// The names PostgreSQL takes for UTC as a `TimeZone` (any case).
pub const UTC_ZONE_NAMES: [&str; 12] = [
    "UTC",
    "Etc/UTC",
    "GMT",
    "Etc/GMT",
    "UCT",
    "Etc/UCT",
    "Universal",
    "Etc/Universal",
    "Zulu",
    "Etc/Zulu",
    "Z",
    "Greenwich",
];

/// The blanks `array_in` skips: ASCII white space only (`array_isspace`).
trait ArraySpace {
    fn is_array_space(&self) -> bool;
}

impl ArraySpace for char {
    fn is_array_space(&self) -> bool {
        matches!(self, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
    }
}

/// Elements of an array literal `{a,"b c",NULL,{1,2}}`: unquoted elements are trimmed and
/// unescaped, `NULL` is `None`, and a nested array is returned as its own literal.
pub fn parse_array(s: &str) -> Option<Vec<Option<String>>> {
    // A `[1:3]={...}` dimension decoration carries no information we keep.
    let s = s.trim_matches(|c: char| c.is_array_space());
    let s = match s.find('=') {
        Some(eq) if s.starts_with('[') => s[eq + 1..].trim_matches(|c: char| c.is_array_space()),
        _ => s,
    };
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let bytes: Vec<char> = inner.chars().collect();
    let mut elements = Vec::new();
    if inner.chars().all(|c| c.is_array_space()) {
        return Some(elements);
    }
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_array_space() {
            i += 1;
        }
        let mut element = String::new();
        // Quoted, escaped or nested: never the NULL element.
        let quoted;
        if i < bytes.len() && bytes[i] == '{' {
            let start = i;
            let mut depth = 0;
            let mut in_quotes = false;
            while i < bytes.len() {
                match bytes[i] {
                    '\\' if in_quotes => i += 1,
                    '"' => in_quotes = !in_quotes,
                    '{' if !in_quotes => depth += 1,
                    '}' if !in_quotes => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            element = bytes[start..i.min(bytes.len())].iter().collect();
            quoted = true;
        } else if i < bytes.len() && bytes[i] == '"' {
            // A quoted element: taken as it is, escapes undone; only blanks may follow it.
            quoted = true;
            i += 1;
            loop {
                match *bytes.get(i)? {
                    '"' => break,
                    '\\' => {
                        element.push(*bytes.get(i + 1)?);
                        i += 2;
                        continue;
                    }
                    c => element.push(c),
                }
                i += 1;
            }
            i += 1;
        } else {
            // An unquoted element: escapes undone, blanks around it (not escaped ones)
            // dropped; empty is malformed, and NULL (unescaped) is the null element.
            let (mut taken, mut keep, mut escaped) = (0, 0, false);
            while i < bytes.len() {
                match bytes[i] {
                    ',' => break,
                    '"' | '{' | '}' => return None,
                    '\\' => {
                        element.push(*bytes.get(i + 1)?);
                        escaped = true;
                        taken += 1;
                        keep = taken;
                        i += 2;
                        continue;
                    }
                    c => {
                        element.push(c);
                        taken += 1;
                        if !c.is_array_space() {
                            keep = taken;
                        }
                    }
                }
                i += 1;
            }
            if keep == 0 {
                return None;
            }
            element = element.chars().take(keep).collect();
            quoted = escaped;
        }
        if !quoted && element.eq_ignore_ascii_case("NULL") {
            elements.push(None);
        } else {
            elements.push(Some(element));
        }
        while i < bytes.len() && bytes[i].is_array_space() {
            i += 1;
        }
        if i >= bytes.len() {
            return Some(elements);
        }
        if bytes[i] != ',' {
            return None;
        }
        i += 1;
    }
}

/// Appends one array element as `array_out` does: double-quoted (with `"` and `\` escaped) when
/// it is empty, spells NULL, or holds a delimiter, brace, quote, backslash or white space.
pub fn array_element_out(element: &str, out: &mut String) {
    let needs_quotes = element.is_empty()
        || element.eq_ignore_ascii_case("NULL")
        || element.bytes().any(|b| {
            matches!(
                b,
                b'"' | b'\\' | b'{' | b'}' | b',' | b' ' | b'\t' | b'\n' | b'\r' | 0x0c
            )
        });
    if !needs_quotes {
        out.push_str(element);
        return;
    }
    out.push('"');
    for c in element.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Whether an array literal has more than one dimension (`{{1,2},{3,4}}`).
pub fn is_multidimensional_array(s: &str) -> bool {
    let s = match s.find('=') {
        Some(eq) if s.starts_with('[') => s[eq + 1..].trim(),
        _ => s.trim(),
    };
    s.strip_prefix('{')
        .is_some_and(|inner| inner.trim_start().starts_with('{'))
}

#[cfg(test)]
mod tests {
    use super::{array_element_out, is_multidimensional_array, parse_array, parse_bytea};

    #[test]
    fn array_elements_are_quoted_like_array_out() {
        let quoted = |e: &str| {
            let mut s = String::new();
            array_element_out(e, &mut s);
            s
        };
        assert_eq!(quoted("abc"), "abc");
        assert_eq!(quoted("a b"), "\"a b\"");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("NULL"), "\"NULL\"");
        assert_eq!(quoted("null"), "\"null\"");
        assert_eq!(quoted("x\"y"), "\"x\\\"y\"");
        assert_eq!(quoted("\\x0102"), "\"\\\\x0102\"");
        assert_eq!(quoted("{a,b}"), "\"{a,b}\"");
    }

    #[test]
    fn array_literals() {
        let s = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        assert_eq!(parse_array("{a,b}"), Some(s(&["a", "b"])));
        assert_eq!(parse_array("{}"), Some(vec![]));
        assert_eq!(parse_array(r#"{"a b" , c\,d }"#), Some(s(&["a b", "c,d"])));
        assert_eq!(
            parse_array(r#"{"c\"d","NULL"}"#),
            Some(s(&["c\"d", "NULL"]))
        );
        assert_eq!(parse_array("{ x y ,z}"), Some(s(&["x y", "z"])));
        assert_eq!(parse_array("{a,NULL}"), Some(vec![Some("a".into()), None]));
        assert_eq!(parse_array("[1:2]={1,2}"), Some(s(&["1", "2"])));
        assert_eq!(parse_array("a,b"), None);
        assert_eq!(parse_array("{\"a}"), None);
        // As PostgreSQL's array_in reads them.
        assert_eq!(parse_array("{a,,b}"), None);
        assert_eq!(parse_array("{a,}"), None);
        assert_eq!(parse_array("{\"a\" b}"), None);
        assert_eq!(parse_array("{\\NULL}"), Some(s(&["NULL"])));
        assert_eq!(parse_array("{a\\ }"), Some(s(&["a "])));
        assert_eq!(parse_array(" {x} "), Some(s(&["x"])));
        assert_eq!(parse_array("{\"\"}"), Some(s(&[""])));
        assert!(is_multidimensional_array("{{1,2},{3,4}}"));
        assert!(!is_multidimensional_array("{\"{1}\"}"));
    }

    #[test]
    fn timestamps_without_seconds_get_them() {
        assert_eq!(
            super::timestamp_for_arrow("2024-01-01 10:00+02", true).as_deref(),
            Some("2024-01-01 10:00:00+02")
        );
        assert_eq!(
            super::timestamp_for_arrow(" 2024-01-01T9:05 ", false).as_deref(),
            Some("2024-01-01T09:05:00")
        );
        assert_eq!(
            super::timestamp_for_arrow("EPOCH", false).as_deref(),
            Some("1970-01-01 00:00:00")
        );
        assert_eq!(
            super::timestamp_for_arrow("2024-01-01 10:00:01", false),
            None
        );
        assert_eq!(super::timestamp_for_arrow("2024-01-01", false), None);
        assert_eq!(super::timestamp_for_arrow("nonsense", false), None);
        assert_eq!(super::timestamp_for_arrow("2024-01-01 10:0", false), None);
        assert_eq!(
            super::timestamp_for_arrow("2024-01-01 10:00.5", false),
            None
        );
        assert_eq!(
            super::timestamp_for_arrow("2024-01-01 10:00+02", false).as_deref(),
            Some("2024-01-01 10:00:00")
        );
    }

    #[test]
    fn bytea_input_formats() {
        assert_eq!(parse_bytea("\\x00ff").unwrap(), vec![0, 255]);
        assert_eq!(parse_bytea("\\X00 FF").unwrap(), vec![0, 255]);
        assert_eq!(parse_bytea("\\x").unwrap(), Vec::<u8>::new());
        assert_eq!(
            parse_bytea("a\\000b\\\\").unwrap(),
            vec![b'a', 0, b'b', b'\\']
        );
        assert_eq!(parse_bytea("\\x0").unwrap_err().state.code(), "22023");
        assert_eq!(parse_bytea("\\xzz").unwrap_err().state.code(), "22023");
        assert_eq!(parse_bytea("a\\9").unwrap_err().state.code(), "22P02");
    }
}

/// A uuid as PostgreSQL's `uuid_in` reads it (32 hex digits, optionally in braces, with a
/// hyphen after any group of four), spelled canonically: lower case, 8-4-4-4-12.
/// PostgreSQL timestamp input that Arrow's parser does not take, in a form it does: a time
/// without seconds (`2024-01-01 10:00+02` → `2024-01-01 10:00:00+02`) and `epoch`. `None`:
/// the text needs nothing.
pub fn timestamp_for_arrow(s: &str, with_tz: bool) -> Option<String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("epoch") {
        let epoch = if with_tz {
            "1970-01-01 00:00:00+00"
        } else {
            "1970-01-01 00:00:00"
        };
        return Some(epoch.into());
    }
    let sep = t.find([' ', 'T'])?;
    let (date, rest) = (&t[..sep], t[sep + 1..].trim_start());
    let hours = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&hours) || rest.as_bytes().get(hours) != Some(&b':') {
        return None;
    }
    let after = &rest[hours + 1..];
    let minutes = after.bytes().take_while(u8::is_ascii_digit).count();
    // `10:00:01` has its seconds; `10:00.5` is minutes and seconds, which Arrow reads wrongly.
    if minutes != 2 || after[2..].starts_with([':', '.']) {
        return None;
    }
    let mut zone = &after[2..];
    if !with_tz && zone.trim_start().starts_with(['+', '-']) {
        // A timestamp without time zone ignores an offset, as PostgreSQL does.
        zone = "";
    }
    Some(format!(
        "{date}{}{:0>2}:{}:00{}",
        &t[sep..sep + 1],
        &rest[..hours],
        &after[..2],
        zone
    ))
}

pub fn parse_uuid(s: &str) -> Option<String> {
    let inner = match s.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => s,
    };
    let mut hex = String::with_capacity(32);
    let mut run = 0;
    for (i, c) in inner.chars().enumerate() {
        if c == '-' {
            // A hyphen may follow a group of four digits, never lead or double.
            if i == 0 || run % 4 != 0 || run == 0 || hex.len() == 32 {
                return None;
            }
            run = 0;
            continue;
        }
        if !c.is_ascii_hexdigit() || hex.len() == 32 {
            return None;
        }
        hex.push(c.to_ascii_lowercase());
        run += 1;
    }
    if hex.len() != 32 || inner.ends_with('-') {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod uuid_tests {
    use super::parse_uuid;

    #[test]
    fn uuid_input_forms() {
        let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for input in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
        ] {
            assert_eq!(parse_uuid(input).as_deref(), Some(canonical), "{input}");
        }
        for bad in [
            "abc",
            "",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "-a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11-",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "g0eebc999c0b4ef8bb6d6bb9bd380a11",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
    }
}
