//! Loading relations: select-in, one query per relation level.

use std::collections::HashMap;

use collection_store::typed::{FieldRef, Reference};
use collection_store::Document;
use serde_json::{json, Value};

use super::EntityManager;
use crate::driver::{CollectionRef, FindQuery};
use crate::entity::{key_of, path_get, to_json, Entity, Managed};
use crate::error::Result;

/// Children loaded by [`EntityManager::populate_inverse`], grouped by the
/// parent they reference.
#[derive(Debug)]
pub struct Children<C> {
    by_parent: HashMap<String, Vec<Managed<C>>>,
}

impl<C> Children<C> {
    /// The children of `parent` (empty when it has none).
    pub fn of<P: Entity>(&self, parent: &Managed<P>) -> &[Managed<C>] {
        parent
            .read()
            .id()
            .and_then(|id| serde_json::to_string(id).ok())
            .and_then(|k| self.by_parent.get(&k))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Every child loaded.
    pub fn len(&self) -> usize {
        self.by_parent.values().map(Vec::len).sum()
    }

    /// True when no child was loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn push_ids(v: Option<&Value>, out: &mut Vec<Value>) {
    match v {
        Some(Value::Array(items)) => out.extend(items.iter().filter(|v| !v.is_null()).cloned()),
        Some(Value::Null) | None => {}
        Some(v) => out.push(v.clone()),
    }
}

impl EntityManager {
    /// Loads the targets of the reference field `field` of every entity in
    /// `parents` (many-to-one, or `Vec<Ref<T>>`): targets already loaded come
    /// from the identity map, the rest with **one** query
    /// (`{_id: {$in: [...]}}`). Returns the targets, each once, in the order
    /// the parents first reference them; resolve a parent's reference with
    /// [`EntityManager::resolve`].
    pub async fn populate<P, R, F>(
        &self,
        parents: &[Managed<P>],
        field: F,
    ) -> Result<Vec<Managed<R::Target>>>
    where
        P: Entity,
        R: Reference,
        R::Target: Entity,
        F: FieldRef<Root = P, Value = R>,
    {
        let mut ids = Vec::new();
        for p in parents {
            let image = to_json(&*p.read())?;
            push_ids(path_get(&image, field.path()), &mut ids);
        }
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.to_string()));
        let mut found: HashMap<String, Managed<R::Target>> = HashMap::new();
        let mut missing = Vec::new();
        for id in &ids {
            let key = key_of::<R::Target, _>(id)?;
            match self.lookup::<R::Target>(&key) {
                Some(Some(m)) => {
                    found.insert(key.1, m);
                }
                Some(None) => {}
                None => missing.push(id.clone()),
            }
        }
        if !missing.is_empty() {
            let target = CollectionRef::of::<R::Target>();
            let filter = json!({ target.id_field.as_ref(): {"$in": missing} });
            let docs = self.driver().find(&target, FindQuery::new(filter)).await?;
            for m in self.register::<R::Target>(docs)? {
                if let Some(id) = m.read().id() {
                    found.insert(serde_json::to_string(id).unwrap_or_default(), m.clone());
                }
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| found.get(&id.to_string()).cloned())
            .collect())
    }

    /// Loads, with **one** query, the children of every entity in `parents`:
    /// the entities of type `C` whose reference field `field` holds a
    /// parent's primary key (one-to-many, the inverse of a many-to-one).
    pub async fn populate_inverse<P, C, R, F>(
        &self,
        parents: &[Managed<P>],
        field: F,
    ) -> Result<Children<C>>
    where
        P: Entity,
        C: Entity,
        R: Reference<Target = P>,
        F: FieldRef<Root = C, Value = R>,
    {
        let mut ids = Vec::with_capacity(parents.len());
        for p in parents {
            if let Some(id) = p.read().id() {
                ids.push(
                    serde_json::to_value(id).map_err(crate::OrmError::serialization::<P::Id>)?,
                );
            }
        }
        let mut by_parent: HashMap<String, Vec<Managed<C>>> = HashMap::new();
        if ids.is_empty() {
            return Ok(Children { by_parent });
        }
        let filter = json!({ field.path(): {"$in": ids} });
        let docs = self
            .driver()
            .find(&CollectionRef::of::<C>(), FindQuery::new(filter))
            .await?;
        for child in self.register::<C>(docs)? {
            let image = to_json(&*child.read())?;
            let mut refs = Vec::new();
            push_ids(path_get(&image, field.path()), &mut refs);
            for r in refs {
                by_parent
                    .entry(r.to_string())
                    .or_default()
                    .push(child.clone());
            }
        }
        Ok(Children { by_parent })
    }
}
