//! Date, timestamp and interval arithmetic with PostgreSQL's result types, decided while the
//! SQL is planned (so every schema above sees the right type): `date ± interval` is a
//! `timestamp`, `timestamp - timestamp` is an interval with whole days (`justify_hours`), and
//! `interval * number`, `number * interval`, `interval / number` exist.

use crate::error::{to_df, user_error};
use datafusion::arrow::array::{ArrayRef, AsArray, Float64Array, IntervalMonthDayNanoArray};
use datafusion::arrow::datatypes::{
    DataType, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
};
use datafusion::common::{DFSchema, Result as DfResult};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, Operator, ScalarUDF, Volatility, cast,
    create_udf,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::BinaryOperator;
use std::sync::Arc;
use thunderdb_common::SqlState;

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);
const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;
const DAYS_PER_MONTH: i32 = 30;

/// Plans the binary operators above; everything else goes on to DataFusion unchanged.
#[derive(Debug)]
pub struct TemporalPlanner {
    interval_mul: Arc<ScalarUDF>,
    interval_div: Arc<ScalarUDF>,
    justify_hours: Arc<ScalarUDF>,
}

impl TemporalPlanner {
    /// The planner, sharing the interval functions it calls with `register_functions`.
    pub fn new(ctx: &SessionContext) -> TemporalPlanner {
        let udf = |name: &str| {
            ctx.udf(name)
                .expect("temporal::register_functions runs first")
        };
        TemporalPlanner {
            interval_mul: udf("__thunder_interval_mul"),
            interval_div: udf("__thunder_interval_div"),
            justify_hours: udf("justify_hours"),
        }
    }
}

fn binary(left: Expr, op: Operator, right: Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)))
}

fn call(udf: &Arc<ScalarUDF>, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(udf.clone(), args))
}

fn is_number(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Null)
}

