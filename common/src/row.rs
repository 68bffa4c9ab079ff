//! The versioned row codec.
//!
//! A row is `version u8 | schema_version u32 | column count u16 | (column id u16, tagged datum)*`.
//! Columns are found by their stable id, not their position, so adding or dropping a column
//! needs no rewrite: a column missing from an old row reads as NULL (or its default).

use crate::bin::{Reader, put_bytes};
use crate::datum::Datum;
use crate::error::ThunderError;

const ROW_FORMAT_V1: u8 = 1;

/// Encodes `(column id, datum)` pairs written under `schema_version`. NULL columns are omitted.
pub fn encode_row(schema_version: u32, columns: &[(u16, &Datum)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + columns.len() * 10);
    out.push(ROW_FORMAT_V1);
    out.extend_from_slice(&schema_version.to_le_bytes());
    let count = columns.iter().filter(|(_, d)| !d.is_null()).count() as u16;
    out.extend_from_slice(&count.to_le_bytes());
    for (id, datum) in columns {
        if datum.is_null() {
            continue;
        }
        out.extend_from_slice(&id.to_le_bytes());
        put_datum(&mut out, datum);
    }
    out
}

/// A decoded row: its schema version and the non-NULL columns by id, in the order written.
#[derive(Debug, PartialEq)]
pub struct DecodedRow {
    pub schema_version: u32,
    pub columns: Vec<(u16, Datum)>,
}

impl DecodedRow {
    /// The column's value, NULL when the row does not hold it.
    pub fn get(&self, column_id: u16) -> Datum {
        self.columns
            .iter()
            .find(|(id, _)| *id == column_id)
            .map(|(_, d)| d.clone())
            .unwrap_or(Datum::Null)
    }
}

pub fn decode_row(bytes: &[u8]) -> Result<DecodedRow, ThunderError> {
    let mut r = Reader::new(bytes, "row");
    if r.u8()? != ROW_FORMAT_V1 {
        return Err(r.err());
    }
    let schema_version = r.u32()?;
    let count = r.u16()? as usize;
    let mut columns = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.u16()?;
        columns.push((id, get_datum(&mut r)?));
    }
    Ok(DecodedRow {
        schema_version,
        columns,
    })
}

/// Appends a self-describing (tagged) datum.
pub fn put_datum(out: &mut Vec<u8>, datum: &Datum) {
    match datum {
        Datum::Null => out.push(0),
        Datum::Bool(b) => out.extend_from_slice(&[1, *b as u8]),
        Datum::Int16(v) => {
            out.push(2);
            out.extend_from_slice(&v.to_le_bytes())
        }
        Datum::Int32(v) => {
            out.push(3);
            out.extend_from_slice(&v.to_le_bytes())
        }
        Datum::Int64(v) => {
            out.push(4);
            out.extend_from_slice(&v.to_le_bytes())
        }
        Datum::Float32(v) => {
            out.push(5);
            out.extend_from_slice(&v.to_le_bytes())
        }
        Datum::Float64(v) => {
            out.push(6);
            out.extend_from_slice(&v.to_le_bytes())
        }
        Datum::Decimal(v, s) => {
            out.push(7);
            out.extend_from_slice(&v.to_le_bytes());
            out.push(*s as u8);
        }
        Datum::Text(s) => {
            out.push(8);
            put_bytes(out, s.as_bytes())
        }
        Datum::Bytes(b) => {
            out.push(9);
            put_bytes(out, b)
        }
        Datum::Date(v) => {
            out.push(10);
            out.extend_from_slice(&v.to_le_bytes())
        }
        Datum::Time(v) => {
            out.push(11);
            out.extend_from_slice(&v.to_le_bytes())
        }
        Datum::Timestamp(v) => {
            out.push(12);
            out.extend_from_slice(&v.to_le_bytes())
        }
        Datum::TimestampTz(v) => {
            out.push(13);
            out.extend_from_slice(&v.to_le_bytes())
        }
        Datum::Interval {
            months,
            days,
            nanos,
        } => {
            out.push(14);
            out.extend_from_slice(&months.to_le_bytes());
            out.extend_from_slice(&days.to_le_bytes());
            out.extend_from_slice(&nanos.to_le_bytes());
        }
        Datum::Array(items) => {
            out.push(15);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for item in items {
                put_datum(out, item);
            }
        }
    }
}

