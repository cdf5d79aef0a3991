//! [`EntityManager`]: an identity map and a unit of work over a [`Driver`].
//!
//! * **Identity map.** One [`Managed<T>`] instance per entity type and
//!   primary key per entity manager: every find returns the loaded instance
//!   for documents already loaded (the stored copy is not re-read into it),
//!   and [`find_by_id`](EntityManager::find_by_id) of a loaded entity costs no
//!   query.
//! * **Unit of work.** [`persist`](EntityManager::persist) and
//!   [`remove`](EntityManager::remove) only schedule work; changes are made
//!   through [`Managed::write`]. [`flush`](EntityManager::flush) diffs each
//!   touched entity against what was loaded and writes, in one ACID
//!   transaction across collections, only what changed (see [`flush`]).
//! * **Contexts.** An entity manager is a context for one request or task:
//!   [`fork`](EntityManager::fork) gives a fresh one over the same driver.
//!   One entity manager is not meant to flush from several tasks at once.

mod diff;
pub(crate) mod flush;
mod populate;

use std::any::TypeId;
use std::sync::Arc;

use indexmap::IndexMap;
use parking_lot::Mutex;
use serde_json::{json, Value};

pub use flush::FlushReport;
pub use populate::Children;

use crate::driver::{CollectionRef, Doc, Driver, FindQuery};
use crate::entity::{decode, ensure_id, key_of, Entity, Managed, Ref, Snapshot, Tracked};
use crate::error::{OrmError, Result};
use crate::query::Query;
use crate::repository::Repository;

pub(crate) type Key = (TypeId, String);

pub(crate) enum State {
    /// Loaded (or last written) as the snapshot says.
    Clean(Snapshot),
    /// Persisted, not yet inserted.
    New,
    /// Scheduled for deletion; the snapshot is what was loaded.
    Removed(Snapshot),
}

pub(crate) struct Entry {
    pub(crate) handle: Arc<dyn Tracked>,
    pub(crate) state: State,
}

#[derive(Default)]
pub(crate) struct Context {
    pub(crate) entries: IndexMap<Key, Entry>,
}

/// The entity manager: see the [module documentation](self).
pub struct EntityManager {
    driver: Arc<dyn Driver>,
    ctx: Mutex<Context>,
    validate_reads: bool,
}

impl std::fmt::Debug for EntityManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityManager")
            .field("driver", &self.driver.name())
            .field("managed", &self.ctx.lock().entries.len())
            .finish()
    }
}

fn id_filter(c: &CollectionRef, id: Value) -> Value {
    json!({ c.id_field.as_ref(): id })
}

impl EntityManager {
    /// An entity manager over `driver` with an empty context.
    pub fn new(driver: Arc<dyn Driver>) -> Self {
        EntityManager {
            driver,
            ctx: Mutex::new(Context::default()),
            validate_reads: false,
        }
    }

    /// The driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// A fresh context over the same driver: its own identity map and unit of
    /// work, nothing shared with this one.
    pub fn fork(&self) -> EntityManager {
        EntityManager::new(self.driver.clone())
    }

    /// Forgets every managed entity and all scheduled work.
    pub fn clear(&self) {
        self.ctx.lock().entries.clear();
    }

    /// How many entities this context manages (new and removed ones included).
    pub fn managed_count(&self) -> usize {
        self.ctx.lock().entries.len()
    }

    /// True when `entity` is the instance this context manages for its key.
    pub fn contains<T: Entity>(&self, entity: &Managed<T>) -> bool {
        let Ok(key) = Tracked::key(entity) else {
            return false;
        };
        self.ctx
            .lock()
            .entries
            .get(&key)
            .is_some_and(|e| e.handle.same(entity.as_any()))
    }

