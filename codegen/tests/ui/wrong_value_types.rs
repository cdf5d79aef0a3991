extern crate cstore as collection_store;
use collection_store::typed::Update;
use collection_store::Document;
use serde::{Deserialize, Serialize};

#[derive(Document, Serialize, Deserialize)]
struct User {
    #[document(id)]
    id: u64,
    name: String,
    age: u32,
    tags: Vec<String>,
}

fn main() {
    let f = User::fields();
    // A u32 field rejects a string.
    let _ = f.age().eq("eighteen");
    // A string field rejects a number.
    let _ = f.name().gte(3);
    // Array operators need an array field, with its element type.
    let _ = f.name().contains("x");
    let _ = f.tags().contains(1);
    // $inc needs a numeric field; $unset an Option field.
    let _ = Update::<User>::new().inc(f.name(), 1);
    let _ = Update::<User>::new().unset(f.age());
}