impl ExprPlanner for TemporalPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> DfResult<PlannerResult<RawBinaryExpr>> {
        let op = match expr.op {
            BinaryOperator::Plus => Operator::Plus,
            BinaryOperator::Minus => Operator::Minus,
            BinaryOperator::Multiply => Operator::Multiply,
            BinaryOperator::Divide => Operator::Divide,
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let (Ok(lt), Ok(rt)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        let timestamp = DataType::Timestamp(TimeUnit::Microsecond, None);
        let RawBinaryExpr { left, right, .. } = &expr;
        let planned = match (&lt, op, &rt) {
            (DataType::Date32, Operator::Plus | Operator::Minus, DataType::Interval(_)) => {
                binary(cast(left.clone(), timestamp), op, right.clone())
            }
            (DataType::Interval(_), Operator::Plus, DataType::Date32) => {
                binary(cast(right.clone(), timestamp), op, left.clone())
            }
            (DataType::Timestamp(..), Operator::Minus, DataType::Timestamp(..)) => {
                let difference = binary(left.clone(), op, right.clone());
                call(&self.justify_hours, vec![cast(difference, INTERVAL)])
            }
            (DataType::Interval(_), Operator::Multiply, t) if is_number(t) => call(
                &self.interval_mul,
                vec![
                    cast(left.clone(), INTERVAL),
                    cast(right.clone(), DataType::Float64),
                ],
            ),
            (t, Operator::Multiply, DataType::Interval(_)) if is_number(t) => call(
                &self.interval_mul,
                vec![
                    cast(right.clone(), INTERVAL),
                    cast(left.clone(), DataType::Float64),
                ],
            ),
            (DataType::Interval(_), Operator::Divide, t) if is_number(t) => call(
                &self.interval_div,
                vec![
                    cast(left.clone(), INTERVAL),
                    cast(right.clone(), DataType::Float64),
                ],
            ),
            _ => return Ok(PlannerResult::Original(expr)),
        };
        Ok(PlannerResult::Planned(planned))
    }
}

/// PostgreSQL's `TSROUND`: a fraction of seconds or days kept to microseconds.
fn ts_round(x: f64) -> f64 {
    (x * 1e6).round_ties_even() / 1e6
}

/// `interval * factor` as PostgreSQL's `interval_mul` computes it: the fractional part of the
/// months spills into days (30 a month) and that of the days into time.
fn interval_mul(span: IntervalMonthDayNano, factor: f64) -> Option<IntervalMonthDayNano> {
    let months = f64::from(span.months) * factor;
    let days = f64::from(span.days) * factor;
    if !months.is_finite() || !days.is_finite() || months.abs() > f64::from(i32::MAX) {
        return None;
    }
    let mut result_months = months as i32;
    let mut result_days = days as i32;
    let month_remainder_days =
        ts_round((months - f64::from(result_months)) * f64::from(DAYS_PER_MONTH));
    let mut sec_remainder = ts_round(
        (days - f64::from(result_days) + month_remainder_days - month_remainder_days.trunc())
            * 86_400.0,
    );
    if sec_remainder.abs() >= 86_400.0 {
        let whole = (sec_remainder / 86_400.0).trunc();
        result_days = result_days.checked_add(whole as i32)?;
        sec_remainder -= whole * 86_400.0;
    }
    result_days = result_days.checked_add(month_remainder_days as i32)?;
    let micros =
        ((span.nanoseconds as f64 / 1000.0) * factor + sec_remainder * 1e6).round_ties_even();
    if !micros.is_finite() || micros.abs() > (i64::MAX / 1000) as f64 {
        return None;
    }
    if result_months == i32::MIN {
        result_months = i32::MIN + 1;
    }
    Some(IntervalMonthDayNano::new(
        result_months,
        result_days,
        (micros as i64) * 1000,
    ))
}

/// Moves one `unit` between a larger part and a smaller one so their signs agree.
fn agree_signs(high: i64, low: i64, unit: i64) -> (i64, i64) {
    if high > 0 && low < 0 {
        (high - 1, low + unit)
    } else if high < 0 && low > 0 {
        (high + 1, low - unit)
    } else {
        (high, low)
    }
}

fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// `justify_hours`: whole days out of the time part, signs made to agree.
fn justify_hours(span: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let days = i64::from(span.days) + span.nanoseconds / NANOS_PER_DAY;
    let (days, nanos) = agree_signs(days, span.nanoseconds % NANOS_PER_DAY, NANOS_PER_DAY);
    IntervalMonthDayNano::new(span.months, clamp_i32(days), nanos)
}

/// `justify_days`: whole months (of 30 days) out of the days, signs made to agree.
fn justify_days(span: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let per_month = i64::from(DAYS_PER_MONTH);
    let months = i64::from(span.months) + i64::from(span.days) / per_month;
    let (months, days) = agree_signs(months, i64::from(span.days) % per_month, per_month);
    IntervalMonthDayNano::new(clamp_i32(months), clamp_i32(days), span.nanoseconds)
}

/// `justify_interval`, step for step as PostgreSQL's: months from days, then days from time,
/// then all three signs made to agree.
fn justify_interval(span: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let per_month = i64::from(DAYS_PER_MONTH);
    let mut months = i64::from(span.months) + i64::from(span.days) / per_month;
    let mut days = i64::from(span.days) % per_month + span.nanoseconds / NANOS_PER_DAY;
    let nanos = span.nanoseconds % NANOS_PER_DAY;
    if months > 0 && (days < 0 || (days == 0 && nanos < 0)) {
        days += per_month;
        months -= 1;
    } else if months < 0 && (days > 0 || (days == 0 && nanos > 0)) {
        days -= per_month;
        months += 1;
    }
    let (days, nanos) = agree_signs(days, nanos, NANOS_PER_DAY);
    IntervalMonthDayNano::new(clamp_i32(months), clamp_i32(days), nanos)
}

fn out_of_range() -> datafusion::error::DataFusionError {
    to_df(user_error(
        SqlState::DATETIME_FIELD_OVERFLOW,
        "interval out of range",
    ))
}

fn register_unary(
    ctx: &SessionContext,
    name: &str,
    f: fn(IntervalMonthDayNano) -> IntervalMonthDayNano,
) {
    let body = Arc::new(move |args: &[ColumnarValue]| -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let spans = arrays[0].as_primitive::<IntervalMonthDayNanoType>();
        let out: IntervalMonthDayNanoArray = spans.unary(f);
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    });
    ctx.register_udf(create_udf(
        name,
        vec![INTERVAL],
        INTERVAL,
        Volatility::Immutable,
        body,
    ));
}

