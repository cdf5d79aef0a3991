//! Entities and helpers shared by the ORM's integration tests: a small blog
//! (authors, posts, comments, tags) with every kind of relation, an embedded
//! database per test, and change-log inspection.

#![allow(dead_code)]

use std::sync::Arc;

use collection_store::LogOp;
use collection_store::{Database, Document, Lsn, OpKind};
use collection_store_orm::driver::{Counted, EmbeddedDriver};
use collection_store_orm::{EntityManager, Ref};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An author; removing one removes their posts (and, through the posts, the comments).
#[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(collection = "authors")]
#[document(has_many(posts, Post.author, cascade(remove)))]
pub struct Author {
    #[document(id)]
    pub id: u64,
    #[document(index(unique))]
    pub email: String,
    pub name: String,
    pub address: Address,
    pub nickname: Option<String>,
}

#[derive(collection_store::Embedded, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Address {
    pub city: String,
    pub zip: String,
}

/// A post, optimistic-locked; persisting one persists a new author attached to it.
#[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(collection = "posts")]
#[document(index(fields(author, title)))]
#[document(has_many(comments, Comment.post, cascade(remove)))]
pub struct Post {
    #[document(id)]
    pub id: u64,
    #[document(reference(cascade(persist)))]
    pub author: Ref<Author>,
    pub title: String,
    pub body: String,
    #[serde(default)]
    #[document(reference)]
    pub tags: Vec<Ref<Tag>>,
    #[document(version)]
    pub version: u64,
}

/// A comment: references its post (no cascade declared on this side).
#[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(collection = "comments")]
pub struct Comment {
    #[document(id)]
    pub id: Option<String>,
    #[document(reference)]
    pub post: Ref<Post>,
    pub text: String,
}

/// A tag, referenced by posts through a `Vec<Ref<Tag>>`.
#[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(collection = "tags")]
pub struct Tag {
    #[document(id)]
    #[serde(rename = "_id")]
    pub name: String,
}

pub fn author(id: u64) -> Author {
    Author {
        id,
        email: format!("a{id}@example.com"),
        name: format!("Author {id}"),
        address: Address {
            city: "Oslo".into(),
            zip: format!("0{id:03}"),
        },
        nickname: None,
    }
}

pub fn post(id: u64, author: u64) -> Post {
    Post {
        id,
        author: Ref::new(author),
        title: format!("Post {id}"),
        body: "text".into(),
        tags: Vec::new(),
        version: 0,
    }
}

pub struct Fx {
    pub _dir: tempfile::TempDir,
    pub db: Database,
    pub driver: Arc<Counted<EmbeddedDriver>>,
}

impl Fx {
    pub fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let driver = Arc::new(Counted::new(EmbeddedDriver::new(db.clone())));
        Fx {
            _dir: dir,
            db,
            driver,
        }
    }

    pub fn em(&self) -> EntityManager {
        EntityManager::new(self.driver.clone())
    }

    /// `authors 1..=n`, each with `posts_each` posts (ids `author * 100 + k`),
    /// each post with one comment; inserted with the engine's typed API.
    pub fn seed(&self, n: u64, posts_each: u64) {
        self.db
            .transaction(|tx| {
                let authors = tx.typed::<Author>()?;
                let posts = tx.typed::<Post>()?;
                let comments = tx.typed::<Comment>()?;
                for a in 1..=n {
                    authors.insert_one(&author(a))?;
                    for k in 1..=posts_each {
                        let p = post(a * 100 + k, a);
                        posts.insert_one(&Post { version: 1, ..p })?;
                        comments.insert_one(&Comment {
                            id: Some(format!("c{}", a * 100 + k)),
                            post: Ref::new(a * 100 + k),
                            text: "nice".into(),
                        })?;
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    pub fn lsn(&self) -> Lsn {
        self.db.last_lsn().unwrap()
    }

    /// The operations logged after `after`: (kind, collection, after-image as JSON).
    pub fn ops_since(&self, after: Lsn) -> Vec<(OpKind, String, Value)> {
        let mut out = Vec::new();
        for entry in self.db.read_log(after, 1000).unwrap() {
            for op in entry.ops {
                let kind = op.kind();
                let coll = op.collection().to_owned();
                let image = match &op {
                    LogOp::Put { document, .. } | LogOp::Delete { key: document, .. } => {
                        let raw = bson::RawDocument::from_bytes(document).unwrap();
                        collection_store::document_json(raw)
                    }
                    _ => Value::Null,
                };
                out.push((kind, coll, image));
            }
        }
        out
    }

    /// Log entries (transactions) after `after`.
    pub fn entries_since(&self, after: Lsn) -> usize {
        self.db.read_log(after, 1000).unwrap().len()
    }
}
