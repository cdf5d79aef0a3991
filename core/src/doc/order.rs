//! MongoDB's total order over values of all types (the BSON comparison order):
//! MinKey < null < numbers < strings < objects < arrays < binary < ObjectId <
//! booleans < dates < timestamps < regular expressions < MaxKey.
//!
//! Integers and doubles compare by value exactly (no rounding through `f64`),
//! NaN sorts below every other number and equals itself, and `-0.0 == 0.0`.

use std::cmp::Ordering;

use super::value::{ArrRef, DocRef, Num, ValRef};

/// The canonical type rank used to order values of different types.
pub fn type_rank(v: &ValRef<'_>) -> u8 {
    match v {
        ValRef::MinKey => 1,
        ValRef::Null | ValRef::Undefined => 2,
        ValRef::Number(_) => 3,
        ValRef::String(_) | ValRef::Symbol(_) => 4,
        ValRef::Document(_) => 5,
        ValRef::Array(_) => 6,
        ValRef::Binary { .. } => 7,
        ValRef::ObjectId(_) => 8,
        ValRef::Boolean(_) => 9,
        ValRef::DateTime(_) => 10,
        ValRef::Timestamp { .. } => 11,
        ValRef::Regex { .. } => 12,
        ValRef::JavaScript(_) => 13,
        ValRef::MaxKey => 14,
    }
}

/// Compares two numbers exactly.
pub fn compare_num(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Int(x), Num::Big(y)) => (x as i128).cmp(&y),
        (Num::Big(x), Num::Int(y)) => x.cmp(&(y as i128)),
        (Num::Big(x), Num::Big(y)) => x.cmp(&y),
        (Num::Double(x), Num::Double(y)) => cmp_f64(x, y),
        (Num::Int(x), Num::Double(y)) => cmp_int_f64(x as i128, y),
        (Num::Big(x), Num::Double(y)) => cmp_int_f64(x, y),
        (Num::Double(x), Num::Int(y)) => cmp_int_f64(y as i128, x).reverse(),
        (Num::Double(x), Num::Big(y)) => cmp_int_f64(y, x).reverse(),
    }
}

