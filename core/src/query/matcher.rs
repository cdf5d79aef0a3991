//! Evaluates a parsed [`Filter`] against a document, following MongoDB's rules:
//! dotted paths walk embedded documents and arrays of documents, a condition on
//! an array field matches when the array itself or any element satisfies it,
//! a missing field equals `null`, and comparisons are type-bracketed (a number
//! range never matches a string). Runs on encoded documents and owned trees alike.

use std::cmp::Ordering;

use super::filter::{AllItem, BitsOp, CmpOp, ElemMatch, Filter, InItem, Op, RegexMatch, TypeSel};
use crate::doc::path::array_index;
use crate::doc::{compare, type_rank, values_equal, DocRef, Num, ValRef};

impl Filter {
    /// True when the document satisfies the filter.
    pub fn matches(&self, doc: DocRef<'_>) -> bool {
        match self {
            Filter::True => true,
            Filter::And(items) => items.iter().all(|f| f.matches(doc)),
            Filter::Or(items) => items.iter().any(|f| f.matches(doc)),
            Filter::Nor(items) => !items.iter().any(|f| f.matches(doc)),
            Filter::Field { path, op } => eval(op, Source::Path(doc, path.parts())),
        }
    }
}

impl ElemMatch {
    /// True when one array element satisfies the condition.
    pub fn matches_element(&self, element: ValRef<'_>) -> bool {
        match self {
            ElemMatch::Value(ops) => ops.iter().all(|op| eval(op, Source::Value(element))),
            ElemMatch::Document(filter) => match element {
                ValRef::Document(d) => filter.matches(d),
                _ => false,
            },
        }
    }
}

/// Where the values an operator is applied to come from.
#[derive(Clone, Copy)]
enum Source<'a, 'p> {
    /// The values found at a path of a document.
    Path(DocRef<'a>, &'p [String]),
    /// A single value (an array element under `$elemMatch`).
    Value(ValRef<'a>),
}

impl<'a> Source<'a, '_> {
    /// Whether a condition also applies to the elements of an array value
    /// (the implicit array rule). Not for `$elemMatch` elements, which are
    /// tested as whole values.
    fn expands(&self) -> bool {
        matches!(self, Source::Path(..))
    }

