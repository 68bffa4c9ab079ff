//! json and jsonb: casts (`'…'::jsonb`), the operators (`-> ->> #> #>> @> <@ ? ?| ?&`), the
//! functions applications use most (`jsonb_build_object`, `to_jsonb`, `jsonb_agg`,
//! `jsonb_typeof`, `jsonb_array_length`, `jsonb_extract_path`, `jsonb_pretty` …) and `uuid`
//! casts. Values are text in Arrow; result fields carry their PostgreSQL type in metadata so
//! the frontends send the right OID.

use crate::error::{to_df, user_error};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, ListArray, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ExprSchemable, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
    function::{AccumulatorArgs, StateFieldsArgs},
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, DataType as SqlDataType, Expr as SqlExpr, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;
use std::sync::Arc;
use thunderdb_common::json::{self, Json};
use thunderdb_common::types::PG_TYPE_METADATA;
use thunderdb_common::{SqlState, SqlType};

/// What a function's result is, for its field's type tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Output {
    Jsonb,
    Json,
    Uuid,
    /// json when the first argument is json, else jsonb (`->`, `#>` keep their input's type).
    LikeFirst,
    Text,
    Bool,
    Int,
}

type Kernel = fn(&[ArrayRef], &[FieldRef], usize) -> DfResult<ArrayRef>;

/// One json function: a kernel over whole argument arrays.
struct JsonFn {
    name: &'static str,
    signature: Signature,
    output: Output,
    kernel: Kernel,
}

impl std::fmt::Debug for JsonFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for JsonFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for JsonFn {}

impl std::hash::Hash for JsonFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

/// A field tagged with PostgreSQL type `tag` (json, jsonb, uuid).
fn tagged(name: &str, tag: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
        .with_metadata([(PG_TYPE_METADATA.to_string(), tag.to_string())].into())
}

fn tag_of(field: &Field) -> Option<&str> {
    field.metadata().get(PG_TYPE_METADATA).map(String::as_str)
}

fn output_field(name: &str, output: Output, first: Option<&FieldRef>) -> Field {
    match output {
        Output::Jsonb => tagged(name, "jsonb"),
        Output::Json => tagged(name, "json"),
        Output::Uuid => tagged(name, "uuid"),
        Output::LikeFirst => match first.and_then(|f| tag_of(f)) {
            Some("json") => tagged(name, "json"),
            _ => tagged(name, "jsonb"),
        },
        Output::Text => Field::new(name, DataType::Utf8, true),
        Output::Bool => Field::new(name, DataType::Boolean, true),
        Output::Int => Field::new(name, DataType::Int32, true),
    }
}

