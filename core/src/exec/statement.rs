//! Statements as data: every write the engine performs is a [`Statement`],
//! built (and validated) by whoever accepts the request, with everything
//! non-deterministic — generated primary keys, the `$currentDate` time —
//! fixed before it is applied. Applying the same statements to the same state
//! therefore gives byte-identical documents, indexes and log entries on any
//! node. A [`Command`] is one logical transaction: its statements, the reads
//! they depended on (see [`super::readset`]), and the commit time.
//!
//! The encoding is a BSON document per statement with a format version
//! (`"v": 1`); filters and updates travel as their JSON text (exactly what was
//! parsed), documents as embedded BSON. Decoding re-parses and re-validates
//! everything, so a decoded statement is as trustworthy as a fresh one.
//! `Serialize`/`Deserialize` carry that encoding as bytes, so any serde format
//! transports it without loss.

use bson::{doc, Bson, Document};
use serde_json::Value;

use super::readset::ReadCheck;
use super::write::{UpdateMode, UpdateResult};
use crate::catalog::CollectionOptions;
use crate::error::{Error, Result};
use crate::index::IndexSpec;
use crate::query::filter::Filter;
use crate::query::update::Update;

/// The statement format written by this version.
pub const STATEMENT_VERSION: i32 = 1;

/// A filter or update as given (JSON), with its parsed form (boxed: a
/// statement moves through queues and batches by value).
#[derive(Debug, Clone)]
pub struct Parsed<T>(Box<(Value, T)>);

impl<T> Parsed<T> {
    fn new(source: Value, parsed: T) -> Self {
        Parsed(Box::new((source, parsed)))
    }

    /// The JSON it was parsed from.
    pub fn source(&self) -> &Value {
        &self.0 .0
    }

    /// The parsed form.
    pub fn get(&self) -> &T {
        &self.0 .1
    }
}

impl<T> PartialEq for Parsed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.source() == other.source()
    }
}

impl Parsed<Filter> {
    /// Parses a filter.
    pub fn filter(source: Value) -> Result<Self> {
        let parsed = Filter::parse(&source)?;
        Ok(Parsed::new(source, parsed))
    }
}

impl Parsed<Update> {
    /// Parses an operator update (a replacement document is refused, naming `statement`).
    pub fn operators(source: Value, statement: &str) -> Result<Self> {
        let parsed = Update::parse(&source)?;
        if parsed.is_replacement() {
            return Err(Error::InvalidUpdate(format!(
                "{statement} takes update operators such as {{\"$set\": {{...}}}}; to replace a whole document use replace_one"
            )));
        }
        Ok(Parsed::new(source, parsed))
    }

    /// Parses a replacement document.
    pub fn replacement(source: Value) -> Result<Self> {
        let parsed = Update::replacement_of(&source)?;
        Ok(Parsed::new(source, parsed))
    }
}

/// One write statement, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// Create a collection (nothing when it exists with these options).
    CreateCollection {
        /// The collection.
        collection: String,
        /// Its options.
        options: CollectionOptions,
    },
    /// Drop a collection with its documents and indexes.
    DropCollection {
        /// The collection.
        collection: String,
    },
    /// Insert documents (each already carrying its primary key, first), all or none.
    Insert {
        /// The collection (created when missing).
        collection: String,
        /// Its options.
        options: CollectionOptions,
        /// The documents.
        documents: Vec<Document>,
    },
    /// Update (operators or a replacement) the first or every matching document.
    Update {
        /// The collection (created when missing).
        collection: String,
        /// Its options.
        options: CollectionOptions,
        /// The filter.
        filter: Parsed<Filter>,
        /// The update.
        update: Parsed<Update>,
        /// Multi, upsert (with the key to give an inserted document) and time.
        mode: UpdateMode,
    },
    /// Delete the first or every matching document.
    Delete {
        /// The collection.
        collection: String,
        /// The filter.
        filter: Parsed<Filter>,
        /// Every match, or the first in primary-key order.
        multi: bool,
    },
    /// Create a secondary index and build it over the existing documents.
    CreateIndex {
        /// The collection (created when missing).
        collection: String,
        /// Its options.
        options: CollectionOptions,
        /// The index.
        spec: IndexSpec,
    },
    /// Drop a secondary index.
    DropIndex {
        /// The collection (created when missing).
        collection: String,
        /// Its options.
        options: CollectionOptions,
        /// The index name.
        name: String,
    },
    /// Record the schema version of a typed collection.
    SchemaVersion {
        /// The collection.
        collection: String,
        /// The version.
        version: u32,
    },
}

