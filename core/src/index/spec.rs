//! [`IndexSpec`]: what an index covers, as given by the user and stored in the catalog.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::doc::FieldPath;
use crate::error::{Error, Result};
use crate::query::filter::Filter;

/// The definition of a secondary index.
///
/// ```
/// use collection_store::IndexSpec;
/// use serde_json::json;
/// let by_email = IndexSpec::new([("email", 1)]).unique();
/// let by_city_age = IndexSpec::new([("city", 1), ("age", -1)]).name("city_age");
/// let active = IndexSpec::new([("score", -1)]).partial(json!({"active": true}));
/// assert_eq!(by_email.index_name(), "email_1");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexSpec {
    /// Dotted paths with direction: 1 ascending, -1 descending.
    pub fields: Vec<(String, i32)>,
    /// Explicit name; default `<field>_<dir>` joined by `_`, as in MongoDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Reject two documents with the same key.
    #[serde(default)]
    pub unique: bool,
    /// Skip documents that have none of the indexed fields.
    #[serde(default)]
    pub sparse: bool,
    /// Index only documents matching this filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<Value>,
}

impl IndexSpec {
    /// An index over `fields`, each `(path, 1)` for ascending or `(path, -1)` for descending.
    pub fn new<S: Into<String>>(fields: impl IntoIterator<Item = (S, i32)>) -> IndexSpec {
        IndexSpec {
            fields: fields.into_iter().map(|(p, d)| (p.into(), d)).collect(),
            name: None,
            unique: false,
            sparse: false,
            partial: None,
        }
    }

    /// Makes the index unique.
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Makes the index sparse.
    pub fn sparse(mut self) -> Self {
        self.sparse = true;
        self
    }

    /// Restricts the index to documents matching `filter`.
    pub fn partial(mut self, filter: Value) -> Self {
        self.partial = Some(filter);
        self
    }

    /// Names the index.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The index name (explicit or derived from the fields).
    pub fn index_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => self
                .fields
                .iter()
                .map(|(p, d)| format!("{p}_{d}"))
                .collect::<Vec<_>>()
                .join("_"),
        }
    }

    /// Checks the specification.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Error::InvalidIndex(m);
        if self.fields.is_empty() {
            return Err(bad("an index needs at least one field".into()));
        }
        if self.fields.len() > 32 {
            return Err(bad("an index may have at most 32 fields".into()));
        }
        let mut seen: Vec<&str> = Vec::new();
        for (path, dir) in &self.fields {
            FieldPath::parse(path).map_err(|m| bad(format!("field '{path}': {m}")))?;
            if path.split('.').any(|p| p.starts_with('$')) {
                return Err(bad(format!(
                    "field '{path}': paths cannot contain '$' parts"
                )));
            }
            if *dir != 1 && *dir != -1 {
                return Err(bad(format!(
                    "field '{path}': direction must be 1 (ascending) or -1 (descending), got {dir}"
                )));
            }
            if seen.contains(&path.as_str()) {
                return Err(bad(format!("field '{path}' appears twice")));
            }
            seen.push(path);
        }
        let name = self.index_name();
        if name.is_empty() || name.len() > 255 || name.contains('\0') {
            return Err(bad(format!(
                "index name {name:?} must be 1 to 255 bytes without NUL"
            )));
        }
        if name == "_id_" {
            return Err(bad("the name '_id_' is reserved for the primary key".into()));
        }
        if let Some(p) = &self.partial {
            Filter::parse(p).map_err(|e| bad(format!("partial filter: {e}")))?;
        }
        Ok(())
    }
}

/// An index as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// Internal id; the 4-byte big-endian prefix of its entries in the `indexes` table.
    pub id: u32,
    /// The specification.
    pub spec: IndexSpec,
    /// True once some document produced more than one key (an array field);
    /// a multikey index cannot provide sort order or covered counts.
    #[serde(default)]
    pub multikey: bool,
}

impl IndexMeta {
    /// The index name.
    pub fn name(&self) -> String {
        self.spec.index_name()
    }

    /// The key prefix of this index's entries.
    pub fn prefix(&self) -> [u8; 4] {
        self.id.to_be_bytes()
    }
}

/// A parsed view of an index used while planning and maintaining it.
#[derive(Debug, Clone)]
pub struct CompiledIndex {
    /// The stored definition.
    pub meta: IndexMeta,
    /// Parsed field paths with direction (true = descending).
    pub fields: Vec<(FieldPath, bool)>,
    /// Parsed partial filter.
    pub partial: Option<Filter>,
    /// The index name.
    pub name: String,
}

impl CompiledIndex {
    /// Compiles every index of a collection.
    pub fn compile_all(indexes: &[IndexMeta]) -> Result<Vec<CompiledIndex>> {
        indexes.iter().map(CompiledIndex::compile).collect()
    }

    /// Parses a stored definition (validated when it was created).
    pub fn compile(meta: &IndexMeta) -> Result<CompiledIndex> {
        let fields = meta
            .spec
            .fields
            .iter()
            .map(|(p, d)| {
                FieldPath::parse(p)
                    .map(|fp| (fp, *d < 0))
                    .map_err(|m| Error::Corrupt {
                        location: format!("index '{}'", meta.name()),
                        message: m,
                        lsn: None,
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let partial = meta.spec.partial.as_ref().map(Filter::parse).transpose()?;
        Ok(CompiledIndex {
            name: meta.name(),
            meta: meta.clone(),
            fields,
            partial,
        })
    }
}
