//! PostgreSQL's text input for types whose syntax both the wire frontends (parameters) and
//! compute (casts, INSERT) must accept the same way.

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

#[cfg(test)]
mod tests {
    use super::parse_bytea;

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