impl ScalarUDFImpl for JsonFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(output_field(self.name, self.output, None)
            .data_type()
            .clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(output_field(
            self.name,
            self.output,
            args.arg_fields.first(),
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = (self.kernel)(&arrays, &args.arg_fields, if scalar { 1 } else { rows })?;
        if scalar {
            return ScalarValue::try_from_array(&out, 0).map(ColumnarValue::Scalar);
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// The JSON value at `row` of a text argument (`None` for NULL); text that is not JSON fails
/// as PostgreSQL's input function does.
fn json_at(array: &ArrayRef, row: usize) -> DfResult<Option<Json>> {
    if null_at(array, row) {
        return Ok(None);
    }
    let text = text_value(array, row)?;
    json::parse(&text, true)
        .map(Some)
        .map_err(|e| to_df(crate::convert::json_input_error(&e)))
}

/// Whether `array[row]` is NULL, for NULL-typed arrays (an untyped NULL literal) too.
fn null_at(array: &dyn Array, row: usize) -> bool {
    array.logical_nulls().is_some_and(|n| n.is_null(row))
}

fn text_value(array: &ArrayRef, row: usize) -> DfResult<String> {
    match array.data_type() {
        DataType::Utf8 => Ok(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Ok(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Ok(array.as_string_view().value(row).to_string()),
        _ => {
            let text = cast(array, &DataType::Utf8)?;
            Ok(text.as_string::<i32>().value(row).to_string())
        }
    }
}

fn texts(rows: usize, f: impl FnMut(usize) -> DfResult<Option<String>>) -> DfResult<ArrayRef> {
    Ok(Arc::new(
        (0..rows).map(f).collect::<DfResult<StringArray>>()?,
    ))
}

fn bools(rows: usize, f: impl FnMut(usize) -> DfResult<Option<bool>>) -> DfResult<ArrayRef> {
    Ok(Arc::new(
        (0..rows).map(f).collect::<DfResult<BooleanArray>>()?,
    ))
}

fn invalid(message: String) -> datafusion::error::DataFusionError {
    to_df(user_error(SqlState::INVALID_PARAMETER_VALUE, message))
}

/// `'…'::jsonb`.
fn jsonb_in(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| Ok(json_at(&a[0], r)?.map(|v| v.to_string())))
}

/// `'…'::json`: checked, kept as given.
fn json_in(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| {
        if null_at(&a[0], r) {
            return Ok(None);
        }
        let text = text_value(&a[0], r)?;
        crate::convert::typed_text_input(&SqlType::JsonText, &text)
            .map(Some)
            .map_err(to_df)
    })
}

/// `'…'::uuid`.
fn uuid_in(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| {
        if null_at(&a[0], r) {
            return Ok(None);
        }
        let text = text_value(&a[0], r)?;
        crate::convert::typed_text_input(&SqlType::Uuid, &text)
            .map(Some)
            .map_err(to_df)
    })
}

/// The step of `->`: an integer is an array index, anything else an object key.
fn step<'a>(v: &'a Json, key: &ArrayRef, row: usize) -> DfResult<Option<&'a Json>> {
    if null_at(key, row) {
        return Ok(None);
    }
    if key.data_type().is_integer() {
        let i = cast(key, &DataType::Int64)?;
        return Ok(v.element(
            i.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(row),
        ));
    }
    Ok(v.field(&text_value(key, row)?))
}

/// `->`.
fn get(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| {
        let Some(v) = json_at(&a[0], r)? else {
            return Ok(None);
        };
        Ok(step(&v, &a[1], r)?.map(|v| v.to_string()))
    })
}

/// `->>`.
fn get_text(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| {
        let Some(v) = json_at(&a[0], r)? else {
            return Ok(None);
        };
        Ok(step(&v, &a[1], r)?.and_then(Json::as_text))
    })
}

/// The elements of a `text[]` argument: an Arrow list, or text in PostgreSQL's array syntax
/// (`'{a,b}'`, how a literal path arrives). `None` for NULL or a NULL element.
fn text_list(array: &ArrayRef, row: usize) -> DfResult<Option<Vec<String>>> {
    if null_at(array, row) {
        return Ok(None);
    }
    if let Some(list) = array.as_any().downcast_ref::<ListArray>() {
        let values = list.value(row);
        let text = cast(&values, &DataType::Utf8)?;
        let strings = text.as_string::<i32>();
        return Ok((0..strings.len())
            .map(|i| (!strings.is_null(i)).then(|| strings.value(i).to_string()))
            .collect());
    }
    let text = text_value(array, row)?;
    thunderdb_common::text_input::parse_array(&text)
        .map(|items| items.into_iter().collect())
        .ok_or_else(|| {
            to_df(user_error(
                SqlState::INVALID_TEXT_REPRESENTATION,
                format!("malformed array literal: \"{text}\""),
            ))
        })
}

fn path_value(a: &[ArrayRef], r: usize) -> DfResult<Option<Json>> {
    let (Some(v), Some(path)) = (json_at(&a[0], r)?, text_list(&a[1], r)?) else {
        return Ok(None);
    };
    Ok(v.path(&path).cloned())
}

/// `#>`.
fn path(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| Ok(path_value(a, r)?.map(|v| v.to_string())))
}

