//! Relation metadata that `#[derive(Document)]` records for an ORM layer:
//! reference fields (many-to-one), `has_many` declarations (one-to-many),
//! their cascade rules, and the optimistic-lock (`version`) field.
//!
//! The engine itself never reads any of it; `collection-store-orm` does
//! (populate, cascading persist and remove, optimistic locking).
//!
//! Declared as `#[document(reference(cascade(persist)))] author: Ref<User>` on a
//! field and `#[document(has_many(posts, Post.author, cascade(remove)))]` on the
//! struct; read back with [`Document::relations`].

use std::any::Any;

use super::Document;

/// What happens to related documents when a document is persisted or removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Cascade {
    /// Persisting the document also persists the (new) documents it references.
    pub persist: bool,
    /// Removing the document also removes the documents that reference it.
    pub remove: bool,
}

/// The direction of a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelationKind {
    /// This document stores the target's primary key in a reference field.
    ManyToOne,
    /// The target documents store this document's primary key in one of their
    /// fields; nothing is stored on this side.
    OneToMany,
}

/// One declared relation of a document type.
#[derive(Debug, Clone)]
pub struct Relation {
    /// The Rust field name (many-to-one) or the declared name (one-to-many).
    pub name: &'static str,
    /// Many-to-one or one-to-many.
    pub kind: RelationKind,
    /// The stored path of the reference: for many-to-one the field of this
    /// document, for one-to-many the field of the target that references this one.
    pub path: String,
    /// The target collection.
    pub target: &'static str,
    /// The target collection's primary key field.
    pub target_id_field: &'static str,
    /// Cascade rules.
    pub cascade: Cascade,
    /// The target type's own relations (for cascades that continue there).
    pub target_relations: fn() -> Vec<Relation>,
}

/// A field type that references documents of another collection: the ORM's
/// `Ref<T>`, and `Option` or `Vec` of a reference. `#[document(reference)]`
/// fields must have such a type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a reference type",
    label = "a #[document(reference)] field must be a reference (e.g. `Ref<T>`, `Option<Ref<T>>`, `Vec<Ref<T>>`)"
)]
pub trait Reference: 'static {
    /// The referenced document type.
    type Target: Document;

    /// Calls `f` with every handle attached to this reference (implementation
    /// defined: the ORM attaches its managed entities for cascading persist).
    fn for_each_attached(&self, f: &mut dyn FnMut(&dyn Any));
}

impl<R: Reference> Reference for Option<R> {
    type Target = R::Target;
    fn for_each_attached(&self, f: &mut dyn FnMut(&dyn Any)) {
        if let Some(r) = self {
            r.for_each_attached(f);
        }
    }
}

impl<R: Reference> Reference for Vec<R> {
    type Target = R::Target;
    fn for_each_attached(&self, f: &mut dyn FnMut(&dyn Any)) {
        for r in self {
            r.for_each_attached(f);
        }
    }
}

/// Receives the reference fields of a document ([`Document::visit_references`]).
pub trait ReferenceVisitor {
    /// Called once per `#[document(reference)]` field with its relation name
    /// and value.
    fn visit<R: Reference>(&mut self, relation: &'static str, value: &R);
}

/// Integer types that can hold an optimistic-lock version (`#[document(version)]`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a version field",
    label = "a #[document(version)] field must be an integer (u32, u64, i32, i64)"
)]
pub trait VersionField {}

impl VersionField for u32 {}
impl VersionField for u64 {}
impl VersionField for i32 {}
impl VersionField for i64 {}

/// The relation metadata of a generated `relations()`.
pub fn relation<D: Document>(
    name: &'static str,
    kind: RelationKind,
    path: &str,
    cascade: Cascade,
) -> Relation {
    Relation {
        name,
        kind,
        path: path.to_owned(),
        target: D::COLLECTION,
        target_id_field: D::ID_FIELD,
        cascade,
        target_relations: D::relations,
    }
}
