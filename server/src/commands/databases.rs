//! `listDatabases`, `dropDatabase`, `dbStats`. A database exists while it has
//! a collection (engine collections named `<db>.<collection>`).

use std::collections::BTreeMap;

use bson::{doc, Bson, Document};

use super::collections::collections_of;
use super::{args, Request};
use crate::errors::CmdResult;

/// `listDatabases`.
pub fn list_databases(r: &mut Request<'_>) -> CmdResult<Document> {
    let name_only = args::opt_bool(r.cmd, "nameOnly")?.unwrap_or(false);
    let mut dbs: BTreeMap<String, usize> = BTreeMap::new();
    for n in r.shared.engine.list_collections()? {
        if let Some((db, _)) = n.split_once('.') {
            *dbs.entry(db.to_owned()).or_default() += 1;
        }
    }
    let filter_name =
        args::opt_doc(r.cmd, "filter")?.and_then(|f| f.get_str("name").ok().map(str::to_owned));
    let list: Vec<Bson> = dbs
        .into_keys()
        .filter(|db| filter_name.as_ref().is_none_or(|f| f == db))
        .map(|db| {
            Bson::Document(if name_only {
                doc! {"name": db}
            } else {
                // Per-database sizes are not tracked: one file holds every database.
                doc! {"name": db, "sizeOnDisk": 0i64, "empty": false}
            })
        })
        .collect();
    let total = r.shared.engine.file_size() as i64;
    Ok(if name_only {
        doc! {"databases": list}
    } else {
        doc! {"databases": list, "totalSize": total, "totalSizeMb": total / (1024 * 1024)}
    })
}

/// `dropDatabase`: drops every collection of the database.
pub fn drop_database(r: &mut Request<'_>) -> CmdResult<Document> {
    let db = r.db.clone();
    for coll in collections_of(r, &db)? {
        let name = format!("{db}.{coll}");
        r.shared.cursors.kill_namespace(&name);
        r.shared.engine.drop_collection(&name)?;
    }
    Ok(doc! {"dropped": db})
}

/// `dbStats` (counts only; sizes are the whole file's).
pub fn db_stats(r: &mut Request<'_>) -> CmdResult<Document> {
    let db = r.db.clone();
    let colls = collections_of(r, &db)?;
    let size = r.shared.engine.file_size() as i64;
    Ok(doc! {
        "db": db,
        "collections": colls.len() as i32,
        "views": 0,
        "objects": 0i64,
        "dataSize": 0i64,
        "storageSize": size,
        "fsUsedSize": size,
    })
}
