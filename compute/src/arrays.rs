//! Arrays: PostgreSQL's one-dimensional arrays, stored as `Datum::Array` and computed as Arrow
//! lists.
//!
//! DataFusion plans array expressions, functions and `ANY` itself; this module adds what makes
//! them PostgreSQL's:
//! - `array_in`: text (`'{a,"b c",NULL}'`) becomes an array through the element type's own input
//!   checks, for INSERT/UPDATE/COPY values ([`cast_to_array`]), casts (`'{1,2}'::int[]`,
//!   rewritten by [`rewrite_casts`] to `__thunder_cast`), and a string literal compared with an
//!   array (`tags @> '{a}'`, [`ArrayLiterals`]) or used in `x = ANY('{1,2}')`.
//! - [`array_text`]: `array_out`, for constraint error details.

use crate::error::{Result, to_df, user_error};
use crate::types::arrow_type;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, StringArray, new_null_array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Expr as SqlExpr, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;
use std::sync::Arc;
use thunderdb_common::text_input::{array_element_out, is_multidimensional_array, parse_array};
use thunderdb_common::{SqlState, SqlType};

/// Converts `array` to arrays of `element`: text through `array_in`, lists element by element
/// through the element type's checks (lengths, json, uuid …). `column` names the target in
/// errors; empty for a cast.
pub fn cast_to_array(array: &ArrayRef, element: &SqlType, column: &str) -> Result<ArrayRef> {
    let ty = SqlType::Array(Box::new(element.clone()));
    let DataType::List(field) = arrow_type(&ty) else {
        unreachable!("arrays are Arrow lists")
    };
    match array.data_type() {
        DataType::Null => Ok(new_null_array(&DataType::List(field), array.len())),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = crate::convert::cast_array(array, &DataType::Utf8)?;
            from_text(text.as_string::<i32>(), field, element, column)
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let values_type = crate::types::list_element(array.data_type())
                .map(|f| f.data_type().clone())
                .unwrap_or(DataType::Null);
            let list = crate::convert::cast_array(array, &DataType::new_list(values_type, true))?;
            let list = list.as_list::<i32>();
            if crate::types::list_element(list.values().data_type())
                .is_some_and(|_| !list.values().is_empty())
            {
                return Err(multidimensional());
            }
            let values = crate::convert::cast_to(list.values(), element, column)?;
            Ok(Arc::new(ListArray::new(
                field,
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )))
        }
        other => {
            let from = crate::types::sql_type_of_field(&datafusion::arrow::datatypes::Field::new(
                "",
                other.clone(),
                true,
            ))
            .map(|t| t.pg_name())
            .unwrap_or_else(|| other.to_string());
            Err(if column.is_empty() {
                user_error(
                    SqlState("42846"),
                    format!("cannot cast type {from} to {}", ty.pg_name()),
                )
            } else {
                user_error(
                    SqlState::DATATYPE_MISMATCH,
                    format!(
                        "column \"{column}\" is of type {} but expression is of type {from}",
                        ty.pg_name()
                    ),
                )
            })
        }
    }
}

fn multidimensional() -> thunderdb_common::ThunderError {
    user_error(
        SqlState::FEATURE_NOT_SUPPORTED,
        "multidimensional arrays are not supported",
    )
}

/// `array_in` over a column of text.
fn from_text(
    text: &StringArray,
    field: FieldRef,
    element: &SqlType,
    column: &str,
) -> Result<ArrayRef> {
    let mut offsets = Vec::with_capacity(text.len() + 1);
    offsets.push(0i32);
    let mut items: Vec<Option<String>> = Vec::new();
    for v in text.iter() {
        if let Some(v) = v {
            items.extend(parse_literal(v)?);
        }
        offsets.push(items.len() as i32);
    }
    let values = crate::convert::cast_to(
        &(Arc::new(StringArray::from(items)) as ArrayRef),
        element,
        column,
    )?;
    Ok(Arc::new(ListArray::new(
        field,
        OffsetBuffer::new(offsets.into()),
        values,
        text.nulls().cloned(),
    )))
}

/// The elements of an array literal, with PostgreSQL's errors for a malformed one.
pub fn parse_literal(v: &str) -> Result<Vec<Option<String>>> {
    if is_multidimensional_array(v) {
        return Err(multidimensional());
    }
    parse_array(v).ok_or_else(|| {
        let e = user_error(
            SqlState::INVALID_TEXT_REPRESENTATION,
            format!("malformed array literal: \"{v}\""),
        );
        let t = v.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            e
        } else {
            e.with_detail("Array value must start with \"{\" or dimension information.")
        }
    })
}

/// `array_out` of elements already in their text form.
pub fn array_text(items: impl Iterator<Item = Option<String>>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Some(v) => array_element_out(&v, &mut out),
            None => out.push_str("NULL"),
        }
    }
    out.push('}');
    out
}

/// `__thunder_cast(value, 'type')`: a cast to an array type, which DataFusion's CAST does not
/// read the PostgreSQL way (`'{1,2}'::int[]` would be a one-element list of a failed integer).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayCast {
    signature: Signature,
}

