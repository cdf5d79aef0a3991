//! Read sets: what an interactive transaction read, recorded so that the
//! transaction can travel as data (a [`super::statement::Command`]) and be
//! validated where it is applied. Each read is a [`ReadCheck`] — a document
//! looked up by primary key, a key range walked in the documents table or an
//! index (up to where the walk stopped), a counter — holding a digest of what
//! it saw. Applying the command repeats each read at the same point among its
//! statements; a different answer means another transaction changed what this
//! one depended on, and the command fails with [`Error::Conflict`] before
//! anything of it is kept.
//!
//! Keys are recorded without the 4-byte collection or index id prefix and
//! collections and indexes by name, because those ids are local to each
//! database. Digests are the first 16 bytes of SHA-256 over the length-
//! prefixed keys and values seen, in walk order.

use std::ops::Bound;

use bson::{doc, Bson, Document};
use heed::RoTxn;
use sha2::{Digest as _, Sha256};

use super::read::Target;
use crate::catalog::{self, CollectionMeta, Counter};
use crate::error::{Error, Result};
use crate::keys::prefix_successor;
use crate::storage::{Store, Table};

/// A 16-byte digest of what a read saw.
pub type Digest = [u8; 16];

/// The upper end of a recorded range (keys without their id prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeEnd {
    /// To the end of the collection or index.
    Unbounded,
    /// Up to this key, exclusive.
    Excluded(Vec<u8>),
    /// Up to this key, inclusive (the walk stopped there).
    Included(Vec<u8>),
}

/// One recorded read.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadCheck {
    /// A document looked up by primary key: the digest of its bytes, or `None`
    /// when there was none.
    Doc {
        /// The collection.
        collection: String,
        /// The encoded primary key.
        key: Vec<u8>,
        /// Digest of the stored bytes.
        digest: Option<Digest>,
    },
    /// A walk over a key range of the documents (`index: None`) or of an index.
    Range {
        /// The collection.
        collection: String,
        /// The index walked, if any.
        index: Option<String>,
        /// The first key of the range (inclusive).
        lo: Vec<u8>,
        /// Where the range ends.
        hi: RangeEnd,
        /// Walked backwards.
        reverse: bool,
        /// Digest of the keys and values seen.
        digest: Digest,
        /// How many entries were seen.
        count: u64,
    },
    /// The document count of a collection, read from its counter.
    Count {
        /// The collection.
        collection: String,
        /// The count seen.
        n: u64,
    },
    /// The collection did not exist.
    NoCollection {
        /// The collection.
        collection: String,
    },
}

/// The reads of one transaction, in order.
#[derive(Debug, Default)]
pub struct ReadSet {
    checks: Vec<ReadCheck>,
}

impl ReadSet {
    /// Takes the reads recorded so far.
    pub fn take(&mut self) -> Vec<ReadCheck> {
        std::mem::take(&mut self.checks)
    }

    /// Records a lookup of `key` (with its collection prefix) and what it found.
    pub fn doc(&mut self, meta: &CollectionMeta, key: &[u8], value: Option<&[u8]>) {
        self.checks.push(ReadCheck::Doc {
            collection: meta.name.clone(),
            key: key[4..].to_vec(),
            digest: value.map(digest_of),
        });
    }

    /// Records the collection's document counter.
    pub fn count(&mut self, meta: &CollectionMeta, n: u64) {
        self.checks.push(ReadCheck::Count {
            collection: meta.name.clone(),
            n,
        });
    }

    /// Records that `collection` did not exist.
    pub fn no_collection(&mut self, collection: &str) {
        self.checks.push(ReadCheck::NoCollection {
            collection: collection.to_owned(),
        });
    }

    /// Records a finished range walk.
    pub fn range(&mut self, rec: RangeRec) {
        self.checks.push(rec.finish());
    }
}

/// A range walk being recorded: keys and values as they are seen.
pub struct RangeRec {
    collection: String,
    index: Option<String>,
    lo: Vec<u8>,
    hi: RangeEnd,
    reverse: bool,
    hasher: Sha256,
    count: u64,
    last: Option<Vec<u8>>,
    complete: bool,
}