/// `#>>`.
fn path_text(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| Ok(path_value(a, r)?.and_then(|v| v.as_text())))
}

/// `jsonb_extract_path(j, VARIADIC steps)` and `_text`.
fn extract_path_value(a: &[ArrayRef], r: usize) -> DfResult<Option<Json>> {
    let Some(v) = json_at(&a[0], r)? else {
        return Ok(None);
    };
    let mut steps = Vec::with_capacity(a.len() - 1);
    for s in &a[1..] {
        if null_at(s.as_ref(), r) {
            return Ok(None);
        }
        steps.push(text_value(s, r)?);
    }
    Ok(v.path(&steps).cloned())
}

fn extract_path(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| {
        Ok(extract_path_value(a, r)?.map(|v| v.to_string()))
    })
}

fn extract_path_text(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| {
        Ok(extract_path_value(a, r)?.and_then(|v| v.as_text()))
    })
}

/// `@>`.
fn contains(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    bools(rows, |r| {
        Ok(match (json_at(&a[0], r)?, json_at(&a[1], r)?) {
            (Some(x), Some(y)) => Some(x.contains(&y)),
            _ => None,
        })
    })
}

/// `<@`.
fn contained(a: &[ArrayRef], f: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    contains(&[a[1].clone(), a[0].clone()], f, rows)
}

/// `?`.
fn exists(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    bools(rows, |r| {
        let Some(v) = json_at(&a[0], r)? else {
            return Ok(None);
        };
        if null_at(&a[1], r) {
            return Ok(None);
        }
        Ok(Some(v.has_key(&text_value(&a[1], r)?)))
    })
}

fn exists_keys(a: &[ArrayRef], rows: usize, all: bool) -> DfResult<ArrayRef> {
    bools(rows, |r| {
        let Some(v) = json_at(&a[0], r)? else {
            return Ok(None);
        };
        let Some(keys) = text_list(&a[1], r)? else {
            return Ok(None);
        };
        let mut hits = keys.iter().map(|k| v.has_key(k));
        Ok(Some(if all {
            hits.all(|h| h)
        } else {
            hits.any(|h| h)
        }))
    })
}

/// `?|`.
fn exists_any(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    exists_keys(a, rows, false)
}

/// `?&`.
fn exists_all(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    exists_keys(a, rows, true)
}

fn typeof_(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| {
        Ok(json_at(&a[0], r)?.map(|v| v.type_name().to_string()))
    })
}

fn array_length(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    let lengths = (0..rows)
        .map(|r| match json_at(&a[0], r)? {
            None => Ok(None),
            Some(Json::Array(items)) => Ok(Some(items.len() as i32)),
            Some(Json::Object(_)) => Err(invalid("cannot get array length of a non-array".into())),
            Some(_) => Err(invalid("cannot get array length of a scalar".into())),
        })
        .collect::<DfResult<Int32Array>>()?;
    Ok(Arc::new(lengths))
}

fn pretty(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| Ok(json_at(&a[0], r)?.map(|v| v.pretty())))
}

fn strip_nulls(a: &[ArrayRef], _: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    fn strip(v: Json) -> Json {
        match v {
            Json::Object(fields) => Json::Object(
                fields
                    .into_iter()
                    .filter(|(_, v)| *v != Json::Null)
                    .map(|(k, v)| (k, strip(v)))
                    .collect(),
            ),
            Json::Array(items) => Json::Array(items.into_iter().map(strip).collect()),
            other => other,
        }
    }
    texts(rows, |r| {
        Ok(json_at(&a[0], r)?.map(|v| strip(v).to_string()))
    })
}

