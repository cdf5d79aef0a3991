//! [`Orm`]: the driver and the registered entity types; start-up schema
//! synchronisation; entity managers.

use std::sync::Arc;

use collection_store::typed::{SchemaSync, SyncReport};
use collection_store::Database;

use crate::driver::{Driver, EmbeddedDriver, EntitySchema};
use crate::em::EntityManager;
use crate::entity::Entity;
use crate::error::Result;

/// The ORM: a driver plus the entity types the application uses.
///
/// ```
/// use collection_store::{Database, SchemaSync};
/// use collection_store_orm::Orm;
/// use collection_store_schemas::{Order, User};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> collection_store_orm::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let orm = Orm::embedded(Database::open(dir.path())?)
///     .entity::<User>()
///     .entity::<Order>()
///     .init(SchemaSync::KeepUnknown)   // builds the declared indexes
///     .await?;
/// let em = orm.em();                   // one per request
/// assert_eq!(em.count(User::fields().active().eq(true)).await?, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Orm {
    driver: Arc<dyn Driver>,
    schemas: Vec<EntitySchema>,
}

impl Orm {
    /// An ORM over `driver`.
    pub fn new(driver: Arc<dyn Driver>) -> Self {
        Orm {
            driver,
            schemas: Vec::new(),
        }
    }

    /// An ORM over an embedded database ([`EmbeddedDriver`]).
    pub fn embedded(db: Database) -> Self {
        Orm::new(Arc::new(EmbeddedDriver::new(db)))
    }

    /// Registers an entity type (its indexes are synchronised by [`Orm::init`]).
    pub fn entity<T: Entity>(mut self) -> Self {
        self.schemas.push(EntitySchema::of::<T>());
        self
    }

    /// Brings every registered type's indexes in line with its declaration
    /// under `policy` ([`Driver::ensure_indexes`]); returns the ORM.
    pub async fn init(self, policy: SchemaSync) -> Result<Self> {
        self.sync(policy).await?;
        Ok(self)
    }

    /// [`Orm::init`], returning what was done per registered type.
    pub async fn sync(&self, policy: SchemaSync) -> Result<Vec<SyncReport>> {
        let mut reports = Vec::with_capacity(self.schemas.len());
        for s in &self.schemas {
            reports.push(self.driver.ensure_indexes(s, policy).await?);
        }
        Ok(reports)
    }

    /// The registered schemas.
    pub fn schemas(&self) -> &[EntitySchema] {
        &self.schemas
    }

    /// The driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// A fresh entity manager (its own identity map and unit of work).
    pub fn em(&self) -> EntityManager {
        EntityManager::new(self.driver.clone())
    }
}
