//! Parameters of COM_STMT_EXECUTE: the null bitmap, the types the client bound, and each value
//! in the binary protocol, read as the ScalarValue its type carries.

use super::packet::{Malformed, Reader};
use super::results::ColumnType;
use thunderdb_compute::ScalarValue;

/// A parameter's type as bound by the client: the column type and whether it is unsigned.
pub type BoundType = (u8, bool);

/// Reads the parameters of an execute request. `bound` holds the types of the previous
/// execution (clients send types only when they change them) and is updated; `long_data` is
/// what COM_STMT_SEND_LONG_DATA sent per parameter.
pub fn read_params(
    r: &mut Reader<'_>,
    count: usize,
    bound: &mut Vec<BoundType>,
    long_data: &mut std::collections::HashMap<u16, Vec<u8>>,
) -> Result<Vec<ScalarValue>, Malformed> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let bitmap = r.bytes(count.div_ceil(8))?.to_vec();
    let new_types = r.u8()? == 1;
    if new_types {
        bound.clear();
        for _ in 0..count {
            let t = r.u8()?;
            let flags = r.u8()?;
            bound.push((t, flags & 0x80 != 0));
        }
    }
    if bound.len() != count {
        return Err(Malformed);
    }
    let mut values = Vec::with_capacity(count);
    for (i, &(t, unsigned)) in bound.iter().enumerate() {
        if bitmap[i / 8] & (1 << (i % 8)) != 0 {
            values.push(ScalarValue::Null);
            continue;
        }
        if let Some(data) = long_data.remove(&(i as u16)) {
            values.push(bytes_value(t, data));
            continue;
        }
        values.push(read_value(r, t, unsigned)?);
    }
    Ok(values)
}

/// Text for string types, bytes for blobs.
fn bytes_value(t: u8, data: Vec<u8>) -> ScalarValue {
    match ColumnType::from_u8(t) {
        Some(ColumnType::Blob) => ScalarValue::Binary(Some(data)),
        _ => match String::from_utf8(data) {
            Ok(s) => ScalarValue::Utf8(Some(s)),
            Err(e) => ScalarValue::Binary(Some(e.into_bytes())),
        },
    }
}

fn read_value(r: &mut Reader<'_>, t: u8, unsigned: bool) -> Result<ScalarValue, Malformed> {
    use ColumnType::*;
    let Some(column_type) = ColumnType::from_u8(t) else {
        return Err(Malformed);
    };
    Ok(match column_type {
        Null => ScalarValue::Null,
        Tiny if unsigned => ScalarValue::Int64(Some(r.u8()? as i64)),
        Tiny => ScalarValue::Int64(Some(r.u8()? as i8 as i64)),
        Short | Year if unsigned => ScalarValue::Int64(Some(r.u16()? as i64)),
        Short | Year => ScalarValue::Int64(Some(r.u16()? as i16 as i64)),
        Long if unsigned => ScalarValue::Int64(Some(r.u32()? as i64)),
        Long => ScalarValue::Int64(Some(r.u32()? as i32 as i64)),
        LongLong if unsigned => {
            let v = r.u64()?;
            match i64::try_from(v) {
                Ok(v) => ScalarValue::Int64(Some(v)),
                Err(_) => ScalarValue::UInt64(Some(v)),
            }
        }
        LongLong => ScalarValue::Int64(Some(r.u64()? as i64)),
        Float => ScalarValue::Float64(Some(f64::from(f32::from_le_bytes(r.u32()?.to_le_bytes())))),
        Double => ScalarValue::Float64(Some(f64::from_le_bytes(r.u64()?.to_le_bytes()))),
        Date | DateTime | Timestamp => {
            let len = r.u8()? as usize;
            let mut f = Reader::new(r.bytes(len)?);
            if len == 0 {
                return Ok(ScalarValue::Utf8(Some("0000-00-00 00:00:00".into())));
            }
            let year = f.u16()?;
            let month = f.u8()?;
            let day = f.u8()?;
            let (h, m, s) = if len >= 7 {
                (f.u8()?, f.u8()?, f.u8()?)
            } else {
                (0, 0, 0)
            };
            let micros = if len >= 11 { f.u32()? } else { 0 };
            let mut text = format!("{year:04}-{month:02}-{day:02}");
            if column_type != Date || len >= 7 {
                text.push_str(&format!(" {h:02}:{m:02}:{s:02}"));
                if micros != 0 {
                    text.push_str(&format!(".{micros:06}"));
                }
            }
            ScalarValue::Utf8(Some(text))
        }
        Time => {
            let len = r.u8()? as usize;
            let mut f = Reader::new(r.bytes(len)?);
            if len == 0 {
                return Ok(ScalarValue::Utf8(Some("00:00:00".into())));
            }
            let negative = f.u8()? == 1;
            let days = f.u32()?;
            let (h, m, s) = (f.u8()?, f.u8()?, f.u8()?);
            let micros = if len >= 12 { f.u32()? } else { 0 };
            let hours = days as u64 * 24 + h as u64;
            let mut text = format!(
                "{}{hours:02}:{m:02}:{s:02}",
                if negative { "-" } else { "" }
            );
            if micros != 0 {
                text.push_str(&format!(".{micros:06}"));
            }
            ScalarValue::Utf8(Some(text))
        }
        Blob | VarChar | VarString | String | NewDecimal | Json => {
            bytes_value(t, r.lenenc_bytes()?.to_vec())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_typed_values_and_remembers_types() {
        // Two params: LONGLONG 7 and a NULL; types sent.
        let mut p = vec![0b10, 1, 8, 0, 6, 0];
        p.extend_from_slice(&7i64.to_le_bytes());
        let mut bound = Vec::new();
        let mut long = Default::default();
        let v = read_params(&mut Reader::new(&p), 2, &mut bound, &mut long).unwrap();
        assert_eq!(v, vec![ScalarValue::Int64(Some(7)), ScalarValue::Null]);
        // Next execution reuses the types.
        let mut p = vec![0, 0];
        p.extend_from_slice(&(-3i64).to_le_bytes());
        let v = read_params(&mut Reader::new(&p), 2, &mut bound, &mut long).unwrap();
        assert_eq!(v, vec![ScalarValue::Int64(Some(-3)), ScalarValue::Null]);
        // A truncated packet is an error, not a panic.
        assert!(read_params(&mut Reader::new(&[0, 1, 8]), 1, &mut bound, &mut long).is_err());
    }
}