/// The JSON of an SQL value, as `to_jsonb` makes it.
fn value_json(array: &ArrayRef, field: Option<&FieldRef>, row: usize) -> DfResult<Json> {
    use datafusion::arrow::util::display::array_value_to_string;
    if null_at(array, row) {
        return Ok(Json::Null);
    }
    let text = || -> DfResult<String> { Ok(array_value_to_string(array, row)?) };
    Ok(match array.data_type() {
        DataType::Boolean => Json::Bool(array.as_boolean().value(row)),
        t if t.is_integer() => Json::Number(text()?),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let f = cast(array, &DataType::Float64)?;
            let v = f
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(row);
            if v.is_nan() {
                Json::String("NaN".into())
            } else if v.is_infinite() {
                Json::String(if v > 0.0 { "Infinity" } else { "-Infinity" }.into())
            } else {
                Json::Number(json::canonical_number(&format!("{v:?}")).unwrap_or(text()?))
            }
        }
        DataType::Decimal128(..) | DataType::Decimal256(..) => Json::Number(text()?),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = text_value(array, row)?;
            match field.and_then(|f| tag_of(f)) {
                Some("json" | "jsonb") => json::parse(&s, true)
                    .map_err(|e| to_df(crate::convert::json_input_error(&e)))?,
                _ => Json::String(s),
            }
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let micros = array
                .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                .value(row);
            let ts = chrono::DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| invalid("timestamp out of range".into()))?;
            let mut s = ts.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string();
            if tz.is_some() {
                s.push_str("+00:00");
            }
            Json::String(s)
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let values = list.value(row);
            let element = match array.data_type() {
                DataType::List(f) => Some(f.clone()),
                _ => None,
            };
            Json::Array(
                (0..values.len())
                    .map(|i| value_json(&values, element.as_ref(), i))
                    .collect::<DfResult<_>>()?,
            )
        }
        DataType::Binary | DataType::LargeBinary => {
            let bytes = cast(array, &DataType::Binary)?;
            let b = bytes.as_binary::<i32>().value(row);
            let mut s = String::from("\\x");
            for byte in b {
                s.push_str(&format!("{byte:02x}"));
            }
            Json::String(s)
        }
        _ => Json::String(text()?),
    })
}

fn to_jsonb(a: &[ArrayRef], f: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| {
        if null_at(&a[0], r) {
            return Ok(None);
        }
        Ok(Some(value_json(&a[0], f.first(), r)?.to_string()))
    })
}

fn build_array(a: &[ArrayRef], f: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    texts(rows, |r| {
        let items = a
            .iter()
            .zip(f)
            .map(|(arr, field)| value_json(arr, Some(field), r))
            .collect::<DfResult<Vec<_>>>()?;
        Ok(Some(Json::Array(items).to_string()))
    })
}

fn build_object(a: &[ArrayRef], f: &[FieldRef], rows: usize) -> DfResult<ArrayRef> {
    if !a.len().is_multiple_of(2) {
        return Err(invalid(
            "argument list must have even number of elements".into(),
        ));
    }
    texts(rows, |r| {
        let mut fields = Vec::with_capacity(a.len() / 2);
        for (i, pair) in a.chunks(2).enumerate() {
            if null_at(&pair[0], r) {
                return Err(to_df(user_error(
                    SqlState("22004"),
                    format!("argument {}: key must not be null", i * 2 + 1),
                )));
            }
            let key = text_value(&pair[0], r)?;
            fields.push((key, value_json(&pair[1], f.get(i * 2 + 1), r)?));
        }
        // Canonical order and duplicate handling, as jsonb input gives.
        let text = Json::Object(fields).to_string();
        json::jsonb_text(&text)
            .map(Some)
            .map_err(|e| to_df(crate::convert::json_input_error(&e)))
    })
}

fn scalar_fn(
    name: &'static str,
    arity: Option<usize>,
    output: Output,
    kernel: Kernel,
) -> ScalarUDF {
    let signature = match arity {
        Some(n) => Signature::any(n, Volatility::Immutable),
        None => Signature::variadic_any(Volatility::Immutable),
    };
    ScalarUDF::new_from_impl(JsonFn {
        name,
        signature,
        output,
        kernel,
    })
}

