//! PostgreSQL scalar functions DataFusion lacks or types differently: `ceil`, `floor` and
//! `trunc` of a numeric have PostgreSQL's result scale, `mod(a, b)` and `sign(x)` exist.

use crate::error::{to_df, user_error};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer;
use datafusion::logical_expr::{
    ColumnarValue, Operator, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::sync::Arc;
use thunderdb_common::SqlState;

/// A rounding function whose numeric result has the scale PostgreSQL gives it: 0 for the
/// one-argument form (`ceil(1.5)` is `2`, not `2.0`), `n` for `trunc(x, n)` with a constant
/// `n`; every other form is DataFusion's own.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RoundedScale {
    inner: Arc<ScalarUDF>,
}

impl RoundedScale {
    /// The result type when it differs from DataFusion's (which keeps the input's scale).
    fn rounded_type(arg_types: &[DataType], digits: Option<&ScalarValue>) -> Option<DataType> {
        let (p, s) = match arg_types.first() {
            Some(DataType::Decimal128(p, s)) if *s > 0 => (*p, *s),
            _ => return None,
        };
        let digits = match (arg_types.len(), digits) {
            (1, _) => 0,
            (2, Some(n)) => n
                .cast_to(&DataType::Int64)
                .ok()
                .and_then(|n| match n {
                    ScalarValue::Int64(Some(n)) => i8::try_from(n).ok(),
                    _ => None,
                })
                .filter(|n| (0..s).contains(n))?,
            _ => return None,
        };
        Some(DataType::Decimal128(p, digits))
    }
}

impl ScalarUDFImpl for RoundedScale {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match Self::rounded_type(arg_types, None) {
            Some(t) => Ok(t),
            None => self.inner.inner().return_type(arg_types),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let digits = args.scalar_arguments.get(1).copied().flatten();
        match Self::rounded_type(&types, digits) {
            Some(t) => Ok(Arc::new(Field::new(self.name(), t, true))),
            None => self.inner.return_field_from_args(args),
        }
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let input = args.arg_fields.first().map(|f| f.data_type().clone());
        let wanted = args.return_field.data_type().clone();
        match input {
            Some(input @ DataType::Decimal128(..)) if input != wanted => {
                // DataFusion's kernel rounds at the input's scale; the digits dropped are
                // zeros, so the cast is exact.
                args.return_field =
                    Arc::new(args.return_field.as_ref().clone().with_data_type(input));
                self.inner.invoke_with_args(args)?.cast_to(&wanted, None)
            }
            _ => self.inner.invoke_with_args(args),
        }
    }
}

/// `mod(a, b)`: the remainder with the sign of `a`, in the arguments' common numeric type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Mod {
    signature: Signature,
}

impl ScalarUDFImpl for Mod {
    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(arg_types[0].clone())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        let undefined = || {
            to_df(user_error(
                SqlState::UNDEFINED_FUNCTION,
                format!(
                    "function mod({}) does not exist",
                    vec!["unknown"; arg_types.len()].join(", ")
                ),
            ))
        };
        let [l, r] = arg_types else {
            return Err(undefined());
        };
        if !(l.is_numeric() || l.is_null()) || !(r.is_numeric() || r.is_null()) {
            return Err(undefined());
        }
        let (l, r) = BinaryTypeCoercer::new(l, &Operator::Modulo, r).get_input_types()?;
        // `mod(5, 3.0)` is numeric in both places, the common type `%` would use.
        let common = BinaryTypeCoercer::new(&l, &Operator::Modulo, &r).get_result_type()?;
        Ok(vec![common.clone(), common])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        numeric::rem(&arrays[0], &arrays[1])
            .map(ColumnarValue::Array)
            .map_err(|e| {
                if e.to_string().to_lowercase().contains("divide by zero") {
                    to_df(user_error(SqlState::DIVISION_BY_ZERO, "division by zero"))
                } else {
                    e.into()
                }
            })
    }
}

/// Registers the functions above over DataFusion's own.
pub fn register(ctx: &SessionContext) {
    for name in ["ceil", "floor", "trunc"] {
        if let Ok(inner) = ctx.udf(name) {
            ctx.register_udf(ScalarUDF::new_from_impl(RoundedScale { inner }));
        }
    }
    // PostgreSQL 13+ spells DataFusion's `uuid()` (a random version 4 UUID) so.
    if let Ok(uuid) = ctx.udf("uuid") {
        ctx.register_udf(uuid.as_ref().clone().with_aliases(["gen_random_uuid"]));
    }
    // PostgreSQL spells DataFusion's `signum` as `sign`.
    if let Ok(signum) = ctx.udf("signum") {
        ctx.register_udf(signum.as_ref().clone().with_aliases(["sign"]));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(Mod {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
}