impl RangeRec {
    /// Starts recording a walk of `[lo, hi)` (keys with their 4-byte prefix;
    /// `hi: None` = unbounded) of the documents or of `index`.
    pub fn start(
        meta: &CollectionMeta,
        index: Option<&str>,
        lo: &[u8],
        hi: Option<&[u8]>,
        reverse: bool,
    ) -> RangeRec {
        let prefix = &lo[..4.min(lo.len())];
        let end = prefix_successor(prefix);
        let hi = match (hi, &end) {
            (None, _) => RangeEnd::Unbounded,
            (Some(h), Some(e)) if h >= e.as_slice() => RangeEnd::Unbounded,
            (Some(h), _) => RangeEnd::Excluded(h.get(4..).unwrap_or_default().to_vec()),
        };
        RangeRec {
            collection: meta.name.clone(),
            index: index.map(str::to_owned),
            lo: lo.get(4..).unwrap_or_default().to_vec(),
            hi,
            reverse,
            hasher: Sha256::new(),
            count: 0,
            last: None,
            complete: false,
        }
    }

    /// Records one entry (key with its prefix).
    pub fn item(&mut self, key: &[u8], value: &[u8]) {
        let key = &key[4.min(key.len())..];
        feed(&mut self.hasher, key, value);
        self.count += 1;
        self.last = Some(key.to_vec());
    }

    /// Marks the walk as having reached the end of its range.
    pub fn complete(&mut self) {
        self.complete = true;
    }

    fn finish(self) -> ReadCheck {
        let (mut lo, mut hi) = (self.lo, self.hi);
        if let (false, Some(last)) = (self.complete, self.last) {
            if self.reverse {
                lo = last;
            } else {
                hi = RangeEnd::Included(last);
            }
        }
        ReadCheck::Range {
            collection: self.collection,
            index: self.index,
            lo,
            hi,
            reverse: self.reverse,
            digest: truncate(self.hasher.finalize().as_slice()),
            count: self.count,
        }
    }
}

fn feed(h: &mut Sha256, key: &[u8], value: &[u8]) {
    h.update((key.len() as u32).to_le_bytes());
    h.update(key);
    h.update((value.len() as u32).to_le_bytes());
    h.update(value);
}

fn truncate(full: &[u8]) -> Digest {
    let mut d = [0u8; 16];
    d.copy_from_slice(&full[..16]);
    d
}

fn digest_of(value: &[u8]) -> Digest {
    truncate(Sha256::digest(value).as_slice())
}

fn conflict(what: String) -> Error {
    Error::Conflict(format!(
        "{what} changed after the transaction read it; nothing was applied, retry the transaction"
    ))
}

/// Ok when the read gives the same answer again, else a conflict naming `what`.
fn unchanged(same: bool, what: impl FnOnce() -> String) -> Result<()> {
    if same {
        Ok(())
    } else {
        Err(conflict(what()))
    }
}

impl ReadCheck {
    /// Repeats the read against `txn`; [`Error::Conflict`] when the answer differs.
    pub fn validate(
        &self,
        store: &Store,
        txn: &RoTxn<'_>,
        target: &dyn Fn(&str) -> Result<Option<std::sync::Arc<Target>>>,
    ) -> Result<()> {
        let named = |collection: &str| -> Result<std::sync::Arc<Target>> {
            target(collection)?
                .ok_or_else(|| conflict(format!("collection '{collection}' (it was dropped)")))
        };
        match self {
            ReadCheck::NoCollection { collection } => match target(collection)? {
                None => Ok(()),
                Some(_) => Err(conflict(format!(
                    "collection '{collection}' (it was created)"
                ))),
            },
            ReadCheck::Count { collection, n } => {
                let t = named(collection)?;
                let now = catalog::count(store, txn, Counter::Docs(t.meta.id))?;
                unchanged(now == *n, || {
                    format!("the document count of '{collection}'")
                })
            }
            ReadCheck::Doc {
                collection,
                key,
                digest,
            } => {
                let t = named(collection)?;
                let mut full = t.meta.prefix().to_vec();
                full.extend_from_slice(key);
                let now = store.table(Table::Docs).get(txn, &full)?.map(digest_of);
                unchanged(now == *digest, || format!("a document of '{collection}'"))
            }
            ReadCheck::Range {
                collection,
                index,
                lo,
                hi,
                reverse,
                digest,
                count,
            } => {
                let t = named(collection)?;
                let (table, prefix) = match index {
                    None => (Table::Docs, t.meta.prefix()),
                    Some(name) => {
                        let ix = t
                            .meta
                            .indexes
                            .iter()
                            .find(|ix| ix.name() == *name)
                            .ok_or_else(|| {
                                conflict(format!(
                                    "index '{name}' of '{collection}' (it was dropped)"
                                ))
                            })?;
                        (Table::Indexes, ix.prefix())
                    }
                };
                let with = |k: &[u8]| {
                    let mut v = prefix.to_vec();
                    v.extend_from_slice(k);
                    v
                };
                let lo = with(lo);
                let end = prefix_successor(&prefix);
                let hi_key;
                let upper = match hi {
                    RangeEnd::Unbounded => match &end {
                        Some(e) => Bound::Excluded(e.as_slice()),
                        None => Bound::Unbounded,
                    },
                    RangeEnd::Excluded(k) => {
                        hi_key = with(k);
                        Bound::Excluded(hi_key.as_slice())
                    }
                    RangeEnd::Included(k) => {
                        hi_key = with(k);
                        Bound::Included(hi_key.as_slice())
                    }
                };
                let range = (Bound::Included(lo.as_slice()), upper);
                let db = store.table(table);
                let mut h = Sha256::new();
                let mut n = 0u64;
                let mut visit = |item: heed::Result<(&[u8], &[u8])>| -> Result<()> {
                    let (k, v) = item?;
                    feed(&mut h, &k[4..], v);
                    n += 1;
                    Ok(())
                };
                if *reverse {
                    for item in db.rev_range(txn, &range)? {
                        visit(item)?;
                    }
                } else {
                    for item in db.range(txn, &range)? {
                        visit(item)?;
                    }
                }
                let same = n == *count && truncate(h.finalize().as_slice()) == *digest;
                unchanged(same, || match index {
                    Some(name) => format!("entries of index '{name}' of '{collection}'"),
                    None => format!("documents of '{collection}'"),
                })
            }
        }
    }

