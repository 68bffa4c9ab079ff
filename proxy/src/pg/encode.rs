//! Arrow record batches to `DataRow` messages, each column in the text or binary format the
//! client asked for.

use std::sync::Arc;

use pgwire::api::Type;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;
use thunderdb_compute::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use thunderdb_compute::arrow::buffer::NullBuffer;
use thunderdb_compute::arrow::compute::cast;
use thunderdb_compute::arrow::datatypes::*;
use thunderdb_compute::arrow::util::display::{
    ArrayFormatter, FormatOptions as ArrowFormatOptions,
};

use super::binary::write_binary;
use super::text;
use super::types::{
    PgColumnType, PgScalar, list_element, pg_column_type, pg_field_type, pg_scalar,
};
use super::values::*;
use crate::error::{Error, Result};

/// Session settings that change how values print.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EncodeContext {
    /// Offset east of UTC of the session `TimeZone`, used for `timestamptz`.
    pub utc_offset_secs: i32,
}

/// Lazily encodes `batches` into `DataRow`s, one row per `next`, so a large result is not held
/// twice in memory. `fields` carries each column's requested format.
pub(crate) fn data_rows(
    batches: Vec<RecordBatch>,
    fields: Arc<Vec<FieldInfo>>,
    ctx: EncodeContext,
) -> impl Iterator<Item = PgWireResult<DataRow>> + Send + 'static {
    let mut encoder = RowEncoder {
        out: DataRowEncoder::new(fields.clone()),
        fields,
        ctx,
        scratch: String::new(),
    };
    batches.into_iter().flat_map(
        move |batch| -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send> {
            match normalize_columns(&batch) {
                Ok(columns) => {
                    let mut encoder = encoder.fork();
                    Box::new((0..batch.num_rows()).map(move |row| {
                        encoder
                            .encode_row(&columns, row)
                            .map_err(Error::into_pgwire)
                    }))
                }
                Err(e) => Box::new(std::iter::once(Err(e.into_pgwire()))),
            }
        },
    )
}

/// A column ready to encode: its array (dictionaries and run-end encodings decoded) and the
/// logical null mask, which unlike `Array::is_null` also covers `NullArray`.
pub(crate) struct Column {
    array: ArrayRef,
    nulls: Option<NullBuffer>,
    pg: PgColumnType,
}

impl Column {
    pub(crate) fn is_null(&self, row: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n.is_null(row))
    }

    pub(crate) fn array(&self) -> &dyn Array {
        self.array.as_ref()
    }
}

pub(crate) fn normalize_columns(batch: &RecordBatch) -> Result<Vec<Column>> {
    batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .map(|(array, field)| {
            let decoded = match array.data_type() {
                DataType::Dictionary(_, value) => Some(value.as_ref().clone()),
                DataType::RunEndEncoded(_, values) => Some(values.data_type().clone()),
                _ => None,
            };
            let decoded_type_changed = decoded.is_some();
            let array = match decoded {
                Some(value_type) => {
                    cast(array, &value_type).map_err(|e| Error::invalid("XX000", e.to_string()))?
                }
                None => array.clone(),
            };
            Ok(Column {
                nulls: array.logical_nulls(),
                pg: match decoded_type_changed {
                    false => pg_field_type(field),
                    true => pg_column_type(array.data_type()),
                },
                array,
            })
        })
        .collect()
}

struct RowEncoder {
    out: DataRowEncoder,
    fields: Arc<Vec<FieldInfo>>,
    ctx: EncodeContext,
    scratch: String,
}

impl RowEncoder {
    /// A fresh encoder for the next batch; the iterator of each batch owns its own.
    fn fork(&mut self) -> RowEncoder {
        RowEncoder {
            out: DataRowEncoder::new(self.fields.clone()),
            fields: self.fields.clone(),
            ctx: self.ctx,
            scratch: String::new(),
        }
    }

