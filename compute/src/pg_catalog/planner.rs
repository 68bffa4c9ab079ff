//! What DataFusion's planner needs beyond functions: `__thunder_single`, the aggregate that
//! gives a scalar sub-query PostgreSQL's at-most-one-row meaning in a form DataFusion can
//! decorrelate, and the planner hook that reads `'{0}'` as an array where an array is compared.

use crate::error::{to_df, user_error};
use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Expr, ExprSchemable, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use std::sync::Arc;
use thunderdb_common::SqlState;

/// The name of the single-row aggregate the rewrite wraps scalar sub-queries in.
pub const SINGLE: &str = "__thunder_single";

/// `__thunder_single(x)`: the value of the only row, NULL for none, and PostgreSQL's error for
/// more than one — what a scalar sub-query means, in a form DataFusion can decorrelate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Single {
    signature: Signature,
}

impl Default for Single {
    fn default() -> Self {
        Single {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Single {
    fn name(&self) -> &str {
        SINGLE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(arg_types[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(SingleAccumulator {
            value: ScalarValue::try_from(args.return_field.data_type())?,
            rows: 0,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[value]", args.name),
                args.return_field.data_type().clone(),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[rows]", args.name),
                DataType::Int64,
                false,
            )),
        ])
    }
}

#[derive(Debug)]
struct SingleAccumulator {
    value: ScalarValue,
    rows: i64,
}

impl SingleAccumulator {
    fn check(&self) -> DfResult<()> {
        if self.rows > 1 {
            return Err(to_df(user_error(
                SqlState("21000"),
                "more than one row returned by a subquery used as an expression",
            )));
        }
        Ok(())
    }
}

impl Accumulator for SingleAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let v = &values[0];
        if !v.is_empty() {
            self.value = ScalarValue::try_from_array(v, v.len() - 1)?;
        }
        self.rows += v.len() as i64;
        self.check()
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        self.check()?;
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![
            self.value.clone(),
            ScalarValue::Int64(Some(self.rows)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let counts = states[1].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        for r in 0..counts.len() {
            let c = counts.value(r);
            if c > 0 {
                self.value = ScalarValue::try_from_array(&states[0], r)?;
            }
            self.rows += c;
        }
        self.check()
    }
}

/// Reads a string literal compared with an array as PostgreSQL's array text: in
/// `polroles = '{0}'` the literal is an `oid[]`.
#[derive(Debug)]
pub struct ArrayLiteralPlanner;

impl ExprPlanner for ArrayLiteralPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> DfResult<PlannerResult<RawBinaryExpr>> {
        if !matches!(expr.op, BinaryOperator::Eq | BinaryOperator::NotEq) {
            return Ok(PlannerResult::Original(expr));
        }
        let elem = |e: &Expr| match e.get_type(schema) {
            Ok(DataType::List(f)) => Some(f.data_type().clone()),
            _ => None,
        };
        let literal = |e: &Expr| match e {
            Expr::Literal(ScalarValue::Utf8(Some(s)), _) if s.trim_start().starts_with('{') => {
                Some(s.clone())
            }
            _ => None,
        };
        let RawBinaryExpr { op, left, right } = expr;
        let (left, right) = match (elem(&left), literal(&right), elem(&right), literal(&left)) {
            (Some(t), Some(text), _, _) => (left, array_literal(&text, &t)?),
            (_, _, Some(t), Some(text)) => (array_literal(&text, &t)?, right),
            _ => (left, right),
        };
        Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }))
    }
}

/// `{a,b,"c d",NULL}` as a list literal of `elem`s.
fn array_literal(text: &str, elem: &DataType) -> DfResult<Expr> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| {
            to_df(user_error(
                SqlState::INVALID_TEXT_REPRESENTATION,
                format!("malformed array literal: \"{text}\""),
            ))
        })?;
    let mut items: Vec<Option<String>> = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => current.extend(chars.next()),
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            ',' if !quoted => {
                items.push(element(&current, was_quoted));
                current.clear();
                was_quoted = false;
            }
            c => current.push(c),
        }
    }
    if !inner.trim().is_empty() {
        items.push(element(&current, was_quoted));
    }
    let values = items
        .into_iter()
        .map(|i| match i {
            None => ScalarValue::try_from(elem),
            Some(s) => ScalarValue::Utf8(Some(s)).cast_to(elem),
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(Expr::Literal(
        ScalarValue::List(ScalarValue::new_list_nullable(&values, elem)),
        None,
    ))
}

fn element(raw: &str, quoted: bool) -> Option<String> {
    if quoted {
        return Some(raw.to_string());
    }
    let t = raw.trim();
    (!t.eq_ignore_ascii_case("null")).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Array;

    #[test]
    fn array_text_parses() {
        let e = array_literal("{0}", &DataType::Int64).expect("parse");
        let Expr::Literal(ScalarValue::List(l), _) = e else {
            panic!("not a list literal: {e}")
        };
        assert_eq!(l.value(0).len(), 1);
        let e = array_literal("{a,\"b,c\",NULL}", &DataType::Utf8).expect("parse");
        let Expr::Literal(ScalarValue::List(l), _) = e else {
            panic!("not a list literal: {e}")
        };
        let v = l.value(0);
        let s = v.as_string::<i32>();
        assert_eq!(s.value(1), "b,c");
        assert!(s.is_null(2));
        let e = array_literal("{}", &DataType::Int64).expect("parse");
        let Expr::Literal(ScalarValue::List(l), _) = e else {
            panic!("not a list literal: {e}")
        };
        assert_eq!(l.value(0).len(), 0);
    }
}