fn cmp_f64(x: f64, y: f64) -> Ordering {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        // partial_cmp is total on non-NaN values and treats -0.0 == 0.0.
        (false, false) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

/// Exact comparison of an integer with a double.
fn cmp_int_f64(i: i128, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Greater;
    }
    // i128 spans [-2^127, 2^127); doubles outside that are larger in magnitude,
    // and inside it `floor as i128` is exact.
    const TWO_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f >= TWO_127 {
        return Ordering::Less;
    }
    if f < -TWO_127 {
        return Ordering::Greater;
    }
    let floor = f.floor();
    let fi = floor as i128;
    match i.cmp(&fi) {
        Ordering::Equal => {
            if f > floor {
                Ordering::Less
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

/// Compares two values in MongoDB's total order. Arrays compare element by
/// element (this is the order of whole values, used for `$eq` on arrays and
/// for array operands; sorting by an array field uses its min/max element,
/// which the query layer's sort implements).
pub fn compare(a: &ValRef<'_>, b: &ValRef<'_>) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (ValRef::Number(x), ValRef::Number(y)) => compare_num(*x, *y),
        (ValRef::String(x) | ValRef::Symbol(x), ValRef::String(y) | ValRef::Symbol(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        (ValRef::Document(x), ValRef::Document(y)) => compare_docs(x, y),
        (ValRef::Array(x), ValRef::Array(y)) => compare_arrays(x, y),
        (
            ValRef::Binary {
                subtype: sa,
                bytes: ba,
            },
            ValRef::Binary {
                subtype: sb,
                bytes: bb,
            },
        ) => ba
            .len()
            .cmp(&bb.len())
            .then(sa.cmp(sb))
            .then_with(|| ba.cmp(bb)),
        (ValRef::ObjectId(x), ValRef::ObjectId(y)) => x.cmp(y),
        (ValRef::Boolean(x), ValRef::Boolean(y)) => x.cmp(y),
        (ValRef::DateTime(x), ValRef::DateTime(y)) => x.cmp(y),
        (
            ValRef::Timestamp {
                time: ta,
                increment: ia,
            },
            ValRef::Timestamp {
                time: tb,
                increment: ib,
            },
        ) => ta.cmp(tb).then(ia.cmp(ib)),
        (
            ValRef::Regex {
                pattern: pa,
                options: oa,
            },
            ValRef::Regex {
                pattern: pb,
                options: ob,
            },
        ) => pa.cmp(pb).then(oa.cmp(ob)),
        (ValRef::JavaScript(x), ValRef::JavaScript(y)) => x.cmp(y),
        // MinKey, null/undefined and MaxKey: same rank means equal.
        _ => Ordering::Equal,
    }
}

/// Documents compare field by field: first the type of the value, then the
/// field name, then the value; a document that is a prefix of another is smaller.
pub fn compare_docs(a: &DocRef<'_>, b: &DocRef<'_>) -> Ordering {
    let mut ia = a.iter();
    let mut ib = b.iter();
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ka, va)), Some((kb, vb))) => {
                let ord = type_rank(&va)
                    .cmp(&type_rank(&vb))
                    .then_with(|| ka.as_bytes().cmp(kb.as_bytes()))
                    .then_with(|| compare(&va, &vb));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Arrays compare element by element; a prefix is smaller.
pub fn compare_arrays(a: &ArrRef<'_>, b: &ArrRef<'_>) -> Ordering {
    let mut ia = a.iter();
    let mut ib = b.iter();
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = compare(&x, &y);
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Equality in the query language's sense (`$eq`): same canonical type and equal
/// value; documents are equal only with the same fields in the same order.
pub fn values_equal(a: &ValRef<'_>, b: &ValRef<'_>) -> bool {
    compare(a, b) == Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: Num) -> ValRef<'static> {
        ValRef::Number(v)
    }

    #[test]
    fn ints_and_doubles_compare_by_value() {
        assert_eq!(
            compare(&n(Num::Int(5)), &n(Num::Double(5.0))),
            Ordering::Equal
        );
        assert_eq!(
            compare(&n(Num::Int(5)), &n(Num::Double(5.5))),
            Ordering::Less
        );
        assert_eq!(
            compare(&n(Num::Int(-5)), &n(Num::Double(-5.5))),
            Ordering::Greater
        );
        // 2^53 + 1 is not representable as f64; it must still compare above 2^53.
        let big = (1i64 << 53) + 1;
        assert_eq!(
            compare(&n(Num::Int(big)), &n(Num::Double((1u64 << 53) as f64))),
            Ordering::Greater
        );
        assert_eq!(
            compare(&n(Num::Double(f64::NAN)), &n(Num::Int(i64::MIN))),
            Ordering::Less
        );
        assert_eq!(
            compare(&n(Num::Double(-0.0)), &n(Num::Int(0))),
            Ordering::Equal
        );
        assert_eq!(
            compare(&n(Num::Big(1 << 70)), &n(Num::Int(i64::MAX))),
            Ordering::Greater
        );
        assert_eq!(
            compare(&n(Num::Double(f64::INFINITY)), &n(Num::Big(1 << 100))),
            Ordering::Greater
        );
    }

    #[test]
    fn cross_type_order() {
        let order = [
            ValRef::MinKey,
            ValRef::Null,
            ValRef::Number(Num::Int(1)),
            ValRef::String("a"),
            ValRef::Boolean(false),
            ValRef::DateTime(0),
            ValRef::MaxKey,
        ];
        for w in order.windows(2) {
            assert_eq!(compare(&w[0], &w[1]), Ordering::Less);
        }
    }
}