    fn encode_row(&mut self, columns: &[Column], row: usize) -> Result<DataRow> {
        let out = &mut self.out;
        for (i, column) in columns.iter().enumerate() {
            let format = self
                .fields
                .get(i)
                .map(|f| f.format())
                .unwrap_or(FieldFormat::Text);
            if column.is_null(row) {
                put_null(out)?;
            } else if format == FieldFormat::Binary && column.pg != PgColumnType::Display {
                write_binary(column.array.as_ref(), column.pg, row, out)?;
            } else {
                self.scratch.clear();
                write_text(column.array.as_ref(), row, self.ctx, &mut self.scratch)?;
                put_text(out, &self.scratch)?;
            }
        }
        Ok(out.take_row())
    }
}

pub(crate) fn put_null(out: &mut DataRowEncoder) -> Result<()> {
    out.encode_field_with_type_and_format(
        &None::<i32>,
        &Type::INT4,
        FieldFormat::Binary,
        &FormatOptions::default(),
    )
    .map_err(encode_error)
}

fn put_text(out: &mut DataRowEncoder, text: &str) -> Result<()> {
    // Plain `text` makes pgwire copy the bytes as they are (it quotes only array elements).
    out.encode_field_with_type_and_format(
        &text,
        &Type::TEXT,
        FieldFormat::Text,
        &FormatOptions::default(),
    )
    .map_err(encode_error)
}

/// Raw bytes already in PostgreSQL's binary format for the column's type.
pub(crate) fn put_raw(out: &mut DataRowEncoder, bytes: &[u8]) -> Result<()> {
    out.encode_field_with_type_and_format(
        &bytes,
        &Type::BYTEA,
        FieldFormat::Binary,
        &FormatOptions::default(),
    )
    .map_err(encode_error)
}

pub(crate) fn encode_error(e: impl std::fmt::Display) -> Error {
    Error::invalid("XX000", format!("could not encode value: {e}"))
}

/// Appends the PostgreSQL text form of `array[row]` (not null) to `out`.
pub(crate) fn write_text(
    array: &dyn Array,
    row: usize,
    ctx: EncodeContext,
    out: &mut String,
) -> Result<()> {
    use std::fmt::Write;
    let dt = array.data_type();
    if list_element(dt).is_some() {
        return write_array_text(array, row, ctx, out);
    }
    match pg_scalar(dt) {
        Some(PgScalar::Bool) => out.push(if array.as_boolean().value(row) {
            't'
        } else {
            'f'
        }),
        Some(PgScalar::Int2 | PgScalar::Int4 | PgScalar::Int8) => {
            let v = integer_value(array, row).ok_or_else(|| unexpected(array))?;
            let _ = write!(out, "{v}");
        }
        Some(PgScalar::Float4) => {
            let v = float_value(array, row).ok_or_else(|| unexpected(array))?;
            text::float4_out(v as f32, out);
        }
        Some(PgScalar::Float8) => text::float8_out(
            float_value(array, row).ok_or_else(|| unexpected(array))?,
            out,
        ),
        Some(PgScalar::Numeric) => {
            let (digits, scale) = numeric_value(array, row).ok_or_else(|| unexpected(array))?;
            text::numeric_out(&digits, scale, out);
        }
        Some(PgScalar::Text | PgScalar::Json | PgScalar::Jsonb | PgScalar::Uuid) => {
            out.push_str(str_value(array, row).ok_or_else(|| unexpected(array))?)
        }
        Some(PgScalar::Bytea) => text::bytea_out(
            bytes_value(array, row).ok_or_else(|| unexpected(array))?,
            out,
        ),
        Some(PgScalar::Date) => {
            let days = date_value(array, row).ok_or_else(|| unexpected(array))?;
            if !text::date_out(days, out) {
                return Err(out_of_range("date"));
            }
        }
        Some(PgScalar::Time) => text::time_out(
            time_value(array, row).ok_or_else(|| unexpected(array))?,
            out,
        ),
        Some(scalar @ (PgScalar::Timestamp | PgScalar::TimestampTz)) => {
            let micros = timestamp_value(array, row).ok_or_else(|| out_of_range("timestamp"))?;
            let offset = (scalar == PgScalar::TimestampTz).then_some(ctx.utc_offset_secs);
            if !text::timestamp_out(micros, offset, out) {
                return Err(out_of_range("timestamp"));
            }
        }
        Some(PgScalar::Interval) => {
            let (months, days, micros) =
                interval_value(array, row).ok_or_else(|| out_of_range("interval"))?;
            text::interval_out(months, days, micros, out);
        }
        None => {
            // No PostgreSQL type: show what Arrow shows (structs, maps, unions ...).
            let formatter = ArrayFormatter::try_new(array, &ArrowFormatOptions::default())
                .map_err(|e| Error::invalid("XX000", e.to_string()))?;
            let _ = write!(out, "{}", formatter.value(row));
        }
    }
    Ok(())
}

