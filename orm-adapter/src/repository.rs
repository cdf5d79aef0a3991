//! [`Repository<T>`]: a typed view of one entity type through an entity manager.

use collection_store::typed::{Accepts, Field};
use serde::Serialize;

use crate::em::EntityManager;
use crate::entity::{Entity, Managed};
use crate::error::Result;
use crate::query::Query;

/// The entities of type `T`, through an [`EntityManager`] (`em.repository::<T>()`):
/// the entity manager's finders fixed to `T`, plus the original store's
/// conveniences (`first`, `last`, `lowest`, `greatest`, `oldest`, `latest`,
/// `find_by`, `find_first_by`, `find_last_by`). Everything goes through the
/// entity manager's identity map and unit of work.
///
/// **Custom methods** go in an extension trait implemented for the
/// repository of one type:
///
/// ```
/// use collection_store_orm::{Managed, Query, Repository, Result};
/// use collection_store_schemas::User;
///
/// pub trait UserRepository {
///     /// Active users of `city`, oldest first.
///     async fn active_in(&self, city: &str) -> Result<Vec<Managed<User>>>;
/// }
///
/// impl UserRepository for Repository<'_, User> {
///     async fn active_in(&self, city: &str) -> Result<Vec<Managed<User>>> {
///         let f = User::fields();
///         self.find(Query::from(f.active().eq(true).and(f.address().city().eq(city)))
///             .sort(f.age().desc()))
///             .await
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Repository<'em, T> {
    em: &'em EntityManager,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for Repository<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Repository<'_, T> {}

impl<'em, T: Entity> Repository<'em, T> {
    pub(crate) fn new(em: &'em EntityManager) -> Self {
        Repository {
            em,
            _marker: std::marker::PhantomData,
        }
    }

    /// The entity manager.
    pub fn em(&self) -> &'em EntityManager {
        self.em
    }

    /// See [`EntityManager::find`].
    pub async fn find(&self, query: impl Into<Query<T>>) -> Result<Vec<Managed<T>>> {
        self.em.find(query).await
    }

    /// Every entity, in primary-key order.
    pub async fn find_all(&self) -> Result<Vec<Managed<T>>> {
        self.em.find(Query::<T>::all()).await
    }

    /// See [`EntityManager::find_one`].
    pub async fn find_one(&self, query: impl Into<Query<T>>) -> Result<Option<Managed<T>>> {
        self.em.find_one(query).await
    }

    /// See [`EntityManager::find_by_id`].
    pub async fn find_by_id(&self, id: &T::Id) -> Result<Option<Managed<T>>> {
        self.em.find_by_id::<T>(id).await
    }

    /// See [`EntityManager::count`].
    pub async fn count(&self, query: impl Into<Query<T>>) -> Result<u64> {
        self.em.count(query).await
    }

    /// See [`EntityManager::persist`].
    pub fn persist(&self, value: T) -> Result<Managed<T>> {
        self.em.persist(value)
    }

    /// See [`EntityManager::remove`].
    pub fn remove(&self, entity: &Managed<T>) -> Result<()> {
        self.em.remove(entity)
    }

    /// The entity with the lowest primary key (for generated ObjectId keys:
    /// the first inserted).
    pub async fn first(&self) -> Result<Option<Managed<T>>> {
        self.em
            .find_one(Query::<T>::all().sort_by(T::ID_FIELD, 1))
            .await
    }

    /// The entity with the highest primary key.
    pub async fn last(&self) -> Result<Option<Managed<T>>> {
        self.em
            .find_one(Query::<T>::all().sort_by(T::ID_FIELD, -1))
            .await
    }

    /// The entity with the lowest value of `field` (ties: lowest primary key).
    pub async fn lowest<V>(&self, field: &Field<T, V>) -> Result<Option<Managed<T>>> {
        self.em.find_one(Query::<T>::all().sort(field.asc())).await
    }

    /// The entity with the highest value of `field` (ties: lowest primary key).
    pub async fn greatest<V>(&self, field: &Field<T, V>) -> Result<Option<Managed<T>>> {
        self.em.find_one(Query::<T>::all().sort(field.desc())).await
    }

    /// The entity with the earliest timestamp in `field` ([`lowest`](Self::lowest)
    /// for a time field such as `created_at`).
    pub async fn oldest<V>(&self, field: &Field<T, V>) -> Result<Option<Managed<T>>> {
        self.lowest(field).await
    }

    /// The entity with the latest timestamp in `field`.
    pub async fn latest<V>(&self, field: &Field<T, V>) -> Result<Option<Managed<T>>> {
        self.greatest(field).await
    }

    /// Every entity whose `field` equals `value`, in primary-key order.
    pub async fn find_by<V, X>(&self, field: &Field<T, V>, value: X) -> Result<Vec<Managed<T>>>
    where
        V: Accepts<X>,
        X: Serialize,
    {
        self.em.find(field.eq(value)).await
    }

    /// The entity with the lowest primary key whose `field` equals `value`.
    pub async fn find_first_by<V, X>(
        &self,
        field: &Field<T, V>,
        value: X,
    ) -> Result<Option<Managed<T>>>
    where
        V: Accepts<X>,
        X: Serialize,
    {
        self.em
            .find_one(Query::from(field.eq(value)).sort_by(T::ID_FIELD, 1))
            .await
    }

    /// The entity with the highest primary key whose `field` equals `value`.
    pub async fn find_last_by<V, X>(
        &self,
        field: &Field<T, V>,
        value: X,
    ) -> Result<Option<Managed<T>>>
    where
        V: Accepts<X>,
        X: Serialize,
    {
        self.em
            .find_one(Query::from(field.eq(value)).sort_by(T::ID_FIELD, -1))
            .await
    }
}