    /// Calls `f` for each value (`None` = missing) until it returns true.
    fn any(&self, f: &mut dyn FnMut(Option<ValRef<'a>>) -> bool) -> bool {
        match *self {
            Source::Path(doc, parts) => visit(ValRef::Document(doc), parts, f),
            Source::Value(v) => f(Some(v)),
        }
    }
}

/// Walks `parts` from `cur`, calling `f` on every value reached (or `None` where
/// the path ends in a missing field). Returns true as soon as `f` does.
pub(crate) fn visit<'a>(
    cur: ValRef<'a>,
    parts: &[String],
    f: &mut dyn FnMut(Option<ValRef<'a>>) -> bool,
) -> bool {
    let Some((head, rest)) = parts.split_first() else {
        return f(Some(cur));
    };
    match cur {
        ValRef::Document(d) => match d.get(head) {
            Some(child) => visit(child, rest, f),
            None => f(None),
        },
        ValRef::Array(arr) => {
            let mut reached = false;
            if let Some(i) = array_index(head) {
                if let Some(elem) = arr.get(i) {
                    reached = true;
                    if visit(elem, rest, f) {
                        return true;
                    }
                }
            }
            for elem in arr.iter() {
                if let ValRef::Document(_) = elem {
                    reached = true;
                    if visit(elem, parts, f) {
                        return true;
                    }
                }
            }
            if !reached {
                return f(None);
            }
            false
        }
        _ => f(None),
    }
}

/// Evaluates one operator over all values of a source.
fn eval(op: &Op, src: Source<'_, '_>) -> bool {
    let ex = src.expands();
    match op {
        Op::Ne(x) => !src.any(&mut |v| test_eq(ex, x, v)),
        Op::Nin(items) => !src.any(&mut |v| test_in(ex, items, v)),
        Op::Not(ops) => !ops.iter().all(|o| eval(o, src)),
        Op::Exists(true) => src.any(&mut |v| v.is_some()),
        Op::Exists(false) => !src.any(&mut |v| v.is_some()),
        Op::All(items) => {
            !items.is_empty()
                && items.iter().all(|item| match item {
                    AllItem::Value(x) => src.any(&mut |v| test_eq(ex, x, v)),
                    AllItem::ElemMatch(em) => src.any(&mut |v| test_elem_match(em, v)),
                })
        }
        Op::Eq(x) => src.any(&mut |v| test_eq(ex, x, v)),
        Op::Cmp(c, x) => {
            let x = ValRef::from(x);
            src.any(&mut |v| test_cmp(ex, *c, &x, v))
        }
        Op::In(items) => src.any(&mut |v| test_in(ex, items, v)),
        Op::Type(sels) => src.any(&mut |v| test_type(ex, sels, v)),
        Op::Size(n) => src.any(&mut |v| match v {
            Some(ValRef::Array(a)) => a.len() as u64 == *n,
            _ => false,
        }),
        Op::ElemMatch(em) => src.any(&mut |v| test_elem_match(em, v)),
        Op::Regex(r) => src.any(&mut |v| expand(ex, v, &mut |x| test_regex(r, x))),
        Op::Mod(d, r) => src.any(&mut |v| expand(ex, v, &mut |x| test_mod(*d, *r, x))),
        Op::Bits(b, bits) => src.any(&mut |v| v.is_some_and(|x| test_bits(*b, bits, x))),
    }
}

/// Applies `t` to the value and, when it is an array, to each element.
fn expand(ex: bool, v: Option<ValRef<'_>>, t: &mut dyn FnMut(ValRef<'_>) -> bool) -> bool {
    match v {
        None => false,
        Some(v) => {
            if t(v) {
                return true;
            }
            if let (true, ValRef::Array(a)) = (ex, v) {
                return a.iter().any(t);
            }
            false
        }
    }
}

fn test_eq(ex: bool, x: &bson::Bson, v: Option<ValRef<'_>>) -> bool {
    let x = ValRef::from(x);
    match v {
        None => x.is_nullish(),
        Some(_) => expand(ex, v, &mut |e| values_equal(&e, &x)),
    }
}

fn test_in(ex: bool, items: &[InItem], v: Option<ValRef<'_>>) -> bool {
    items.iter().any(|item| match item {
        InItem::Value(x) => test_eq(ex, x, v),
        InItem::Regex(r) => expand(ex, v, &mut |e| test_regex(r, e)),
    })
}

fn test_cmp(ex: bool, c: CmpOp, x: &ValRef<'_>, v: Option<ValRef<'_>>) -> bool {
    match v {
        None => x.is_nullish() && matches!(c, CmpOp::Gte | CmpOp::Lte),
        Some(_) => expand(ex, v, &mut |e| {
            if type_rank(&e) != type_rank(x) {
                return false;
            }
            let ord = compare(&e, x);
            match c {
                CmpOp::Gt => ord == Ordering::Greater,
                CmpOp::Gte => ord != Ordering::Less,
                CmpOp::Lt => ord == Ordering::Less,
                CmpOp::Lte => ord != Ordering::Greater,
            }
        }),
    }
}

fn test_elem_match(em: &ElemMatch, v: Option<ValRef<'_>>) -> bool {
    match v {
        Some(ValRef::Array(a)) => a.iter().any(|e| em.matches_element(e)),
        _ => false,
    }
}

