//! Entities and references: [`Managed<T>`] (the one shared instance of an
//! entity inside an entity manager) and [`Ref<T>`] (a reference field
//! holding the target's primary key).

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use collection_store::typed::{Reference, ReferenceVisitor, RelationKind};
use collection_store::Document;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::driver::{CollectionRef, Doc};
use crate::error::{OrmError, Result};

/// A document type the ORM can manage: any `#[derive(Document)]` struct that
/// can be shared between threads.
pub trait Entity: Document + Send + Sync {}

impl<T: Document + Send + Sync> Entity for T {}

struct Slot<T> {
    value: RwLock<T>,
    /// Set by every `write()`: only touched entities are diffed at flush.
    touched: AtomicBool,
}

/// The shared instance of an entity. Within one entity manager every load of
/// the same document returns a handle to the same instance
/// ([`Managed::ptr_eq`]); change it through [`write`](Self::write) and the
/// next flush writes what changed.
pub struct Managed<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Clone for Managed<T> {
    fn clone(&self) -> Self {
        Managed {
            slot: self.slot.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Managed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.slot.value.read(), f)
    }
}

impl<T> Managed<T> {
    /// A handle on a new, not yet persisted entity (persist it with
    /// [`crate::EntityManager::persist_managed`], or attach it to a
    /// [`Ref`] whose relation cascades persist).
    pub fn new(value: T) -> Self {
        Managed {
            slot: Arc::new(Slot {
                value: RwLock::new(value),
                touched: AtomicBool::new(false),
            }),
        }
    }

    /// Reads the entity. Do not hold the guard across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.slot.value.read()
    }

    /// Changes the entity; the next flush diffs it against what was loaded.
    /// Do not hold the guard across an `.await`.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.slot.touched.store(true, Ordering::Release);
        self.slot.value.write()
    }

    /// True when both handles are the same instance.
    pub fn ptr_eq(a: &Managed<T>, b: &Managed<T>) -> bool {
        Arc::ptr_eq(&a.slot, &b.slot)
    }

    /// A copy of the entity.
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.read().clone()
    }

    pub(crate) fn touched(&self) -> bool {
        self.slot.touched.load(Ordering::Acquire)
    }

    pub(crate) fn set_touched(&self, touched: bool) {
        self.slot.touched.store(touched, Ordering::Release);
    }
}

impl<T: Document> Managed<T> {
    /// The primary key (`None` only before a generated key is assigned).
    pub fn id(&self) -> Option<T::Id> {
        self.read().id().cloned()
    }
}

/// A reference to a document of type `T`, stored as its primary key.
///
/// Declare the field `#[document(reference)]` (or
/// `#[document(reference(cascade(persist)))]`) to make it a many-to-one
/// relation: [`crate::EntityManager::populate`] loads the targets of many
/// references with one query, [`crate::EntityManager::resolve`] finds a
/// loaded target without a query. A reference built with [`Ref::to`] also
/// carries the target instance, so that a relation declared
/// `cascade(persist)` persists a new target together with the referrer.
pub struct Ref<T: Document> {
    id: T::Id,
    attached: Option<(Managed<T>, Arc<dyn Tracked>)>,
}

impl<T: Document> Ref<T> {
    /// A reference to the document with primary key `id`.
    pub fn new(id: T::Id) -> Self {
        Ref { id, attached: None }
    }

    /// The referenced primary key.
    pub fn id(&self) -> &T::Id {
        &self.id
    }

    /// The instance this reference was built from ([`Ref::to`]), if any.
    pub fn attached(&self) -> Option<&Managed<T>> {
        self.attached.as_ref().map(|(m, _)| m)
    }
}

impl<T: Entity> Ref<T> {
    /// A reference to `target`, carrying the instance (a generated primary
    /// key is assigned now if it has none).
    pub fn to(target: &Managed<T>) -> Result<Self> {
        ensure_id(target)?;
        let id = target.id().ok_or_else(|| {
            OrmError::serialization::<T>("the entity has no primary key to reference")
        })?;
        Ok(Ref {
            id,
            attached: Some((target.clone(), Arc::new(target.clone()))),
        })
    }
}

