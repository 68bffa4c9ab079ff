//! COPY's data streams in PostgreSQL's text and CSV formats: rows arriving in CopyData messages
//! (a row may span messages) become record batches for the session to insert, and query results
//! become CopyData rows.

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use futures::sink::{Sink, SinkExt};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult, SEVERITY_ERROR};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyInResponse, CopyOutResponse};
use pgwire::messages::response::CommandComplete;
use thunderdb_compute::arrow::array::RecordBatch;
use thunderdb_compute::arrow::datatypes::SchemaRef;
use thunderdb_compute::{CopyFormat, CopyInTarget, ScalarValue};

use super::encode::{EncodeContext, normalize_columns, write_text};
use super::params::{ParamContext, from_text};
use crate::error::{Error, Result};

/// Rows per record batch handed to the session.
const BATCH_ROWS: usize = 8192;
/// The longest row COPY reads (an unclosed CSV quote must not take all memory).
const MAX_ROW_BYTES: usize = 256 << 20;

/// A `COPY … FROM STDIN` under way: the target, the bytes of a row not yet complete, and the
/// rows decoded so far.
pub(crate) struct CopyIn {
    pub(crate) target: Arc<CopyInTarget>,
    ctx: ParamContext,
    pending: Vec<u8>,
    /// How far `pending` has been scanned for the end of its row, and the scanner's state there.
    scanned: usize,
    in_quote: bool,
    escaped: bool,
    /// Lines read so far (for error messages, as PostgreSQL counts them).
    line: u64,
    header_pending: bool,
    /// The end-of-data marker `\.` was seen; later data is ignored.
    ended: bool,
    columns: Vec<Vec<ScalarValue>>,
    batches: Vec<RecordBatch>,
}

/// A failure while reading COPY data, with the line it happened on.
pub(crate) struct CopyError {
    error: Error,
    context: String,
}

impl CopyError {
    pub(crate) fn into_pgwire(self) -> PgWireError {
        let mut info: ErrorInfo = self.error.to_error_info(SEVERITY_ERROR);
        info.where_context = Some(self.context);
        PgWireError::UserError(Box::new(info))
    }
}

impl CopyIn {
    pub(crate) fn new(target: Arc<CopyInTarget>, ctx: ParamContext) -> CopyIn {
        let width = target.schema.fields().len();
        CopyIn {
            header_pending: target.format.header,
            target,
            ctx,
            pending: Vec::new(),
            scanned: 0,
            in_quote: false,
            escaped: false,
            line: 0,
            ended: false,
            columns: vec![Vec::new(); width],
            batches: Vec::new(),
        }
    }

