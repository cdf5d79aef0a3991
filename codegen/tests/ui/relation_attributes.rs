extern crate cstore as collection_store;
use collection_store::Document;
use serde::{Deserialize, Serialize};

#[derive(Document, Serialize, Deserialize)]
#[document(has_many(posts, Post.author, cascade(persist)))]
struct Author {
    #[document(id)]
    id: u64,
}

#[derive(Document, Serialize, Deserialize)]
#[document(has_many(posts, Post))]
struct Editor {
    #[document(id)]
    id: u64,
}

#[derive(Document, Serialize, Deserialize)]
struct Post {
    #[document(id)]
    id: u64,
    #[document(reference(cascade(remove)))]
    author: u64,
    #[document(version)]
    version: String,
    #[document(version)]
    revision: u64,
}

#[derive(Document, Serialize, Deserialize)]
struct Comment {
    #[document(id)]
    id: u64,
    #[document(reference)]
    post: String,
}

fn main() {}