impl<T: Document> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Ref {
            id: self.id.clone(),
            attached: self.attached.clone(),
        }
    }
}

impl<T: Document> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ref<{}>({:?})", T::COLLECTION, self.id)
    }
}

impl<T: Document> PartialEq for Ref<T>
where
    T::Id: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T: Document> Serialize for Ref<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.id.serialize(s)
    }
}

impl<'de, T: Document> Deserialize<'de> for Ref<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Ref::new(T::Id::deserialize(d)?))
    }
}

impl<T: Entity> Reference for Ref<T> {
    type Target = T;

    fn for_each_attached(&self, f: &mut dyn FnMut(&dyn Any)) {
        if let Some((_, tracked)) = &self.attached {
            f(tracked);
        }
    }
}

/// Assigns a generated primary key (a 24-digit hex ObjectId string, as the
/// engine would) to an entity that has none.
pub(crate) fn ensure_id<T: Entity>(m: &Managed<T>) -> Result<()> {
    if m.read().id().is_some() {
        return Ok(());
    }
    let mut v = to_json(&*m.read())?;
    if let Value::Object(map) = &mut v {
        map.insert(
            T::ID_FIELD.to_owned(),
            Value::String(bson::oid::ObjectId::new().to_hex()),
        );
    }
    let value: T = from_json(v)?;
    if value.id().is_none() {
        return Err(OrmError::serialization::<T>(
            "a generated primary key did not fit the id field",
        ));
    }
    *m.slot.value.write() = value;
    Ok(())
}

pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<Value> {
    let v = serde_json::to_value(v).map_err(OrmError::serialization::<T>)?;
    if !v.is_object() {
        return Err(OrmError::serialization::<T>(
            "does not serialize to a document",
        ));
    }
    Ok(v)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(OrmError::serialization::<T>)
}

/// Decodes a stored document into `T` as the engine's typed reads do (the
/// error names the field that does not fit).
pub(crate) fn decode<T: Document>(doc: &Doc) -> Result<T> {
    collection_store::decode_document(doc, T::COLLECTION, T::ID_FIELD).map_err(OrmError::Engine)
}

/// The identity-map key of a primary key: the type and the key as JSON text.
pub(crate) fn key_of<T: 'static, I: Serialize + ?Sized>(id: &I) -> Result<(TypeId, String)> {
    let text = serde_json::to_string(id).map_err(OrmError::serialization::<I>)?;
    Ok((TypeId::of::<T>(), text))
}

/// What the entity manager last knew to be stored for an entity.
#[derive(Debug, Clone)]
pub(crate) enum Snapshot {
    /// The document as loaded (decoded only when the entity is diffed).
    Raw(Doc),
    /// The document as this entity manager last wrote it.
    Json(Value),
}

/// A managed entity with its type erased, as the identity map holds it.
pub(crate) trait Tracked: Send + Sync + 'static {
    fn collection(&self) -> CollectionRef;
    fn collection_name(&self) -> &'static str;
    fn version_field(&self) -> Option<&'static str>;
    fn relations(&self) -> Vec<collection_store::typed::Relation>;
    /// The identity-map key.
    fn key(&self) -> Result<(TypeId, String)>;
    /// The primary key as JSON.
    fn id_json(&self) -> Result<Value>;
    /// The entity as it is now.
    fn current(&self) -> Result<Value>;
    /// The entity as `snapshot` holds it (as the entity type sees it).
    fn baseline(&self, snapshot: &Snapshot) -> Result<Value>;
    fn touched(&self) -> bool;
    fn set_touched(&self, touched: bool);
    /// Replaces the entity's value (after a flush changed its version).
    fn replace(&self, image: Value) -> Result<()>;
    fn ensure_id(&self) -> Result<()>;
    /// Attached targets of the relations declared `cascade(persist)`.
    fn cascade_persist_targets(&self) -> Vec<Arc<dyn Tracked>>;
    /// `(target collection, referenced ids)` of the many-to-one relations, read from `image`.
    fn referenced(&self, image: &Value) -> Vec<(&'static str, Value)>;
    fn same(&self, other: &dyn Any) -> bool;
    fn as_any(&self) -> &dyn Any;
}