/// What a statement did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Documents inserted.
    Inserted(u64),
    /// What an update did.
    Updated(UpdateResult),
    /// Documents deleted.
    Deleted(u64),
    /// A collection or index was created (false: it existed already).
    Created(bool),
    /// A collection was dropped (false: it did not exist).
    Dropped(bool),
    /// Nothing to report (an index dropped, a version recorded).
    Done,
}

impl Outcome {
    fn unexpected(self, wanted: &str) -> Error {
        Error::TransactionClosed(format!(
            "the statement reported {self:?} where {wanted} was expected"
        ))
    }

    /// The number of documents inserted or deleted.
    pub fn into_count(self) -> Result<u64> {
        match self {
            Outcome::Inserted(n) | Outcome::Deleted(n) => Ok(n),
            other => Err(other.unexpected("a count")),
        }
    }

    /// Whether a collection or index was created, or a collection dropped.
    pub fn into_flag(self) -> Result<bool> {
        match self {
            Outcome::Created(b) | Outcome::Dropped(b) => Ok(b),
            other => Err(other.unexpected("a flag")),
        }
    }

    /// What an update did.
    pub fn into_updated(self) -> Result<UpdateResult> {
        match self {
            Outcome::Updated(r) => Ok(r),
            other => Err(other.unexpected("an update result")),
        }
    }
}

/// One step of a logical transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A statement, with the outcome the transaction saw when it ran it (when
    /// that outcome must be the same wherever the step is applied).
    Statement {
        /// The statement.
        statement: Statement,
        /// The outcome to insist on.
        expect: Option<Outcome>,
    },
    /// A read the transaction made: applying the command fails with
    /// [`Error::Conflict`] unless the same read still gives the same answer.
    Read(ReadCheck),
}

/// One logical transaction as data: what a replicated log carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The commit time written in its change-log entry (ms since the Unix epoch).
    pub time_ms: i64,
    /// Its steps, in the order they ran.
    pub steps: Vec<Step>,
}

impl Command {
    /// A command of one statement.
    pub fn single(statement: Statement, time_ms: i64) -> Command {
        Command {
            time_ms,
            steps: vec![Step::Statement {
                statement,
                expect: None,
            }],
        }
    }
}

fn bad(message: impl Into<String>) -> Error {
    Error::Corrupt {
        location: "encoded statement".into(),
        message: message.into(),
        lsn: None,
    }
}

fn get_str(d: &Document, key: &str) -> Result<String> {
    d.get_str(key)
        .map(str::to_owned)
        .map_err(|_| bad(format!("'{key}' must be a string")))
}

fn get_bool(d: &Document, key: &str) -> Result<bool> {
    d.get_bool(key)
        .map_err(|_| bad(format!("'{key}' must be a boolean")))
}

fn get_doc<'a>(d: &'a Document, key: &str) -> Result<&'a Document> {
    d.get_document(key)
        .map_err(|_| bad(format!("'{key}' must be a document")))
}

fn get_i64(d: &Document, key: &str) -> Result<i64> {
    match d.get(key) {
        Some(Bson::Int64(n)) => Ok(*n),
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        _ => Err(bad(format!("'{key}' must be an integer"))),
    }
}

fn json_text(v: &Value) -> String {
    v.to_string()
}