/// `{1,2,NULL}`, `{{1,2},{3,4}}`, `{"a b",NULL}` as `array_out` prints them.
fn write_array_text(
    array: &dyn Array,
    row: usize,
    ctx: EncodeContext,
    out: &mut String,
) -> Result<()> {
    let values = list_value(array, row).ok_or_else(|| unexpected(array))?;
    let nulls = values.logical_nulls();
    let nested = list_element(values.data_type()).is_some();
    let mut element = String::new();
    out.push('{');
    for i in 0..values.len() {
        if i > 0 {
            out.push(',');
        }
        if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            out.push_str("NULL");
        } else if nested {
            write_array_text(values.as_ref(), i, ctx, out)?;
        } else {
            element.clear();
            write_text(values.as_ref(), i, ctx, &mut element)?;
            thunderdb_common::text_input::array_element_out(&element, out);
        }
    }
    out.push('}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use pgwire::api::results::FieldFormat::{Binary, Text};
    use rust_decimal::Decimal;
    use thunderdb_compute::arrow::array::{
        BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
        IntervalMonthDayNanoArray, ListArray, NullArray, StringArray, TimestampMicrosecondArray,
    };
    use thunderdb_compute::arrow::datatypes::{Field, Schema};

    use super::super::types::field_info;

    /// Encodes one row and splits the DataRow into its fields.
    fn encode(
        columns: Vec<ArrayRef>,
        formats: &[FieldFormat],
        ctx: EncodeContext,
    ) -> Vec<Option<Vec<u8>>> {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let fields = Arc::new(
            schema
                .fields()
                .iter()
                .zip(formats)
                .map(|(f, fmt)| field_info(f, *fmt))
                .collect(),
        );
        let batch = RecordBatch::try_new(schema, columns).unwrap();
        let row = data_rows(vec![batch], fields, ctx).next().unwrap().unwrap();
        let mut data = &row.data[..];
        let mut out = Vec::new();
        for _ in 0..row.field_count {
            let len = data.get_i32();
            if len < 0 {
                out.push(None);
            } else {
                out.push(Some(data[..len as usize].to_vec()));
                data.advance(len as usize);
            }
        }
        out
    }

    fn texts(columns: Vec<ArrayRef>, ctx: EncodeContext) -> Vec<Option<String>> {
        let formats = vec![Text; columns.len()];
        encode(columns, &formats, ctx)
            .into_iter()
            .map(|v| v.map(|b| String::from_utf8(b).unwrap()))
            .collect()
    }

    use bytes::Buf;

    #[test]
    fn text_columns_print_like_postgres() {
        let ts = 1_706_708_700_000_000i64; // 2024-01-31 13:45:00 UTC
        let ints = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![
            Some(1),
            Some(2),
            None,
        ])]);
        let strings = {
            let values =
                Arc::new(StringArray::from(vec![Some("a b"), None, Some("x")])) as ArrayRef;
            ListArray::new(
                Arc::new(Field::new_list_field(DataType::Utf8, true)),
                thunderdb_compute::arrow::buffer::OffsetBuffer::from_lengths([3]),
                values,
                None,
            )
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(vec![true])),
            Arc::new(Int32Array::from(vec![-5])),
            Arc::new(Float64Array::from(vec![0.1])),
            Arc::new(
                Decimal128Array::from(vec![550])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(Date32Array::from(vec![19_753])),
            Arc::new(TimestampMicrosecondArray::from(vec![ts + 500_000])),
            Arc::new(TimestampMicrosecondArray::from(vec![ts]).with_timezone("UTC")),
            Arc::new(IntervalMonthDayNanoArray::from(vec![
                IntervalMonthDayNano::new(14, 1, 7_200_000_000_000),
            ])),
            Arc::new(BinaryArray::from(vec![&[1u8, 2, 255][..]])),
            Arc::new(ints),
            Arc::new(strings),
            Arc::new(NullArray::new(1)),
        ];
        let expected = [
            "t",
            "-5",
            "0.1",
            "5.50",
            "2024-01-31",
            "2024-01-31 13:45:00.5",
            "2024-01-31 19:15:00+05:30",
            "1 year 2 mons 1 day 02:00:00",
            "\\x0102ff",
            "{1,2,NULL}",
            "{\"a b\",NULL,x}",
        ];
        let got = texts(
            columns,
            EncodeContext {
                utc_offset_secs: 19_800,
            },
        );
        for (g, e) in got.iter().zip(expected) {
            assert_eq!(g.as_deref(), Some(e));
        }
        assert_eq!(got[11], None);
    }

    /// pgwire's own encoding of `value` in binary, to compare against.
    macro_rules! to_sql {
        ($value:expr, $ty:expr) => {{
            let mut enc = DataRowEncoder::new(Arc::new(Vec::new()));
            enc.encode_field_with_type_and_format(&$value, &$ty, Binary, &FormatOptions::default())
                .unwrap();
            enc.take_row().data[4..].to_vec()
        }};
    }

    #[test]
    fn binary_columns_match_postgres_types() {
        let ts = 1_706_708_700_000_000i64;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![7])),
            Arc::new(Date32Array::from(vec![19_753])),
            Arc::new(TimestampMicrosecondArray::from(vec![ts])),
            Arc::new(
                Decimal128Array::from(vec![-550])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
                Some(vec![Some(7), None]),
            ])),
        ];
        let got = encode(columns, &[Binary; 5], EncodeContext::default());
        assert_eq!(got[0].as_deref(), Some(&7i32.to_be_bytes()[..]));
        assert_eq!(got[1].as_deref(), Some(&8796i32.to_be_bytes()[..]));
        let naive = DateTime::from_timestamp_micros(ts).unwrap().naive_utc();
        assert_eq!(got[2], Some(to_sql!(naive, Type::TIMESTAMP)));
        assert_eq!(got[3], Some(to_sql!(Decimal::new(-550, 2), Type::NUMERIC)));
        let mut array = Vec::new();
        for v in [1i32, 1, 20, 2, 1, 8] {
            array.extend_from_slice(&v.to_be_bytes());
        }
        array.extend_from_slice(&7i64.to_be_bytes());
        array.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(got[4], Some(array));
    }

    #[test]
    fn numeric_send_matches_rust_decimal() {
        for (unscaled, scale) in [(550i64, 2u32), (5, 3), (123_456_789, 4), (-1, 0), (1, 8)] {
            let expected = to_sql!(Decimal::new(unscaled, scale), Type::NUMERIC);
            assert_eq!(
                super::super::binary::numeric_send(&unscaled.to_string(), scale as i8).to_vec(),
                expected,
                "{unscaled}e-{scale}"
            );
        }
        // rust_decimal drops the display scale of zero; PostgreSQL sends 0.00 with dscale 2.
        assert_eq!(
            super::super::binary::numeric_send("0", 2).to_vec(),
            [0, 0, 0, 0, 0, 0, 0, 2]
        );
        // PostgreSQL strips trailing zero groups (strip_var), rust_decimal keeps them.
        assert_eq!(
            super::super::binary::numeric_send("10000", 0).to_vec(),
            [0, 1, 0, 1, 0, 0, 0, 0, 0, 1]
        );
    }
}