/// `jsonb_agg` and `json_agg`: the values of the group as one JSON array (NULL for none).
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonAgg {
    name: &'static str,
    signature: Signature,
    jsonb: bool,
}

impl AggregateUDFImpl for JsonAgg {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field(&self, _arg_fields: &[FieldRef]) -> DfResult<FieldRef> {
        Ok(Arc::new(tagged(
            self.name,
            if self.jsonb { "jsonb" } else { "json" },
        )))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(JsonAggAcc {
            field: args
                .exprs
                .first()
                .and_then(|e| e.return_field(args.schema).ok()),
            items: Vec::new(),
            jsonb: self.jsonb,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}_items", args.name),
            DataType::Utf8,
            true,
        ))])
    }
}

#[derive(Debug)]
struct JsonAggAcc {
    field: Option<FieldRef>,
    items: Vec<Json>,
    jsonb: bool,
}

impl Accumulator for JsonAggAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let Some(array) = values.first() else {
            return Ok(());
        };
        for row in 0..array.len() {
            self.items
                .push(value_json(array, self.field.as_ref(), row)?);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(array) = states.first() else {
            return Ok(());
        };
        for row in 0..array.len() {
            if let Some(Json::Array(items)) = json_at(array, row)? {
                self.items.extend(items);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Utf8(
            (!self.items.is_empty()).then(|| Json::Array(self.items.clone()).to_string()),
        )])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        if self.items.is_empty() {
            return Ok(ScalarValue::Utf8(None));
        }
        let value = Json::Array(self.items.clone());
        Ok(ScalarValue::Utf8(Some(if self.jsonb {
            value.to_string()
        } else {
            json_array_text(&self.items)
        })))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.items.len() * std::mem::size_of::<Json>()
    }
}

