//! Numbers as JavaScript writes them (`JSON.stringify`, `String(n)`), so
//! our text is byte-identical to the reference's.

use serde_json::value::RawValue;

/// How to write a float so the text matches JavaScript's `JSON.stringify`.
pub(super) enum JsFloat {
    /// An integral value below 2^53: its exact digits, no `.0`.
    Integer(i64),
    /// serde_json's shortest form already matches JavaScript's.
    AsIs,
    /// The text JavaScript writes, where serde_json would use an exponent
    /// and JavaScript does not (rare: these values allocate).
    Text(Box<RawValue>),
}

/// JavaScript writes shortest round-trip digits like serde_json, but uses
/// plain decimals for 1e-6 <= |v| < 1e21 where serde_json switches to an
/// exponent below 1e-5 and from 1e16, and drops `.0` from integers.
#[inline]
pub(super) fn js_float(v: f64) -> JsFloat {
    const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0; // 2^53
    let magnitude = v.abs();
    if !v.is_finite() {
        // serde_json writes `null`, as JavaScript does.
        JsFloat::AsIs
    } else if magnitude < EXACT_INTEGERS && (v as i64) as f64 == v {
        // The cast round trip is exact below 2^53 and avoids a `trunc`
        // call. Also turns -0 into 0, as JavaScript does.
        JsFloat::Integer(v as i64)
    } else if (EXACT_INTEGERS..1e21).contains(&magnitude) || (1e-6..1e-5).contains(&magnitude) {
        js_float_text(v)
    } else {
        JsFloat::AsIs
    }
}

/// The rare case of [`js_float`], kept out of line.
#[cold]
#[inline(never)]
fn js_float_text(v: f64) -> JsFloat {
    match RawValue::from_string(js_decimal_text(v)) {
        Ok(raw) => JsFloat::Text(raw),
        Err(_) => JsFloat::AsIs,
    }
}

/// `v` in plain decimal notation with its shortest round-trip digits, for
/// the two ranges [`js_float`] rewrites: large integers padded with zeros,
/// and small values as `0.00000ddd`.
fn js_decimal_text(v: f64) -> String {
    // `{:e}` gives the shortest digits: `d.ddde<exp>`.
    let scientific = format!("{:e}", v.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes a decimal exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut text = String::with_capacity(32);
    if v < 0.0 {
        text.push('-');
    }
    if exponent >= 0 {
        text.push_str(&digits);
        let zeros = (exponent + 1).unsigned_abs() as usize;
        text.extend(std::iter::repeat('0').take(zeros.saturating_sub(digits.len())));
    } else {
        text.push_str("0.");
        text.extend(std::iter::repeat('0').take((-exponent - 1) as usize));
        text.push_str(&digits);
    }
    text
}

/// A number's text as JavaScript's `String(n)` writes it (the same as
/// `JSON.stringify` for finite numbers).
pub(crate) fn js_number_text(v: f64) -> String {
    match js_float(v) {
        JsFloat::Integer(n) => itoa::Buffer::new().format(n).to_owned(),
        JsFloat::Text(raw) => raw.get().to_owned(),
        // Finite here: JSON has no NaN or infinity.
        JsFloat::AsIs => serde_json::to_string(&v).unwrap_or_default(),
    }
}