fn json_of(d: &Document, key: &str) -> Result<Value> {
    serde_json::from_str(
        d.get_str(key)
            .map_err(|_| bad(format!("'{key}' must be JSON text")))?,
    )
    .map_err(|e| bad(format!("'{key}' is not valid JSON: {e}")))
}

fn options_doc(o: &CollectionOptions) -> Document {
    doc! {"id_field": o.id_field.clone()}
}

fn options_of(d: &Document) -> Result<CollectionOptions> {
    Ok(CollectionOptions::with_id_field(get_str(
        get_doc(d, "o")?,
        "id_field",
    )?))
}

impl Statement {
    /// The collection the statement writes.
    pub fn collection(&self) -> &str {
        match self {
            Statement::CreateCollection { collection, .. }
            | Statement::DropCollection { collection }
            | Statement::Insert { collection, .. }
            | Statement::Update { collection, .. }
            | Statement::Delete { collection, .. }
            | Statement::CreateIndex { collection, .. }
            | Statement::DropIndex { collection, .. }
            | Statement::SchemaVersion { collection, .. } => collection,
        }
    }

    /// The statement as a BSON document (see the module docs).
    pub fn to_document(&self) -> Document {
        let mut d = doc! {"v": STATEMENT_VERSION};
        match self {
            Statement::CreateCollection {
                collection,
                options,
            } => {
                d.insert("op", "createCollection");
                d.insert("c", collection.clone());
                d.insert("o", options_doc(options));
            }
            Statement::DropCollection { collection } => {
                d.insert("op", "dropCollection");
                d.insert("c", collection.clone());
            }
            Statement::Insert {
                collection,
                options,
                documents,
            } => {
                d.insert("op", "insert");
                d.insert("c", collection.clone());
                d.insert("o", options_doc(options));
                d.insert(
                    "docs",
                    documents
                        .iter()
                        .cloned()
                        .map(Bson::Document)
                        .collect::<Vec<_>>(),
                );
            }
            Statement::Update {
                collection,
                options,
                filter,
                update,
                mode,
            } => {
                d.insert("op", "update");
                d.insert("c", collection.clone());
                d.insert("o", options_doc(options));
                d.insert("f", json_text(filter.source()));
                d.insert("u", json_text(update.source()));
                d.insert("replace", update.get().is_replacement());
                d.insert("multi", mode.multi);
                if let Some(id) = &mode.upsert {
                    d.insert("upsert", id.clone());
                }
                d.insert("now", mode.now);
            }
            Statement::Delete {
                collection,
                filter,
                multi,
            } => {
                d.insert("op", "delete");
                d.insert("c", collection.clone());
                d.insert("f", json_text(filter.source()));
                d.insert("multi", *multi);
            }
            Statement::CreateIndex {
                collection,
                options,
                spec,
            } => {
                d.insert("op", "createIndex");
                d.insert("c", collection.clone());
                d.insert("o", options_doc(options));
                d.insert(
                    "spec",
                    serde_json::to_string(spec).unwrap_or_else(|_| "null".into()),
                );
            }
            Statement::DropIndex {
                collection,
                options,
                name,
            } => {
                d.insert("op", "dropIndex");
                d.insert("c", collection.clone());
                d.insert("o", options_doc(options));
                d.insert("name", name.clone());
            }
            Statement::SchemaVersion {
                collection,
                version,
            } => {
                d.insert("op", "schemaVersion");
                d.insert("c", collection.clone());
                d.insert("version", i64::from(*version));
            }
        }
        d
    }