/// Reads a datum written by [`put_datum`].
pub fn get_datum(r: &mut Reader<'_>) -> Result<Datum, ThunderError> {
    Ok(match r.u8()? {
        0 => Datum::Null,
        1 => Datum::Bool(r.u8()? != 0),
        2 => Datum::Int16(r.u16()? as i16),
        3 => Datum::Int32(r.u32()? as i32),
        4 => Datum::Int64(r.u64()? as i64),
        5 => Datum::Float32(f32::from_bits(r.u32()?)),
        6 => Datum::Float64(f64::from_bits(r.u64()?)),
        7 => {
            let v = r.u128()? as i128;
            Datum::Decimal(v, r.u8()? as i8)
        }
        8 => Datum::Text(String::from_utf8(r.bytes()?.to_vec()).map_err(|_| r.err())?),
        9 => Datum::Bytes(r.bytes()?.to_vec()),
        10 => Datum::Date(r.u32()? as i32),
        11 => Datum::Time(r.u64()? as i64),
        12 => Datum::Timestamp(r.u64()? as i64),
        13 => Datum::TimestampTz(r.u64()? as i64),
        14 => Datum::Interval {
            months: r.u32()? as i32,
            days: r.u32()? as i32,
            nanos: r.u64()? as i64,
        },
        15 => {
            let n = r.u32()? as usize;
            // Every element takes at least its tag byte: a corrupt count cannot over-allocate.
            let mut items = Vec::with_capacity(n.min(r.remaining().len()));
            for _ in 0..n {
                items.push(get_datum(r)?);
            }
            Datum::Array(items)
        }
        _ => return Err(r.err()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn datum() -> impl Strategy<Value = Datum> {
        prop_oneof![
            Just(Datum::Null),
            any::<bool>().prop_map(Datum::Bool),
            any::<i16>().prop_map(Datum::Int16),
            any::<i32>().prop_map(Datum::Int32),
            any::<i64>().prop_map(Datum::Int64),
            proptest::num::f32::NORMAL.prop_map(Datum::Float32),
            proptest::num::f64::NORMAL.prop_map(Datum::Float64),
            (any::<i64>(), 0i8..10).prop_map(|(v, s)| Datum::Decimal(v as i128, s)),
            "\\PC*".prop_map(Datum::Text),
            any::<Vec<u8>>().prop_map(Datum::Bytes),
            any::<i32>().prop_map(Datum::Date),
            any::<i64>().prop_map(Datum::Time),
            any::<i64>().prop_map(Datum::Timestamp),
            any::<i64>().prop_map(Datum::TimestampTz),
            (any::<i32>(), any::<i32>(), any::<i64>()).prop_map(|(months, days, nanos)| {
                Datum::Interval {
                    months,
                    days,
                    nanos,
                }
            }),
        ]
        .prop_recursive(2, 16, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(Datum::Array)
        })
    }

    proptest! {
        #[test]
        fn row_round_trip(version: u32, datums in proptest::collection::vec(datum(), 0..20)) {
            let cols: Vec<(u16, &Datum)> = datums.iter().enumerate().map(|(i, d)| (i as u16 * 3, d)).collect();
            let bytes = encode_row(version, &cols);
            let row = decode_row(&bytes).unwrap();
            prop_assert_eq!(row.schema_version, version);
            for (id, d) in cols {
                prop_assert_eq!(row.get(id), d.clone());
            }
        }

        #[test]
        fn truncated_rows_are_errors(datums in proptest::collection::vec(datum(), 1..5), cut in 1usize..8) {
            let cols: Vec<(u16, &Datum)> = datums.iter().enumerate().map(|(i, d)| (i as u16, d)).collect();
            let bytes = encode_row(1, &cols);
            let cut = cut.min(bytes.len());
            if datums.iter().any(|d| !d.is_null()) {
                prop_assert!(decode_row(&bytes[..bytes.len() - cut]).is_err());
            }
        }
    }
}