fn register_scaling(ctx: &SessionContext, name: &str, divide: bool) {
    let body = Arc::new(move |args: &[ColumnarValue]| -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let spans = arrays[0].as_primitive::<IntervalMonthDayNanoType>();
        let factors: &Float64Array = arrays[1].as_primitive();
        let mut out = IntervalMonthDayNanoArray::builder(spans.len());
        for (span, factor) in spans.iter().zip(factors.iter()) {
            match (span, factor) {
                (Some(span), Some(factor)) => {
                    let factor = if divide {
                        if factor == 0.0 {
                            return Err(to_df(user_error(
                                SqlState::DIVISION_BY_ZERO,
                                "division by zero",
                            )));
                        }
                        1.0 / factor
                    } else {
                        factor
                    };
                    out.append_value(interval_mul(span, factor).ok_or_else(out_of_range)?);
                }
                _ => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    });
    ctx.register_udf(create_udf(
        name,
        vec![INTERVAL, DataType::Float64],
        INTERVAL,
        Volatility::Immutable,
        body,
    ));
}

/// Registers `justify_hours`, `justify_days`, `justify_interval` and the interval scaling
/// functions the planner calls.
pub fn register_functions(ctx: &SessionContext) {
    register_unary(ctx, "justify_hours", justify_hours);
    register_unary(ctx, "justify_days", justify_days);
    register_unary(ctx, "justify_interval", justify_interval);
    register_scaling(ctx, "__thunder_interval_mul", false);
    register_scaling(ctx, "__thunder_interval_div", true);
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000_000;

    #[test]
    fn multiplication_spills_fractions_down() {
        // PostgreSQL: interval '1 month' * 1.5 = '1 mon 15 days'.
        let r = interval_mul(IntervalMonthDayNano::new(1, 0, 0), 1.5).unwrap();
        assert_eq!((r.months, r.days, r.nanoseconds), (1, 15, 0));
        // interval '1 day' * 0.5 = '12:00:00'.
        let r = interval_mul(IntervalMonthDayNano::new(0, 1, 0), 0.5).unwrap();
        assert_eq!((r.months, r.days, r.nanoseconds), (0, 0, 12 * HOUR));
        // interval '1 hour' * 2 = '02:00:00'.
        let r = interval_mul(IntervalMonthDayNano::new(0, 0, HOUR), 2.0).unwrap();
        assert_eq!((r.months, r.days, r.nanoseconds), (0, 0, 2 * HOUR));
        assert!(interval_mul(IntervalMonthDayNano::new(i32::MAX, 0, 0), 2.0).is_none());
    }

    #[test]
    fn justify_moves_whole_units_and_agrees_signs() {
        let r = justify_hours(IntervalMonthDayNano::new(0, 0, 744 * HOUR));
        assert_eq!((r.days, r.nanoseconds), (31, 0));
        let r = justify_hours(IntervalMonthDayNano::new(0, 1, -HOUR));
        assert_eq!((r.days, r.nanoseconds), (0, 23 * HOUR));
        let r = justify_days(IntervalMonthDayNano::new(0, 65, 0));
        assert_eq!((r.months, r.days), (2, 5));
        // justify_interval('1 mon -1 hour') = '29 days 23:00:00'.
        let r = justify_interval(IntervalMonthDayNano::new(1, 0, -HOUR));
        assert_eq!((r.months, r.days, r.nanoseconds), (0, 29, 23 * HOUR));
    }
}