    /// Takes one CopyData message's bytes.
    pub(crate) fn feed(&mut self, data: &[u8]) -> std::result::Result<(), CopyError> {
        if self.ended {
            return Ok(());
        }
        self.pending.extend_from_slice(data);
        let mut start = 0;
        let format = self.target.format.clone();
        let mut i = self.scanned;
        while i < self.pending.len() {
            let b = self.pending[i];
            if self.escaped {
                self.escaped = false;
            } else if format.csv {
                if self.in_quote && b == format.escape && format.escape != format.quote {
                    self.escaped = true;
                } else if b == format.quote {
                    self.in_quote = !self.in_quote;
                } else if b == b'\n' && !self.in_quote {
                    self.row_ended(start, i)?;
                    start = i + 1;
                }
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'\n' {
                self.row_ended(start, i)?;
                start = i + 1;
            }
            if self.ended {
                self.pending.clear();
                self.scanned = 0;
                return Ok(());
            }
            i += 1;
        }
        self.pending.drain(..start);
        self.scanned = self.pending.len();
        if self.pending.len() > MAX_ROW_BYTES {
            self.line += 1;
            return Err(self.error(
                Error::invalid("54000", "COPY row is too long (more than 256 MiB)"),
                None,
            ));
        }
        Ok(())
    }

    /// CopyDone: the last row may lack its newline. Returns the target and the rows read.
    pub(crate) fn finish(
        mut self,
    ) -> std::result::Result<(Arc<CopyInTarget>, Vec<RecordBatch>), CopyError> {
        if !self.ended && !self.pending.is_empty() {
            if self.in_quote {
                self.line += 1;
                return Err(self.error(
                    Error::invalid("22P04", "unterminated CSV quoted field"),
                    None,
                ));
            }
            let end = self.pending.len();
            self.row_ended(0, end)?;
        }
        self.flush_batch()?;
        Ok((self.target, self.batches))
    }

    fn row_ended(&mut self, start: usize, end: usize) -> std::result::Result<(), CopyError> {
        self.line += 1;
        let mut row = &self.pending[start..end];
        if row.last() == Some(&b'\r') {
            row = &row[..row.len() - 1];
        }
        if row == b"\\." {
            self.ended = true;
            return Ok(());
        }
        if std::mem::take(&mut self.header_pending) {
            return Ok(());
        }
        let row = row.to_vec();
        let fields = if self.target.format.csv {
            split_csv(&row, &self.target.format)
        } else {
            split_text(&row, &self.target.format)
        }
        .map_err(|e| self.error(e, None))?;
        let width = self.columns.len();
        // A table without columns takes empty lines.
        if width == 0 && fields.len() == 1 && fields[0].as_deref() == Some(&b""[..]) {
            return Ok(());
        }
        if fields.len() > width {
            return Err(self.error(
                Error::invalid("22P04", "extra data after last expected column"),
                None,
            ));
        }
        if fields.len() < width {
            let missing = self.target.schema.field(fields.len()).name().clone();
            return Err(self.error(
                Error::invalid("22P04", format!("missing data for column \"{missing}\"")),
                None,
            ));
        }
        for (i, field) in fields.into_iter().enumerate() {
            let dt = self.target.schema.field(i).data_type().clone();
            let value = match field {
                None => ScalarValue::try_from(&dt).unwrap_or(ScalarValue::Null),
                Some(bytes) => {
                    let text = std::str::from_utf8(&bytes).map_err(|_| {
                        self.error(
                            Error::invalid("22021", "invalid byte sequence for encoding \"UTF8\""),
                            Some(i),
                        )
                    })?;
                    from_text(text, &dt, self.ctx).map_err(|e| {
                        let shown = text.chars().take(30).collect::<String>();
                        self.error(e, Some(i)).with_value(&shown)
                    })?
                }
            };
            self.columns[i].push(value);
        }
        if self.columns.first().is_some_and(|c| c.len() >= BATCH_ROWS) {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> std::result::Result<(), CopyError> {
        let rows = self.columns.first().map_or(0, Vec::len);
        if rows == 0 {
            return Ok(());
        }
        let schema: SchemaRef = self.target.schema.clone();
        let mut arrays = Vec::with_capacity(self.columns.len());
        for (values, field) in self.columns.iter_mut().zip(schema.fields()) {
            let array = ScalarValue::iter_to_array(std::mem::take(values))
                .map_err(|e| e.to_string())
                .and_then(|a| {
                    thunderdb_compute::arrow::compute::cast(&a, field.data_type())
                        .map_err(|e| e.to_string())
                });
            match array {
                Ok(a) => arrays.push(a),
                Err(e) => return Err(self.error(Error::invalid("XX000", e), None)),
            }
        }
        let arrays = RecordBatch::try_new(schema, arrays)
            .map_err(|e| self.error(Error::invalid("XX000", e.to_string()), None))?;
        self.batches.push(arrays);
        Ok(())
    }

    fn error(&self, error: Error, column: Option<usize>) -> CopyError {
        let mut context = format!("COPY {}, line {}", self.target.table, self.line);
        if let Some(c) = column {
            context.push_str(&format!(", column {}", self.target.schema.field(c).name()));
        }
        CopyError { error, context }
    }
}

impl CopyError {
    fn with_value(mut self, value: &str) -> CopyError {
        self.context.push_str(&format!(": \"{value}\""));
        self
    }
}

/// Text format: fields split on the delimiter, `\` escapes, the null string (compared before
/// unescaping) for NULL.
fn split_text(row: &[u8], format: &CopyFormat) -> Result<Vec<Option<Vec<u8>>>> {
    let mut fields = Vec::new();
    let mut raw_start = 0;
    let mut value = Vec::new();
    let mut i = 0;
    let null = format.null.as_bytes();
    let push = |raw: &[u8], value: &mut Vec<u8>, fields: &mut Vec<Option<Vec<u8>>>| {
        if raw == null {
            fields.push(None);
        } else {
            fields.push(Some(std::mem::take(value)));
        }
        value.clear();
    };
    while i < row.len() {
        let b = row[i];
        if b == format.delimiter {
            push(&row[raw_start..i], &mut value, &mut fields);
            raw_start = i + 1;
            i += 1;
            continue;
        }
        if b != b'\\' || i + 1 >= row.len() {
            value.push(b);
            i += 1;
            continue;
        }
        let c = row[i + 1];
        i += 2;
        match c {
            b'b' => value.push(8),
            b'f' => value.push(12),
            b'n' => value.push(b'\n'),
            b'r' => value.push(b'\r'),
            b't' => value.push(b'\t'),
            b'v' => value.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match row.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                value.push((v & 0xFF) as u8);
            }
            b'x' if row.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match row.get(i) {
                        Some(d) if d.is_ascii_hexdigit() => {
                            v = v * 16 + (*d as char).to_digit(16).expect("hex digit");
                            i += 1;
                        }
                        _ => break,
                    }
                }
                value.push(v as u8);
            }
            other => value.push(other),
        }
    }
    push(&row[raw_start..], &mut value, &mut fields);
    Ok(fields)
}

