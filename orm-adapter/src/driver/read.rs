//! Reads against one [`Database`], shared by the embedded and replica drivers:
//! collection handles cached by name, and the find / get / count statements.

use std::collections::HashMap;

use collection_store::{Collection, CollectionOptions, Database};
use parking_lot::RwLock;
use serde_json::Value;

use super::{CollectionRef, Doc, FindQuery};
use crate::error::Result;

/// Read access to one database.
#[derive(Debug)]
pub(crate) struct Reader {
    db: Database,
    handles: RwLock<HashMap<String, Collection>>,
}

impl Reader {
    pub(crate) fn new(db: Database) -> Self {
        Reader {
            db,
            handles: RwLock::new(HashMap::new()),
        }
    }

    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// The collection's handle; `None` when it does not exist (reads of a
    /// missing collection find nothing and create nothing).
    pub(crate) fn collection(&self, c: &CollectionRef) -> Result<Option<Collection>> {
        if let Some(h) = self.handles.read().get(c.name.as_ref()) {
            return Ok(Some(h.clone()));
        }
        if !self
            .db
            .list_collections()?
            .iter()
            .any(|n| *n == c.name.as_ref())
        {
            return Ok(None);
        }
        let h = self.db.collection_with(
            &c.name,
            CollectionOptions::with_id_field(c.id_field.as_ref()),
        )?;
        self.handles.write().insert(c.name.to_string(), h.clone());
        Ok(Some(h))
    }

    pub(crate) fn find(&self, c: &CollectionRef, q: FindQuery) -> Result<Vec<Doc>> {
        let Some(coll) = self.collection(c)? else {
            // Nothing to read, but bad input is reported all the same.
            validate(c, &q)?;
            return Ok(Vec::new());
        };
        let mut find = coll.find(q.filter).skip(q.skip);
        if let Some(sort) = q.sort {
            find = find.sort(sort);
        }
        if let Some(limit) = q.limit {
            if limit == 0 {
                return Ok(Vec::new());
            }
            find = find.limit(limit);
        }
        if let Some(p) = q.projection {
            find = find.projection(p);
        }
        Ok(find.to_vec_as::<Doc>()?)
    }

    pub(crate) fn get(&self, c: &CollectionRef, ids: Vec<Value>) -> Result<Vec<Doc>> {
        let Some(coll) = self.collection(c)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(doc) = coll.get_as::<Doc>(id)? {
                out.push(doc);
            }
        }
        Ok(out)
    }

    pub(crate) fn count(&self, c: &CollectionRef, filter: Value) -> Result<u64> {
        match self.collection(c)? {
            Some(coll) => Ok(coll.count(filter)?),
            None => {
                collection_store::check_find(&filter, None, None, &c.id_field)?;
                Ok(0)
            }
        }
    }
}

/// Parses a query's parts as the engine would (for a collection that does not exist).
fn validate(c: &CollectionRef, q: &FindQuery) -> Result<()> {
    Ok(collection_store::check_find(
        &q.filter,
        q.sort.as_ref(),
        q.projection.as_ref(),
        &c.id_field,
    )?)
}