/// json_agg's text: elements as JSON, separated by `, `.
fn json_array_text(items: &[Json]) -> String {
    let parts: Vec<String> = items.iter().map(Json::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// The scalar functions: name, arity (`None`: variadic), result type, kernel. The operators
/// plan as the `__thunder_json*` ones.
const FUNCTIONS: [(&str, Option<usize>, Output, Kernel); 27] = {
    use Output::*;
    [
        ("__thunder_jsonb_in", Some(1), Jsonb, jsonb_in),
        ("__thunder_json_in", Some(1), Json, json_in),
        ("__thunder_uuid_in", Some(1), Uuid, uuid_in),
        ("__thunder_json_get", Some(2), LikeFirst, get),
        ("__thunder_json_get_text", Some(2), Text, get_text),
        ("__thunder_json_path", Some(2), LikeFirst, path),
        ("__thunder_json_path_text", Some(2), Text, path_text),
        ("__thunder_jsonb_contains", Some(2), Bool, contains),
        ("__thunder_jsonb_contained", Some(2), Bool, contained),
        ("__thunder_jsonb_exists", Some(2), Bool, exists),
        ("__thunder_jsonb_exists_any", Some(2), Bool, exists_any),
        ("__thunder_jsonb_exists_all", Some(2), Bool, exists_all),
        ("jsonb_typeof", Some(1), Text, typeof_),
        ("json_typeof", Some(1), Text, typeof_),
        ("jsonb_array_length", Some(1), Int, array_length),
        ("json_array_length", Some(1), Int, array_length),
        ("jsonb_extract_path", None, Jsonb, extract_path),
        ("json_extract_path", None, Json, extract_path),
        ("jsonb_extract_path_text", None, Text, extract_path_text),
        ("json_extract_path_text", None, Text, extract_path_text),
        ("jsonb_pretty", Some(1), Text, pretty),
        ("jsonb_strip_nulls", Some(1), Jsonb, strip_nulls),
        ("to_jsonb", Some(1), Jsonb, to_jsonb),
        ("to_json", Some(1), Json, to_jsonb),
        ("jsonb_build_array", None, Jsonb, build_array),
        ("json_build_array", None, Json, build_array),
        ("jsonb_build_object", None, Jsonb, build_object),
    ]
};

/// Registers the functions, the aggregates and the operator planner.
pub fn register(ctx: &SessionContext) {
    for (name, arity, output, kernel) in FUNCTIONS {
        ctx.register_udf(scalar_fn(name, arity, output, kernel));
    }
    for (name, jsonb) in [("jsonb_agg", true), ("json_agg", false)] {
        ctx.register_udaf(AggregateUDF::new_from_impl(JsonAgg {
            name,
            signature: Signature::any(1, Volatility::Immutable),
            jsonb,
        }));
    }
    let state = ctx.state_ref();
    // Cannot fail: registering a planner only appends it.
    let _ = datafusion::execution::FunctionRegistry::register_expr_planner(
        &mut *state.write(),
        Arc::new(JsonOperators),
    );
}

/// Plans the json operators as calls of the functions above.
#[derive(Debug)]
struct JsonOperators;

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> DfResult<PlannerResult<RawBinaryExpr>> {
        let is_list = |e: &datafusion::logical_expr::Expr| {
            matches!(
                e.get_type(schema),
                Ok(DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..))
            )
        };
        let name = match expr.op {
            BinaryOperator::Arrow => "__thunder_json_get",
            BinaryOperator::LongArrow => "__thunder_json_get_text",
            BinaryOperator::HashArrow => "__thunder_json_path",
            BinaryOperator::HashLongArrow => "__thunder_json_path_text",
            // Arrays have their own @> and <@.
            BinaryOperator::AtArrow if !is_list(&expr.left) && !is_list(&expr.right) => {
                "__thunder_jsonb_contains"
            }
            BinaryOperator::ArrowAt if !is_list(&expr.left) && !is_list(&expr.right) => {
                "__thunder_jsonb_contained"
            }
            BinaryOperator::Question => "__thunder_jsonb_exists",
            BinaryOperator::QuestionPipe => "__thunder_jsonb_exists_any",
            BinaryOperator::QuestionAnd => "__thunder_jsonb_exists_all",
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let Some(&(name, arity, output, kernel)) = FUNCTIONS.iter().find(|f| f.0 == name) else {
            return Ok(PlannerResult::Original(expr));
        };
        let udf = Arc::new(scalar_fn(name, arity, output, kernel));
        Ok(PlannerResult::Planned(
            datafusion::logical_expr::Expr::ScalarFunction(ScalarFunction::new_udf(
                udf,
                vec![expr.left, expr.right],
            )),
        ))
    }
}

/// Rewrites casts to json, jsonb and uuid (which DataFusion does not know) as calls of their
/// input functions.
pub fn rewrite_casts(stmt: &mut ast::Statement) {
    struct Casts;
    impl VisitorMut for Casts {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
            let (inner, data_type) = match expr {
                SqlExpr::Cast {
                    expr, data_type, ..
                } => ((**expr).clone(), data_type.clone()),
                SqlExpr::TypedString(ts) => {
                    (SqlExpr::Value(ts.value.clone()), ts.data_type.clone())
                }
                _ => return ControlFlow::Continue(()),
            };
            let function = match &data_type {
                SqlDataType::JSONB => "__thunder_jsonb_in",
                SqlDataType::JSON => "__thunder_json_in",
                SqlDataType::Uuid => "__thunder_uuid_in",
                SqlDataType::Custom(name, _) => match name.to_string().to_lowercase().as_str() {
                    "jsonb" | "pg_catalog.jsonb" => "__thunder_jsonb_in",
                    "json" | "pg_catalog.json" => "__thunder_json_in",
                    "uuid" | "pg_catalog.uuid" => "__thunder_uuid_in",
                    _ => return ControlFlow::Continue(()),
                },
                _ => return ControlFlow::Continue(()),
            };
            *expr = SqlExpr::Function(crate::sql::function(function, vec![inner]));
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Casts);
}