/// CSV: quoted fields may hold delimiters and newlines; an unquoted field equal to the null
/// string is NULL (quoted only for FORCE_NULL columns, never for FORCE_NOT_NULL ones).
fn split_csv(row: &[u8], format: &CopyFormat) -> Result<Vec<Option<Vec<u8>>>> {
    let mut fields = Vec::new();
    let null = format.null.as_bytes();
    let mut i = 0;
    loop {
        let column = fields.len();
        let mut value = Vec::new();
        let mut quoted = false;
        let mut raw_start = i;
        while i < row.len() && row[i] != format.delimiter {
            if row[i] == format.quote {
                quoted = true;
                i += 1;
                loop {
                    let Some(&b) = row.get(i) else {
                        return Err(Error::invalid("22P04", "unterminated CSV quoted field"));
                    };
                    if b == format.escape
                        && row
                            .get(i + 1)
                            .is_some_and(|&n| n == format.quote || n == format.escape)
                    {
                        value.push(row[i + 1]);
                        i += 2;
                    } else if b == format.quote {
                        i += 1;
                        break;
                    } else {
                        value.push(b);
                        i += 1;
                    }
                }
                raw_start = usize::MAX;
            } else {
                value.push(row[i]);
                i += 1;
            }
        }
        let is_null = if quoted {
            format.force_null.contains(&column) && value == null
        } else {
            raw_start != usize::MAX && value == null && !format.force_not_null.contains(&column)
        };
        fields.push(if is_null { None } else { Some(value) });
        if i >= row.len() {
            break;
        }
        i += 1; // the delimiter
    }
    Ok(fields)
}

/// A `COPY … TO STDOUT` result encoded as CopyData rows (and a header row when asked).
pub(crate) struct CopyOut {
    columns: usize,
    header: Option<Bytes>,
    rows: Vec<Bytes>,
}

impl CopyOut {
    pub(crate) fn encode(
        schema: &SchemaRef,
        batches: &[RecordBatch],
        format: &CopyFormat,
        ctx: EncodeContext,
    ) -> Result<CopyOut> {
        let header = format.header.then(|| {
            let mut line = Vec::new();
            for (i, f) in schema.fields().iter().enumerate() {
                if i > 0 {
                    line.push(format.delimiter);
                }
                // FORCE_QUOTE does not apply to the header (PostgreSQL's rule).
                put_value(&mut line, f.name(), None, format);
            }
            line.push(b'\n');
            Bytes::from(line)
        });
        let mut rows = Vec::new();
        let mut text = String::new();
        for batch in batches {
            let columns = normalize_columns(batch)?;
            for row in 0..batch.num_rows() {
                let mut line = Vec::new();
                for (i, column) in columns.iter().enumerate() {
                    if i > 0 {
                        line.push(format.delimiter);
                    }
                    if column.is_null(row) {
                        line.extend_from_slice(format.null.as_bytes());
                        continue;
                    }
                    text.clear();
                    write_text(column.array(), row, ctx, &mut text)?;
                    put_value(&mut line, &text, Some(i), format);
                }
                line.push(b'\n');
                rows.push(Bytes::from(line));
            }
        }
        Ok(CopyOut {
            columns: schema.fields().len(),
            header,
            rows,
        })
    }

    /// CopyOutResponse, the rows, CopyDone and `COPY n`.
    pub(crate) async fn send<C>(self, client: &mut C) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client
            .feed(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
                0,
                self.columns as i16,
                vec![0; self.columns],
            )))
            .await?;
        let count = self.rows.len();
        for data in self.header.into_iter().chain(self.rows) {
            client
                .feed(PgWireBackendMessage::CopyData(CopyData::new(data)))
                .await?;
        }
        client
            .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
            .await?;
        client
            .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                format!("COPY {count}"),
            )))
            .await?;
        Ok(())
    }
}

/// CopyInResponse: text format for every column. Flushed, since the client waits for it before
/// sending data.
pub(crate) async fn send_copy_in_response<C>(client: &mut C, columns: usize) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    client
        .send(PgWireBackendMessage::CopyInResponse(CopyInResponse::new(
            0,
            columns as i16,
            vec![0; columns],
        )))
        .await?;
    Ok(())
}