    /// Reads a statement written by [`Statement::to_document`], validating
    /// (and parsing) every part; anything malformed is [`Error::Corrupt`] or
    /// the parser's own typed error.
    pub fn from_document(d: &Document) -> Result<Statement> {
        match d.get("v") {
            Some(Bson::Int32(STATEMENT_VERSION)) => {}
            Some(v) => return Err(bad(format!("unknown statement format version {v}"))),
            None => return Err(bad("no format version")),
        }
        let collection = get_str(d, "c")?;
        crate::catalog::validate_name(&collection)?;
        let op = get_str(d, "op")?;
        Ok(match op.as_str() {
            "createCollection" => Statement::CreateCollection {
                collection,
                options: options_of(d)?,
            },
            "dropCollection" => Statement::DropCollection { collection },
            "insert" => {
                let docs = d
                    .get_array("docs")
                    .map_err(|_| bad("'docs' must be an array"))?;
                let documents = docs
                    .iter()
                    .map(|b| match b {
                        Bson::Document(doc) => Ok(doc.clone()),
                        _ => Err(bad("'docs' must hold documents")),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let options = options_of(d)?;
                for doc in &documents {
                    super::docs::check_names(doc, "")?;
                    let id = doc.get(&options.id_field).ok_or_else(|| {
                        bad(format!(
                            "a document to insert has no '{}'",
                            options.id_field
                        ))
                    })?;
                    super::docs::check_id(id, &options.id_field)?;
                }
                Statement::Insert {
                    collection,
                    options,
                    documents,
                }
            }
            "update" => {
                let source = json_of(d, "u")?;
                let update = if get_bool(d, "replace")? {
                    Parsed::replacement(source)?
                } else {
                    Parsed::operators(source, "update")?
                };
                let now = match d.get("now") {
                    Some(Bson::DateTime(t)) => *t,
                    _ => return Err(bad("'now' must be a date")),
                };
                Statement::Update {
                    collection,
                    options: options_of(d)?,
                    filter: Parsed::filter(json_of(d, "f")?)?,
                    update,
                    mode: UpdateMode {
                        multi: get_bool(d, "multi")?,
                        upsert: d.get("upsert").cloned(),
                        now,
                    },
                }
            }
            "delete" => Statement::Delete {
                collection,
                filter: Parsed::filter(json_of(d, "f")?)?,
                multi: get_bool(d, "multi")?,
            },
            "createIndex" => {
                let spec: IndexSpec = serde_json::from_str(&get_str(d, "spec")?)
                    .map_err(|e| bad(format!("'spec' is not an index specification: {e}")))?;
                spec.validate()?;
                Statement::CreateIndex {
                    collection,
                    options: options_of(d)?,
                    spec,
                }
            }
            "dropIndex" => Statement::DropIndex {
                collection,
                options: options_of(d)?,
                name: get_str(d, "name")?,
            },
            "schemaVersion" => Statement::SchemaVersion {
                collection,
                version: u32::try_from(get_i64(d, "version")?)
                    .map_err(|_| bad("'version' out of range"))?,
            },
            other => return Err(bad(format!("unknown statement '{other}'"))),
        })
    }
}

fn outcome_doc(o: &Outcome) -> Document {
    match o {
        Outcome::Inserted(n) => doc! {"k": "inserted", "n": *n as i64},
        Outcome::Updated(r) => {
            let mut d =
                doc! {"k": "updated", "m": r.matched_count as i64, "x": r.modified_count as i64};
            if let Some(id) = &r.upserted_id {
                d.insert("id", id.to_string());
            }
            d
        }
        Outcome::Deleted(n) => doc! {"k": "deleted", "n": *n as i64},
        Outcome::Created(b) => doc! {"k": "created", "b": *b},
        Outcome::Dropped(b) => doc! {"k": "dropped", "b": *b},
        Outcome::Done => doc! {"k": "done"},
    }
}

fn outcome_of(d: &Document) -> Result<Outcome> {
    let count = |key: &str| -> Result<u64> {
        u64::try_from(get_i64(d, key)?).map_err(|_| bad(format!("'{key}' is negative")))
    };
    Ok(match get_str(d, "k")?.as_str() {
        "inserted" => Outcome::Inserted(count("n")?),
        "updated" => Outcome::Updated(UpdateResult {
            matched_count: count("m")?,
            modified_count: count("x")?,
            upserted_id: match d.get("id") {
                None => None,
                Some(_) => Some(json_of(d, "id")?),
            },
        }),
        "deleted" => Outcome::Deleted(count("n")?),
        "created" => Outcome::Created(get_bool(d, "b")?),
        "dropped" => Outcome::Dropped(get_bool(d, "b")?),
        "done" => Outcome::Done,
        other => return Err(bad(format!("unknown outcome '{other}'"))),
    })
}

impl Command {
    /// The command's stable encoding (BSON, format version 1).
    pub fn encode(&self) -> Vec<u8> {
        let steps: Vec<Bson> = self
            .steps
            .iter()
            .map(|s| {
                Bson::Document(match s {
                    Step::Statement { statement, expect } => {
                        let mut d = doc! {"s": statement.to_document()};
                        if let Some(o) = expect {
                            d.insert("expect", outcome_doc(o));
                        }
                        d
                    }
                    Step::Read(check) => doc! {"r": check.to_document()},
                })
            })
            .collect();
        let d = doc! {"v": STATEMENT_VERSION, "t": self.time_ms, "steps": steps};
        // Encoding a document built from valid parts cannot fail; an empty
        // vector would be refused by `decode`.
        d.to_vec().unwrap_or_default()
    }

    /// Decodes and validates an encoded command.
    pub fn decode(bytes: &[u8]) -> Result<Command> {
        let d =
            Document::from_reader(bytes).map_err(|e| bad(format!("not a BSON document: {e}")))?;
        match d.get("v") {
            Some(Bson::Int32(STATEMENT_VERSION)) => {}
            _ => return Err(bad("unknown or missing command format version")),
        }
        let time_ms = get_i64(&d, "t")?;
        let steps = d
            .get_array("steps")
            .map_err(|_| bad("'steps' must be an array"))?
            .iter()
            .map(|s| {
                let Bson::Document(s) = s else {
                    return Err(bad("a step must be a document"));
                };
                if let Ok(st) = s.get_document("s") {
                    let expect = match s.get("expect") {
                        None => None,
                        Some(Bson::Document(o)) => Some(outcome_of(o)?),
                        Some(_) => return Err(bad("'expect' must be a document")),
                    };
                    Ok(Step::Statement {
                        statement: Statement::from_document(st)?,
                        expect,
                    })
                } else if let Ok(r) = s.get_document("r") {
                    Ok(Step::Read(ReadCheck::from_document(r)?))
                } else {
                    Err(bad("a step must be a statement ('s') or a read ('r')"))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Command { time_ms, steps })
    }
}

impl Statement {
    /// The statement's stable encoding on its own (a BSON document).
    pub fn encode(&self) -> Vec<u8> {
        self.to_document().to_vec().unwrap_or_default()
    }

    /// Decodes and validates an encoded statement.
    pub fn decode(bytes: &[u8]) -> Result<Statement> {
        let d =
            Document::from_reader(bytes).map_err(|e| bad(format!("not a BSON document: {e}")))?;
        Statement::from_document(&d)
    }
}

/// `Serialize`/`Deserialize` through the stable byte encoding, so that any
/// serde format carries the value without loss.
macro_rules! serde_as_bytes {
    ($t:ident, $what:literal) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.encode())
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<$t, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_bytes<E: serde::de::Error>(
                        self,
                        v: &[u8],
                    ) -> std::result::Result<$t, E> {
                        $t::decode(v).map_err(E::custom)
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> std::result::Result<$t, A::Error> {
                        let mut bytes = Vec::new();
                        while let Some(b) = seq.next_element::<u8>()? {
                            bytes.push(b);
                        }
                        $t::decode(&bytes).map_err(serde::de::Error::custom)
                    }
                }
                d.deserialize_bytes(V)
            }
        }
    };
}

serde_as_bytes!(Command, "an encoded collection-store command (bytes)");
serde_as_bytes!(Statement, "an encoded collection-store statement (bytes)");
