//! Arithmetic as PostgreSQL defines it where Arrow differs: integer overflow is 22003 (Arrow
//! wraps around), floating-point `/` and `%` by zero raise `division by zero` (22012) where
//! Arrow returns Infinity or NaN, and a cast from numeric or float to an integer rounds (Arrow
//! truncates). This analyzer rule, run after type coercion, routes those operations through
//! functions that behave so; no expression changes its type.

use crate::error::user_error;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float32Array, Float64Array};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchemaRef, Result};
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarUDF, Volatility,
    cast, create_udf,
};
use datafusion::optimizer::AnalyzerRule;
use std::sync::Arc;
use thunderdb_common::SqlState;

fn zero_error() -> datafusion::error::DataFusionError {
    crate::error::to_df(user_error(SqlState::DIVISION_BY_ZERO, "division by zero"))
}

macro_rules! checked_udf {
    ($name:expr, $arr:ty, $dt:expr, $op:expr) => {{
        let f = Arc::new(|args: &[ColumnarValue]| -> Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let l = arrays[0]
                .as_any()
                .downcast_ref::<$arr>()
                .expect("signature fixes the type");
            let r = arrays[1]
                .as_any()
                .downcast_ref::<$arr>()
                .expect("signature fixes the type");
            let mut out = Vec::with_capacity(l.len());
            for i in 0..l.len() {
                if l.is_null(i) || r.is_null(i) {
                    out.push(None);
                } else if r.value(i) == 0.0 {
                    return Err(zero_error());
                } else {
                    out.push(Some($op(l.value(i), r.value(i))));
                }
            }
            Ok(ColumnarValue::Array(
                Arc::new(out.into_iter().collect::<$arr>()) as ArrayRef,
            ))
        });
        Arc::new(create_udf(
            $name,
            vec![$dt, $dt],
            $dt,
            Volatility::Immutable,
            f,
        ))
    }};
}

/// Integer `+ - *` that fails with 22003 on overflow (Arrow's default kernels wrap around).
fn checked_int_udf(name: &str, dt: DataType, op: Operator) -> Arc<ScalarUDF> {
    let range_error = match dt {
        DataType::Int16 => "smallint out of range",
        DataType::Int32 => "integer out of range",
        _ => "bigint out of range",
    };
    let f = Arc::new(move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let (l, r) = (&arrays[0], &arrays[1]);
        let result = match op {
            Operator::Plus => numeric::add(l, r),
            Operator::Minus => numeric::sub(l, r),
            _ => numeric::mul(l, r),
        };
        result.map(ColumnarValue::Array).map_err(|_| {
            crate::error::to_df(user_error(
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                range_error,
            ))
        })
    });
    Arc::new(create_udf(
        name,
        vec![dt.clone(), dt.clone()],
        dt,
        Volatility::Immutable,
        f,
    ))
}

/// The analyzer rule; holds the checking functions it calls.
#[derive(Debug)]
pub struct PgArithmetic {
    /// Checked integer arithmetic by (type, operator).
    checked: Vec<(DataType, Operator, Arc<ScalarUDF>)>,
    /// `rint` for floats (half to even), the rounding PostgreSQL's float-to-int casts use.
    rint: Arc<ScalarUDF>,
    /// DataFusion's `round` (half away from zero), PostgreSQL's numeric-to-int rounding.
    round_numeric: Arc<ScalarUDF>,
    div64: Arc<ScalarUDF>,
    rem64: Arc<ScalarUDF>,
    div32: Arc<ScalarUDF>,
    rem32: Arc<ScalarUDF>,
}

impl Default for PgArithmetic {
    fn default() -> Self {
        let mut checked = Vec::new();
        for (dt, tname) in [
            (DataType::Int16, "i16"),
            (DataType::Int32, "i32"),
            (DataType::Int64, "i64"),
        ] {
            for (op, oname) in [
                (Operator::Plus, "add"),
                (Operator::Minus, "sub"),
                (Operator::Multiply, "mul"),
            ] {
                checked.push((
                    dt.clone(),
                    op,
                    checked_int_udf(&format!("__thunder_{oname}_{tname}"), dt.clone(), op),
                ));
            }
        }
        let rint = Arc::new(|args: &[ColumnarValue]| -> Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let values: &Float64Array = arrays[0].as_primitive();
            let out: Float64Array = values.unary(f64::round_ties_even);
            Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
        });
        PgArithmetic {
            checked,
            rint: Arc::new(create_udf(
                "__thunder_rint",
                vec![DataType::Float64],
                DataType::Float64,
                Volatility::Immutable,
                rint,
            )),
            round_numeric: datafusion::functions::math::round(),
            div64: checked_udf!(
                "__thunder_div_f64",
                Float64Array,
                DataType::Float64,
                |a: f64, b: f64| a / b
            ),
            rem64: checked_udf!(
                "__thunder_rem_f64",
                Float64Array,
                DataType::Float64,
                |a: f64, b: f64| a % b
            ),
            div32: checked_udf!(
                "__thunder_div_f32",
                Float32Array,
                DataType::Float32,
                |a: f32, b: f32| a / b
            ),
            rem32: checked_udf!(
                "__thunder_rem_f32",
                Float32Array,
                DataType::Float32,
                |a: f32, b: f32| a % b
            ),
        }
    }
}