struct CascadeVisitor {
    relations: Vec<&'static str>,
    out: Vec<Arc<dyn Tracked>>,
}

impl ReferenceVisitor for CascadeVisitor {
    fn visit<R: Reference>(&mut self, relation: &'static str, value: &R) {
        if !self.relations.contains(&relation) {
            return;
        }
        value.for_each_attached(&mut |any| {
            if let Some(t) = any.downcast_ref::<Arc<dyn Tracked>>() {
                self.out.push(t.clone());
            }
        });
    }
}

impl<T: Entity> Tracked for Managed<T> {
    fn collection(&self) -> CollectionRef {
        CollectionRef::of::<T>()
    }

    fn collection_name(&self) -> &'static str {
        T::COLLECTION
    }

    fn version_field(&self) -> Option<&'static str> {
        T::VERSION_FIELD
    }

    fn relations(&self) -> Vec<collection_store::typed::Relation> {
        T::relations()
    }

    fn key(&self) -> Result<(TypeId, String)> {
        match self.read().id() {
            Some(id) => key_of::<T, _>(id),
            None => Err(OrmError::serialization::<T>(
                "the entity has no primary key",
            )),
        }
    }

    fn id_json(&self) -> Result<Value> {
        match self.read().id() {
            Some(id) => serde_json::to_value(id).map_err(OrmError::serialization::<T::Id>),
            None => Err(OrmError::serialization::<T>(
                "the entity has no primary key",
            )),
        }
    }

    fn current(&self) -> Result<Value> {
        to_json(&*self.read())
    }

    fn baseline(&self, snapshot: &Snapshot) -> Result<Value> {
        match snapshot {
            Snapshot::Raw(doc) => to_json(&decode::<T>(doc)?),
            Snapshot::Json(v) => Ok(v.clone()),
        }
    }

    fn touched(&self) -> bool {
        Managed::touched(self)
    }

    fn set_touched(&self, touched: bool) {
        Managed::set_touched(self, touched)
    }

    fn replace(&self, image: Value) -> Result<()> {
        *self.slot.value.write() = from_json(image)?;
        Ok(())
    }

    fn ensure_id(&self) -> Result<()> {
        ensure_id(self)
    }

    fn cascade_persist_targets(&self) -> Vec<Arc<dyn Tracked>> {
        let relations: Vec<&'static str> = T::relations()
            .into_iter()
            .filter(|r| r.kind == RelationKind::ManyToOne && r.cascade.persist)
            .map(|r| r.name)
            .collect();
        if relations.is_empty() {
            return Vec::new();
        }
        let mut v = CascadeVisitor {
            relations,
            out: Vec::new(),
        };
        self.read().visit_references(&mut v);
        v.out
    }

    fn referenced(&self, image: &Value) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        for r in T::relations() {
            if r.kind != RelationKind::ManyToOne {
                continue;
            }
            match path_get(image, &r.path) {
                Some(Value::Array(items)) => {
                    out.extend(items.iter().cloned().map(|id| (r.target, id)))
                }
                Some(Value::Null) | None => {}
                Some(id) => out.push((r.target, id.clone())),
            }
        }
        out
    }

    fn same(&self, other: &dyn Any) -> bool {
        other
            .downcast_ref::<Managed<T>>()
            .is_some_and(|o| Managed::ptr_eq(self, o))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The value at a dotted path of a JSON document.
pub(crate) fn path_get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, part| v.get(part))
}