fn type_matches(sel: TypeSel, v: &ValRef<'_>) -> bool {
    match (sel, v) {
        (TypeSel::Double, ValRef::Number(Num::Double(_))) => true,
        (TypeSel::Int, ValRef::Number(Num::Int(i))) => i32::try_from(*i).is_ok(),
        (TypeSel::Long, ValRef::Number(Num::Int(i))) => i32::try_from(*i).is_err(),
        (TypeSel::Decimal, ValRef::Number(Num::Big(_))) => true,
        (TypeSel::Number, ValRef::Number(_)) => true,
        (TypeSel::String, ValRef::String(_)) => true,
        (TypeSel::Symbol, ValRef::Symbol(_)) => true,
        (TypeSel::Object, ValRef::Document(_)) => true,
        (TypeSel::Array, ValRef::Array(_)) => true,
        (TypeSel::BinData, ValRef::Binary { .. }) => true,
        (TypeSel::Undefined, ValRef::Undefined) => true,
        (TypeSel::ObjectId, ValRef::ObjectId(_)) => true,
        (TypeSel::Bool, ValRef::Boolean(_)) => true,
        (TypeSel::Date, ValRef::DateTime(_)) => true,
        (TypeSel::Null, ValRef::Null) => true,
        (TypeSel::Regex, ValRef::Regex { .. }) => true,
        (TypeSel::JavaScript, ValRef::JavaScript(_)) => true,
        (TypeSel::Timestamp, ValRef::Timestamp { .. }) => true,
        (TypeSel::MinKey, ValRef::MinKey) => true,
        (TypeSel::MaxKey, ValRef::MaxKey) => true,
        _ => false,
    }
}

fn test_type(ex: bool, sels: &[TypeSel], v: Option<ValRef<'_>>) -> bool {
    let Some(v) = v else { return false };
    if sels.iter().any(|s| type_matches(*s, &v)) {
        return true;
    }
    match v {
        ValRef::Array(a) if ex => a.iter().any(|e| {
            sels.iter()
                .any(|s| *s != TypeSel::Array && type_matches(*s, &e))
        }),
        _ => false,
    }
}

fn test_regex(r: &RegexMatch, v: ValRef<'_>) -> bool {
    match v {
        ValRef::String(s) | ValRef::Symbol(s) => r.regex.is_match(s),
        ValRef::Regex { pattern, options } => pattern == r.pattern && options == r.options,
        _ => false,
    }
}

fn integral(v: &ValRef<'_>) -> Option<i128> {
    match v {
        ValRef::Number(Num::Int(i)) => Some(*i as i128),
        ValRef::Number(Num::Big(b)) => Some(*b),
        ValRef::Number(Num::Double(f)) if f.is_finite() && f.abs() < 1.0e38 => {
            Some(f.trunc() as i128)
        }
        _ => None,
    }
}

fn test_mod(d: i64, r: i64, v: ValRef<'_>) -> bool {
    integral(&v).is_some_and(|i| i.checked_rem(d as i128) == Some(r as i128))
}

fn test_bits(op: BitsOp, positions: &[u32], v: ValRef<'_>) -> bool {
    // Numbers are two's complement and sign-extended beyond bit 63; binary
    // data is little-endian by byte and zero-extended (MongoDB manual, $bitsAllSet).
    let bit = |p: u32| -> Option<bool> {
        let int = |i: i64| {
            if p >= 64 {
                i < 0
            } else {
                (i as u64) >> p & 1 == 1
            }
        };
        match &v {
            ValRef::Number(Num::Int(i)) => Some(int(*i)),
            ValRef::Number(Num::Double(f))
                if f.is_finite() && f.fract() == 0.0 && *f >= -9.2e18 && *f <= 9.2e18 =>
            {
                Some(int(*f as i64))
            }
            ValRef::Number(Num::Big(b)) => Some(if p >= 127 { *b < 0 } else { (*b >> p) & 1 == 1 }),
            ValRef::Binary { bytes, .. } => Some(
                bytes
                    .get((p / 8) as usize)
                    .is_some_and(|byte| byte >> (p % 8) & 1 == 1),
            ),
            _ => None,
        }
    };
    if bit(0).is_none() {
        return false;
    }
    let wanted = matches!(op, BitsOp::AllSet | BitsOp::AnySet);
    let mut hits = positions.iter().map(|p| bit(*p) == Some(wanted));
    match op {
        BitsOp::AllSet | BitsOp::AllClear => hits.all(|h| h),
        BitsOp::AnySet | BitsOp::AnyClear => hits.any(|h| h),
    }
}