    /// The check as a BSON document (part of a command's encoding).
    pub fn to_document(&self) -> Document {
        let bin = |b: &[u8]| {
            Bson::Binary(bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: b.to_vec(),
            })
        };
        match self {
            ReadCheck::Doc {
                collection,
                key,
                digest,
            } => doc! {
                "k": "doc", "c": collection.clone(), "key": bin(key),
                "d": digest.map_or(Bson::Null, |d| bin(&d)),
            },
            ReadCheck::Range {
                collection,
                index,
                lo,
                hi,
                reverse,
                digest,
                count,
            } => {
                let (end, hi) = match hi {
                    RangeEnd::Unbounded => ("none", Bson::Null),
                    RangeEnd::Excluded(k) => ("excl", bin(k)),
                    RangeEnd::Included(k) => ("incl", bin(k)),
                };
                doc! {
                    "k": "range", "c": collection.clone(),
                    "ix": index.clone().map_or(Bson::Null, Bson::String),
                    "lo": bin(lo), "end": end, "hi": hi, "rev": *reverse,
                    "d": bin(digest), "n": *count as i64,
                }
            }
            ReadCheck::Count { collection, n } => {
                doc! {"k": "count", "c": collection.clone(), "n": *n as i64}
            }
            ReadCheck::NoCollection { collection } => doc! {"k": "nocoll", "c": collection.clone()},
        }
    }

    /// Reads a check written by [`ReadCheck::to_document`].
    pub fn from_document(d: &Document) -> Result<ReadCheck> {
        let bad = |m: &str| Error::Corrupt {
            location: "encoded read check".into(),
            message: m.to_owned(),
            lsn: None,
        };
        let text = |k: &str| d.get_str(k).map(str::to_owned).map_err(|_| bad(k));
        let bytes = |k: &str| match d.get(k) {
            Some(Bson::Binary(b)) => Ok(b.bytes.clone()),
            _ => Err(bad(k)),
        };
        let digest = |k: &str| -> Result<Digest> {
            bytes(k)?
                .try_into()
                .map_err(|_| bad("digest of the wrong length"))
        };
        let count = |k: &str| match d.get(k) {
            Some(Bson::Int64(n)) if *n >= 0 => Ok(*n as u64),
            _ => Err(bad(k)),
        };
        let collection = text("c")?;
        Ok(match text("k")?.as_str() {
            "doc" => ReadCheck::Doc {
                collection,
                key: bytes("key")?,
                digest: match d.get("d") {
                    Some(Bson::Null) => None,
                    _ => Some(digest("d")?),
                },
            },
            "range" => ReadCheck::Range {
                collection,
                index: match d.get("ix") {
                    Some(Bson::Null) => None,
                    _ => Some(text("ix")?),
                },
                lo: bytes("lo")?,
                hi: match text("end")?.as_str() {
                    "none" => RangeEnd::Unbounded,
                    "excl" => RangeEnd::Excluded(bytes("hi")?),
                    "incl" => RangeEnd::Included(bytes("hi")?),
                    _ => return Err(bad("end")),
                },
                reverse: d.get_bool("rev").map_err(|_| bad("rev"))?,
                digest: digest("d")?,
                count: count("n")?,
            },
            "count" => ReadCheck::Count {
                collection,
                n: count("n")?,
            },
            "nocoll" => ReadCheck::NoCollection { collection },
            _ => return Err(bad("unknown kind of read check")),
        })
    }
}