const ARRAY_CAST: &str = "__thunder_cast";

/// The array type named by `__thunder_cast`'s second argument.
fn cast_target(arg: Option<&ScalarValue>) -> DfResult<SqlType> {
    let name = match arg {
        Some(ScalarValue::Utf8(Some(n))) => n.clone(),
        _ => {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "{ARRAY_CAST} takes a value and a constant type name"
            )));
        }
    };
    let dt = crate::types::parse_data_type(&name).map_err(to_df)?;
    crate::types::sql_type(&dt).map_err(to_df)
}

impl ScalarUDFImpl for ArrayCast {
    fn name(&self) -> &str {
        ARRAY_CAST
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Err(datafusion::error::DataFusionError::Internal(
            "return_field_from_args is used".into(),
        ))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let ty = cast_target(args.scalar_arguments.get(1).copied().flatten())?;
        Ok(Arc::new(crate::types::field(ARRAY_CAST, &ty, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let ty = match args.args.get(1) {
            Some(ColumnarValue::Scalar(s)) => cast_target(Some(s))?,
            _ => cast_target(None)?,
        };
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let out = crate::convert::cast_to(&input, &ty, "").map_err(to_df)?;
        if scalar {
            return ScalarValue::try_from_array(&out, 0).map(ColumnarValue::Scalar);
        }
        Ok(ColumnarValue::Array(out))
    }
}

fn cast_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(ArrayCast {
        signature: Signature::any(2, Volatility::Immutable),
    }))
}

/// Rewrites casts to array types as `__thunder_cast`, and `x op ANY('{…}')` / `x op ALL('{…}')`
/// with a literal as `x op 'a' OR x op 'b' …` (AND for ALL), whose elements take `x`'s type
/// as PostgreSQL's unknown-typed literal does; ANY of no elements is false, ALL true.
pub fn rewrite(stmt: &mut ast::Statement) {
    struct Casts;
    impl VisitorMut for Casts {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
            match expr {
                SqlExpr::Cast {
                    expr: inner,
                    data_type,
                    ..
                } if crate::types::array_element(data_type).is_some() => {
                    let name = data_type.to_string();
                    let inner = (**inner).clone();
                    *expr = SqlExpr::Function(crate::sql::function(
                        ARRAY_CAST,
                        vec![inner, SqlExpr::value(ast::Value::SingleQuotedString(name))],
                    ));
                }
                SqlExpr::AnyOp {
                    left,
                    compare_op,
                    right,
                    ..
                } => {
                    if let Some(items) = literal_elements(right) {
                        *expr = match compare_op {
                            // x evaluated once, and a hashed lookup for long lists.
                            BinaryOperator::Eq if !items.is_empty() => SqlExpr::InList {
                                expr: left.clone(),
                                list: items,
                                negated: false,
                            },
                            _ => element_chain(left, compare_op, items, true),
                        };
                    }
                }
                SqlExpr::AllOp {
                    left,
                    compare_op,
                    right,
                } => {
                    if let Some(items) = literal_elements(right) {
                        *expr = match compare_op {
                            BinaryOperator::NotEq if !items.is_empty() => SqlExpr::InList {
                                expr: left.clone(),
                                list: items,
                                negated: true,
                            },
                            _ => element_chain(left, compare_op, items, false),
                        };
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Casts);
}

/// Reads the string literals of a `VALUES` list going into array columns as arrays, so that
/// rows may mix `'{1,2}'` and `ARRAY[3]` as in PostgreSQL (an unknown-typed literal takes its
/// column's type). `types` are the target columns' types in source order.
pub fn type_values_literals(source: &mut ast::Query, types: &[&SqlType]) {
    let ast::SetExpr::Values(values) = source.body.as_mut() else {
        return;
    };
    for row in &mut values.rows {
        for (cell, ty) in row.iter_mut().zip(types) {
            // A DEFAULT already put in place is a parenthesized expression.
            while let SqlExpr::Nested(inner) = cell
                && matches!(inner.as_ref(), SqlExpr::Value(_) | SqlExpr::Nested(_))
            {
                *cell = inner.as_ref().clone();
            }
            if matches!(ty, SqlType::Array(_))
                && let SqlExpr::Value(v) = cell
                && matches!(
                    v.value,
                    ast::Value::SingleQuotedString(_) | ast::Value::EscapedStringLiteral(_)
                )
            {
                *cell = SqlExpr::Function(crate::sql::function(
                    ARRAY_CAST,
                    vec![
                        cell.clone(),
                        SqlExpr::value(ast::Value::SingleQuotedString(ty.pg_name())),
                    ],
                ));
            }
        }
    }
}

/// `x op e1 OR x op e2 …` (`AND` for ALL), or the constant an empty array gives.
fn element_chain(left: &SqlExpr, op: &BinaryOperator, items: Vec<SqlExpr>, any: bool) -> SqlExpr {
    let joiner = if any {
        BinaryOperator::Or
    } else {
        BinaryOperator::And
    };
    items
        .into_iter()
        .map(|item| SqlExpr::BinaryOp {
            left: Box::new(left.clone()),
            op: op.clone(),
            right: Box::new(item),
        })
        .reduce(|acc, e| SqlExpr::BinaryOp {
            left: Box::new(acc),
            op: joiner.clone(),
            right: Box::new(e),
        })
        .map(|e| SqlExpr::Nested(Box::new(e)))
        .unwrap_or_else(|| SqlExpr::value(ast::Value::Boolean(!any)))
}

/// The elements of a string literal holding a one-dimensional array, as literals.
fn literal_elements(e: &SqlExpr) -> Option<Vec<SqlExpr>> {
    let SqlExpr::Value(v) = e else {
        return None;
    };
    let (ast::Value::SingleQuotedString(text) | ast::Value::EscapedStringLiteral(text)) = &v.value
    else {
        return None;
    };
    if is_multidimensional_array(text) {
        return None;
    }
    let items = parse_array(text)?;
    Some(
        items
            .into_iter()
            .map(|i| match i {
                Some(s) => SqlExpr::value(ast::Value::SingleQuotedString(s)),
                None => SqlExpr::value(ast::Value::Null),
            })
            .collect(),
    )
}

/// Plans an operator between an array and a string literal (`tags @> '{a}'`, `a = '{1,2}'`,
/// `a || '{3}'`) with the literal read as an array of the other side's type, and `a && b`.
#[derive(Debug)]
struct ArrayLiterals;

impl ExprPlanner for ArrayLiterals {
    fn plan_binary_op(
        &self,
        mut expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> DfResult<PlannerResult<RawBinaryExpr>> {
        let array_type = |e: &Expr| -> Option<SqlType> {
            let (_, field) = e.to_field(schema).ok()?;
            crate::types::list_element(field.data_type())?;
            crate::types::sql_type_of_field(&field)
        };
        let is_text_literal = |e: &Expr| matches!(e, Expr::Literal(ScalarValue::Utf8(Some(_)), _));
        // A parameter of no declared type takes the array's type, like an unknown literal.
        let untyped_parameter = |e: &mut Expr, other: &Expr| {
            if let Expr::Placeholder(p) = e
                && p.field.is_none()
                && let Ok((_, field)) = other.to_field(schema)
                && crate::types::list_element(field.data_type()).is_some()
            {
                p.field = Some(Arc::new(field.as_ref().clone().with_name(p.id.clone())));
            }
        };
        untyped_parameter(&mut expr.right, &expr.left);
        untyped_parameter(&mut expr.left, &expr.right);
        if is_text_literal(&expr.right)
            && let Some(ty) = array_type(&expr.left)
        {
            expr.right = cast_call(expr.right, &ty);
        } else if is_text_literal(&expr.left)
            && let Some(ty) = array_type(&expr.right)
        {
            expr.left = cast_call(expr.left, &ty);
        }
        // `&&`, which DataFusion does not plan for arrays.
        if expr.op == BinaryOperator::PGOverlap
            && array_type(&expr.left).is_some()
            && array_type(&expr.right).is_some()
        {
            return Ok(PlannerResult::Planned(
                datafusion::functions_nested::expr_fn::array_has_any(expr.left, expr.right),
            ));
        }
        Ok(PlannerResult::Original(expr))
    }
}

fn cast_call(value: Expr, ty: &SqlType) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        cast_udf(),
        vec![
            value,
            Expr::Literal(ScalarValue::Utf8(Some(ty.pg_name())), None),
        ],
    ))
}

/// Gives the untyped parameter of `x = ANY($1)` (planned as `array_has($1, x)`) the type
/// `x[]`, as PostgreSQL infers it, so that a client's text `'{1,2}'` is read as that array.
pub fn type_any_parameters(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let schema = match node.inputs().as_slice() {
            [input] => Arc::clone(input.schema()),
            _ => Arc::clone(node.schema()),
        };
        node.map_expressions(|e| {
            e.transform_up(|e| {
                let Expr::ScalarFunction(mut f) = e else {
                    return Ok(Transformed::no(e));
                };
                if f.name() != "array_has" || f.args.len() != 2 {
                    return Ok(Transformed::no(Expr::ScalarFunction(f)));
                }
                let element = f.args[1].to_field(&schema).map(|(_, field)| field);
                match (&mut f.args[0], element) {
                    (Expr::Placeholder(p), Ok(element)) if p.field.is_none() => {
                        p.field = Some(Arc::new(Field::new(
                            p.id.clone(),
                            DataType::new_list(element.data_type().clone(), true),
                            true,
                        )));
                        Ok(Transformed::yes(Expr::ScalarFunction(f)))
                    }
                    _ => Ok(Transformed::no(Expr::ScalarFunction(f))),
                }
            })
        })
    })
    .map(|t| t.data)
}

pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udf(cast_udf().as_ref().clone());
}

/// The planner of [`ArrayLiterals`]; it must come before DataFusion's array operators.
pub(crate) fn literal_planner() -> Arc<dyn ExprPlanner> {
    Arc::new(ArrayLiterals)
}