impl PgArithmetic {
    /// `CAST(x AS int)` of a numeric rounds half away from zero, of a float half to even.
    fn rounding_cast(&self, e: Expr, schema: &DFSchemaRef) -> Result<Transformed<Expr>> {
        let (Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field })) = &e else {
            return Ok(Transformed::no(e));
        };
        if !matches!(
            field.data_type(),
            DataType::Int16 | DataType::Int32 | DataType::Int64
        ) {
            return Ok(Transformed::no(e));
        }
        let (rounder, arg) = match expr.get_type(schema) {
            Ok(DataType::Decimal128(..)) => (&self.round_numeric, expr.as_ref().clone()),
            Ok(DataType::Float64) => (&self.rint, expr.as_ref().clone()),
            Ok(DataType::Float32) => (&self.rint, cast(expr.as_ref().clone(), DataType::Float64)),
            _ => return Ok(Transformed::no(e)),
        };
        let rounded = Box::new(Expr::ScalarFunction(ScalarFunction::new_udf(
            rounder.clone(),
            vec![arg],
        )));
        Ok(Transformed::yes(match e {
            Expr::Cast(c) => Expr::Cast(Cast {
                expr: rounded,
                field: c.field,
            }),
            Expr::TryCast(c) => Expr::TryCast(TryCast {
                expr: rounded,
                field: c.field,
            }),
            other => other,
        }))
    }

    fn rewrite(&self, e: Expr, schema: &DFSchemaRef) -> Result<Transformed<Expr>> {
        if matches!(e, Expr::Cast(_) | Expr::TryCast(_)) {
            return self.rounding_cast(e, schema);
        }
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else {
            return Ok(Transformed::no(e));
        };
        let (Ok(lt), Ok(rt)) = (left.get_type(schema), right.get_type(schema)) else {
            return Ok(Transformed::no(e));
        };
        if matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply) {
            let Some((_, _, udf)) = self
                .checked
                .iter()
                .find(|(dt, o, _)| *o == *op && *dt == lt && *dt == rt)
            else {
                return Ok(Transformed::no(e));
            };
            let args = vec![left.as_ref().clone(), right.as_ref().clone()];
            return Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(udf.clone(), args),
            )));
        }
        if !matches!(op, Operator::Divide | Operator::Modulo) {
            return Ok(Transformed::no(e));
        }
        let udf = match (&lt, &rt, op) {
            (DataType::Float64, DataType::Float64, Operator::Divide) => &self.div64,
            (DataType::Float64, DataType::Float64, _) => &self.rem64,
            (DataType::Float32, DataType::Float32, Operator::Divide) => &self.div32,
            (DataType::Float32, DataType::Float32, _) => &self.rem32,
            _ => return Ok(Transformed::no(e)),
        };
        let args = vec![left.as_ref().clone(), right.as_ref().clone()];
        Ok(Transformed::yes(Expr::ScalarFunction(
            ScalarFunction::new_udf(udf.clone(), args),
        )))
    }
}

impl AnalyzerRule for PgArithmetic {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|p| {
            let schema = match &p {
                LogicalPlan::Projection(_)
                | LogicalPlan::Aggregate(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::Sort(_) => p
                    .inputs()
                    .first()
                    .map(|i| Arc::clone(i.schema()))
                    .unwrap_or_else(|| Arc::clone(p.schema())),
                _ => Arc::clone(p.schema()),
            };
            // Output names must not change with the rewrite: references above use them.
            let names = NamePreserver::new(&p);
            p.map_expressions(|expr| {
                let saved = names.save(&expr);
                Ok(expr
                    .transform_up(|e| self.rewrite(e, &schema))?
                    .update_data(|e| saved.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "thunderdb_pg_arithmetic"
    }
}