/// One value in COPY's text or CSV escaping.
fn put_value(line: &mut Vec<u8>, text: &str, column: Option<usize>, format: &CopyFormat) {
    if format.csv {
        let needs_quotes = column.is_some_and(|c| format.force_quote.contains(&c))
            || text == format.null
            || text == "\\."
            || text
                .bytes()
                .any(|b| b == format.delimiter || b == format.quote || b == b'\r' || b == b'\n');
        if !needs_quotes {
            line.extend_from_slice(text.as_bytes());
            return;
        }
        line.push(format.quote);
        for b in text.bytes() {
            if b == format.quote || b == format.escape {
                line.push(format.escape);
            }
            line.push(b);
        }
        line.push(format.quote);
        return;
    }
    for b in text.bytes() {
        match b {
            b'\\' => line.extend_from_slice(b"\\\\"),
            8 => line.extend_from_slice(b"\\b"),
            12 => line.extend_from_slice(b"\\f"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            b'\t' => line.extend_from_slice(b"\\t"),
            11 => line.extend_from_slice(b"\\v"),
            b if b == format.delimiter => {
                line.push(b'\\');
                line.push(b);
            }
            b => line.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thunderdb_compute::arrow::datatypes::{DataType, Field, Schema};

    fn target(csv: bool, header: bool) -> Arc<CopyInTarget> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let mut format = CopyFormat {
            csv,
            delimiter: if csv { b',' } else { b'\t' },
            null: if csv { String::new() } else { "\\N".into() },
            header,
            quote: b'"',
            escape: b'"',
            force_quote: vec![],
            force_not_null: vec![],
            force_null: vec![],
        };
        format.header = header;
        Arc::new(CopyInTarget {
            table: "t".into(),
            schema,
            format,
        })
    }

    fn read(csv: bool, header: bool, chunks: &[&[u8]]) -> Vec<String> {
        let mut copy = CopyIn::new(target(csv, header), ParamContext::default());
        for c in chunks {
            assert!(copy.feed(c).is_ok());
        }
        let Ok((_, batches)) = copy.finish() else {
            panic!("finish failed")
        };
        let mut out = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                let cells: Vec<String> = b
                    .columns()
                    .iter()
                    .map(|c| {
                        thunderdb_compute::arrow::util::display::array_value_to_string(c, r)
                            .expect("display")
                    })
                    .map(|s| if s.is_empty() { "<>".into() } else { s })
                    .collect();
                out.push(cells.join("|"));
            }
        }
        out
    }

    #[test]
    fn text_rows_across_messages_with_escapes_and_end_marker() {
        let rows = read(
            false,
            false,
            &[
                b"1\ta\\tb\n2\t\\N\n3\tx\\",
                b"ny\r\n4\t\\101\\x42\n\\.\n",
                b"ignored\n",
            ],
        );
        assert_eq!(rows, vec!["1|a\tb", "2|<>", "3|x\ny", "4|AB"]);
    }

    #[test]
    fn csv_quotes_headers_and_nulls() {
        let rows = read(
            true,
            true,
            &[b"id,name\n1,\"a,\"\"b\"\"\n", b"c\"\n2,\n3,\"\"\n4,plain"],
        );
        assert_eq!(rows, vec!["1|a,\"b\"\nc", "2|<>", "3|<>", "4|plain"]);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let mut copy = CopyIn::new(target(false, false), ParamContext::default());
        assert!(copy.feed(b"1\ta\n").is_ok());
        let Err(e) = copy.feed(b"x\tb\n") else {
            panic!("bad integer accepted")
        };
        assert_eq!(e.context, "COPY t, line 2, column id: \"x\"");
        assert_eq!(e.error.sqlstate(), "22P02");
        let mut copy = CopyIn::new(target(false, false), ParamContext::default());
        let Err(e) = copy.feed(b"1\n") else {
            panic!("short row accepted")
        };
        assert_eq!(e.error.to_string(), "missing data for column \"name\"");
        let mut copy = CopyIn::new(target(false, false), ParamContext::default());
        let Err(e) = copy.feed(b"1\ta\tb\n") else {
            panic!("long row accepted")
        };
        assert_eq!(e.error.to_string(), "extra data after last expected column");
        let mut copy = CopyIn::new(target(true, false), ParamContext::default());
        assert!(copy.feed(b"1,\"open").is_ok());
        assert!(copy.finish().is_err());
    }

    #[test]
    fn values_are_escaped_for_output() {
        let text = target(false, false);
        let mut line = Vec::new();
        put_value(&mut line, "a\tb\\c\nd", Some(1), &text.format);
        assert_eq!(line, b"a\\tb\\\\c\\nd");
        let csv = target(true, false);
        let mut line = Vec::new();
        put_value(&mut line, "say \"hi\", ok", Some(1), &csv.format);
        assert_eq!(line, b"\"say \"\"hi\"\", ok\"");
        let mut line = Vec::new();
        put_value(&mut line, "", Some(1), &csv.format);
        assert_eq!(line, b"\"\"");
    }
}
