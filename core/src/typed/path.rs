//! Typed field paths: [`Field<R, V>`] names one (possibly nested) field of
//! documents of type `R`, whose values have type `V`.
//!
//! Paths are produced by the code `#[derive(Document)]` / `#[derive(Embedded)]`
//! generate (`User::fields().age()`); the operators on a path accept only values
//! of the field's type (see [`Accepts`]), so `User::fields().age().eq("x")` does
//! not compile when `age` is a `u32`.

use std::any::Any;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::OnceLock;

use serde::Serialize;

use super::Embedded;

/// The dotted prefix under which a nested struct's fields live (empty at the root).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Prefix(Cow<'static, str>);

impl Prefix {
    /// The document root.
    pub const fn root() -> Prefix {
        Prefix(Cow::Borrowed(""))
    }

    /// A prefix from a dotted path (`"address"`, `"items.price"`).
    pub fn new(path: impl Into<Cow<'static, str>>) -> Prefix {
        Prefix(path.into())
    }

    /// The path of field `name` under this prefix.
    pub fn join(&self, name: &'static str) -> Cow<'static, str> {
        if self.0.is_empty() {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(format!("{}.{name}", self.0))
        }
    }

    /// The prefix as a dotted path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A typed path to a field of documents of type `R` holding values of type `V`.
///
/// Build filters with its operators ([`eq`](Field::eq), [`gte`](Field::gte),
/// [`contains`](Field::contains), ...) and pass it to [`super::Update`]
/// methods. When `V` is a struct deriving [`Embedded`] (or a `Vec` / `Option` of
/// one), the path dereferences to that struct's field accessors, so
/// `User::fields().address().city()` is the path `address.city`; through an
/// array, `Order::fields().items().sku()` is `items.sku` (matching any element,
/// as in MongoDB).
pub struct Field<R, V> {
    path: Cow<'static, str>,
    nested: OnceLock<Box<dyn Any + Send + Sync>>,
    _marker: PhantomData<fn() -> (R, V)>,
}

impl<R, V> Field<R, V> {
    /// A path from its dotted form. Generated code calls this; prefer the
    /// accessors (`User::fields().age()`), which cannot misspell a field.
    pub fn new(path: impl Into<Cow<'static, str>>) -> Self {
        Field {
            path: path.into(),
            nested: OnceLock::new(),
            _marker: PhantomData,
        }
    }

    /// The dotted path, e.g. `"address.city"`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl<R, V> Clone for Field<R, V> {
    fn clone(&self) -> Self {
        Field::new(self.path.clone())
    }
}

impl<R, V> fmt::Debug for Field<R, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field({:?})", self.path)
    }
}

impl<R: 'static, V: Embedded> Field<R, V> {
    /// The nested struct's field accessors under this path (what `Deref` gives).
    pub fn nested(&self) -> &V::Fields<R> {
        self.nested
            .get_or_init(|| Box::new(V::fields_at::<R>(Prefix::new(self.path.clone()))))
            .downcast_ref::<V::Fields<R>>()
            .unwrap_or_else(|| unreachable!("a Field<R, V> only ever stores V::Fields<R>"))
    }
}

impl<R: 'static, V: Embedded> Deref for Field<R, V> {
    type Target = V::Fields<R>;

    fn deref(&self) -> &V::Fields<R> {
        self.nested()
    }
}

/// Anything that names a typed field: a [`Field`] or a reference to one. Update
/// builders take `impl FieldRef` so a path can be passed by value or by reference.
pub trait FieldRef {
    /// The document type the path belongs to.
    type Root;
    /// The type of the field's values.
    type Value;
    /// The dotted path.
    fn path(&self) -> &str;
}

impl<R, V> FieldRef for Field<R, V> {
    type Root = R;
    type Value = V;
    fn path(&self) -> &str {
        &self.path
    }
}

impl<R, V> FieldRef for &Field<R, V> {
    type Root = R;
    type Value = V;
    fn path(&self) -> &str {
        &self.path
    }
}

/// "A field of type `Self` accepts a `T` as its value": `T` is `Self` itself, a
/// reference to it, `&str` for strings, or the inner value of an `Option`.
///
/// This is what makes `User::fields().age().eq("x")` a compile error when
/// `age` is a `u32`, while `email().eq("a@b")` and `nickname().eq("x")` (an
/// `Option<String>`) read naturally.
#[diagnostic::on_unimplemented(
    message = "a field of type `{Self}` cannot be compared with or set to a `{T}`",
    label = "expected a value of the field's type `{Self}`"
)]
pub trait Accepts<T: ?Sized> {}

impl<V> Accepts<V> for V {}
impl<V> Accepts<&V> for V {}
impl Accepts<&str> for String {}
impl Accepts<&str> for Option<String> {}
impl<T> Accepts<T> for Option<T> {}
impl<T> Accepts<&T> for Option<T> {}

/// Numeric field types: `$inc` and `$mul` take a [`Numeric::Delta`] (`i64` for
/// every integer type, so an unsigned count can be decremented; the float type
/// itself for floats).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a numeric field type",
    label = "$inc and $mul need an integer or float field"
)]
pub trait Numeric {
    /// The type of increments and factors.
    type Delta: Serialize;
}

macro_rules! numeric {
    ($delta:ty: $($t:ty),*) => { $(impl Numeric for $t { type Delta = $delta; })* };
}
numeric!(i64: i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);
numeric!(f64: f64);
numeric!(f32: f32);
impl<N: Numeric> Numeric for Option<N> {
    type Delta = N::Delta;
}

/// Field types stored as arrays: `Vec`, `VecDeque`, `BTreeSet`, `HashSet` and an
/// `Option` of one. Array operators (`contains`, `push`, ...) take [`Array::Elem`] values.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an array field type",
    label = "this operator needs a Vec (or another sequence) field"
)]
pub trait Array {
    /// The element type.
    type Elem;
}

impl<T> Array for Vec<T> {
    type Elem = T;
}
impl<T> Array for VecDeque<T> {
    type Elem = T;
}
impl<T> Array for BTreeSet<T> {
    type Elem = T;
}
impl<T, S> Array for HashSet<T, S> {
    type Elem = T;
}
impl<A: Array> Array for Option<A> {
    type Elem = A::Elem;
}

/// String field types (`String`, `Option<String>`): the regex operators apply.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a string field type",
    label = "regex operators need a String field"
)]
pub trait Text {}
impl Text for String {}
impl Text for Option<String> {}
impl Text for Box<str> {}
impl Text for std::sync::Arc<str> {}

/// Embedded structs reached through a `Vec`, `Option` or `Box` keep their
/// field accessors: `items().sku()` is the path `items.sku`.
impl<T: Embedded> Embedded for Vec<T> {
    type Fields<R: 'static> = T::Fields<R>;
    fn fields_at<R: 'static>(prefix: Prefix) -> Self::Fields<R> {
        T::fields_at(prefix)
    }
}

impl<T: Embedded> Embedded for Option<T> {
    type Fields<R: 'static> = T::Fields<R>;
    fn fields_at<R: 'static>(prefix: Prefix) -> Self::Fields<R> {
        T::fields_at(prefix)
    }
}

impl<T: Embedded> Embedded for Box<T> {
    type Fields<R: 'static> = T::Fields<R>;
    fn fields_at<R: 'static>(prefix: Prefix) -> Self::Fields<R> {
        T::fields_at(prefix)
    }
}