    /// A typed repository over this context.
    pub fn repository<T: Entity>(&self) -> Repository<'_, T> {
        Repository::new(self)
    }

    /// Registers loaded documents: the managed instance for each (existing
    /// instances win over the stored copy; removed ones are left out).
    pub(crate) fn register<T: Entity>(&self, docs: Vec<Doc>) -> Result<Vec<Managed<T>>> {
        let mut decoded = Vec::with_capacity(docs.len());
        for doc in docs {
            let value: T = decode(&doc)?;
            let key = match value.id() {
                Some(id) => key_of::<T, _>(id)?,
                None => continue,
            };
            decoded.push((key, value, doc));
        }
        let mut ctx = self.ctx.lock();
        Ok(decoded
            .into_iter()
            .filter_map(|(key, value, doc)| Self::insert_loaded(&mut ctx, key, value, doc))
            .collect())
    }

    /// The managed instance for a loaded document (the existing one wins;
    /// `None` when it is scheduled for removal).
    fn insert_loaded<T: Entity>(
        ctx: &mut Context,
        key: Key,
        value: T,
        doc: Doc,
    ) -> Option<Managed<T>> {
        match ctx.entries.entry(key) {
            indexmap::map::Entry::Occupied(e) => match e.get().state {
                State::Removed(_) => None,
                _ => Some(downcast::<T>(&e.get().handle)),
            },
            indexmap::map::Entry::Vacant(v) => {
                let m = Managed::new(value);
                v.insert(Entry {
                    handle: Arc::new(m.clone()),
                    state: State::Clean(Snapshot::Raw(doc)),
                });
                Some(m)
            }
        }
    }

    pub(crate) fn lookup<T: Entity>(&self, key: &Key) -> Option<Option<Managed<T>>> {
        match self.ctx.lock().entries.get(key) {
            Some(Entry {
                state: State::Removed(_),
                ..
            }) => Some(None),
            Some(e) => Some(Some(downcast::<T>(&e.handle))),
            None => None,
        }
    }

    /// The entities matching `query`, in its order (primary-key order without a sort).
    pub async fn find<T: Entity>(&self, query: impl Into<Query<T>>) -> Result<Vec<Managed<T>>> {
        let find = query.into().to_find()?;
        let docs = self.driver.find(&CollectionRef::of::<T>(), find).await?;
        self.register(docs)
    }

    /// The first entity matching `query`.
    pub async fn find_one<T: Entity>(
        &self,
        query: impl Into<Query<T>>,
    ) -> Result<Option<Managed<T>>> {
        let find = query.into().to_find()?;
        let doc = self
            .driver
            .find_one(&CollectionRef::of::<T>(), find)
            .await?;
        Ok(self.register(doc.into_iter().collect())?.into_iter().next())
    }

    /// The entity with primary key `id`: the managed instance when it is
    /// loaded already (no query), else one point lookup.
    pub async fn find_by_id<T: Entity>(&self, id: &T::Id) -> Result<Option<Managed<T>>> {
        let key = key_of::<T, _>(id)?;
        if let Some(found) = self.lookup::<T>(&key) {
            return Ok(found);
        }
        let id = serde_json::to_value(id).map_err(OrmError::serialization::<T::Id>)?;
        let docs = self.driver.get(&CollectionRef::of::<T>(), vec![id]).await?;
        let Some(doc) = docs.into_iter().next() else {
            return Ok(None);
        };
        let value: T = decode(&doc)?;
        Ok(Self::insert_loaded(&mut self.ctx.lock(), key, value, doc))
    }

    /// How many stored documents match `query` (its sort, skip and limit are
    /// ignored; scheduled work is not counted until flushed).
    pub async fn count<T: Entity>(&self, query: impl Into<Query<T>>) -> Result<u64> {
        let filter = query.into().into_filter()?;
        self.driver.count(&CollectionRef::of::<T>(), filter).await
    }

    /// The stored documents matching `query`, shaped by `projection`
    /// (`{"name": 1}`), as JSON: partial documents are not managed entities.
    pub async fn find_projected<T: Entity>(
        &self,
        query: impl Into<Query<T>>,
        projection: Value,
    ) -> Result<Vec<Value>> {
        let find = FindQuery {
            projection: Some(projection),
            ..query.into().to_find()?
        };
        let docs = self.driver.find(&CollectionRef::of::<T>(), find).await?;
        Ok(docs
            .iter()
            .map(|d| collection_store::document_json(d))
            .collect())
    }

    /// Schedules `value` for insertion at the next flush and returns its
    /// managed instance (a `None` primary key is generated now).
    pub fn persist<T: Entity>(&self, value: T) -> Result<Managed<T>> {
        let m = Managed::new(value);
        self.persist_managed(&m)?;
        Ok(m)
    }

    /// Schedules an instance made with [`Managed::new`] for insertion. Persisting
    /// the instance this context already manages does nothing.
    pub fn persist_managed<T: Entity>(&self, entity: &Managed<T>) -> Result<()> {
        ensure_id(entity)?;
        let key = Tracked::key(entity)?;
        let mut ctx = self.ctx.lock();
        match ctx.entries.get(&key) {
            Some(e) if e.handle.same(entity.as_any()) => Ok(()),
            Some(_) => Err(OrmError::IdentityConflict {
                collection: T::COLLECTION.to_owned(),
                id: key.1,
            }),
            None => {
                ctx.entries.insert(
                    key,
                    Entry {
                        handle: Arc::new(entity.clone()),
                        state: State::New,
                    },
                );
                Ok(())
            }
        }
    }

    /// Schedules a managed entity for deletion at the next flush (relations
    /// declared `cascade(remove)` are followed then). Removing an entity that
    /// was persisted but never flushed just forgets it.
    pub fn remove<T: Entity>(&self, entity: &Managed<T>) -> Result<()> {
        let key = Tracked::key(entity)?;
        let mut ctx = self.ctx.lock();
        let Some(e) = ctx
            .entries
            .get_mut(&key)
            .filter(|e| e.handle.same(entity.as_any()))
        else {
            return Err(OrmError::NotManaged(format!(
                "{} {} is not managed by this entity manager (load it first)",
                T::COLLECTION,
                key.1
            )));
        };
        match std::mem::replace(&mut e.state, State::New) {
            State::New => {
                ctx.entries.shift_remove(&key);
            }
            State::Clean(s) | State::Removed(s) => e.state = State::Removed(s),
        }
        Ok(())
    }

    /// The loaded target of a reference, without a query (`None` when it is
    /// not loaded in this context).
    pub fn resolve<T: Entity>(&self, r: &Ref<T>) -> Option<Managed<T>> {
        let key = key_of::<T, _>(r.id()).ok()?;
        self.lookup::<T>(&key).flatten()
    }

    /// The target of a reference, loaded if needed.
    pub async fn load<T: Entity>(&self, r: &Ref<T>) -> Result<Option<Managed<T>>> {
        self.find_by_id::<T>(r.id()).await
    }

    /// Runs `f` on a fork of this context and flushes the fork at the end, in
    /// one transaction. Besides the flush's own checks, every versioned
    /// entity the fork loaded but did not change is validated at commit
    /// (still at the version read, else [`OrmError::OptimisticLock`] and
    /// nothing is written). When `f` fails, nothing is written.
    pub async fn transactional<R, F>(&self, f: F) -> Result<R>
    where
        F: AsyncFnOnce(&EntityManager) -> Result<R>,
    {
        let mut em = self.fork();
        em.validate_reads = true;
        let out = f(&em).await?;
        em.flush().await?;
        Ok(out)
    }

    /// Writes every scheduled change in one transaction; see [`flush`].
    pub async fn flush(&self) -> Result<FlushReport> {
        flush::flush(self).await
    }

    pub(crate) fn context(&self) -> &Mutex<Context> {
        &self.ctx
    }

    pub(crate) fn validates_reads(&self) -> bool {
        self.validate_reads
    }

    pub(crate) fn id_filter(c: &CollectionRef, id: Value) -> Value {
        id_filter(c, id)
    }
}

pub(crate) fn downcast<T: Entity>(handle: &Arc<dyn Tracked>) -> Managed<T> {
    handle
        .as_any()
        .downcast_ref::<Managed<T>>()
        .cloned()
        .unwrap_or_else(|| unreachable!("identity-map keys carry the entity's TypeId"))
}
