//! A crate re-exporting collection-store points the derive at its re-export;
//! this test's dependency is named `cstore`, so nothing may name `collection_store`.

mod storage {
    pub use cstore as db;
}

use serde::{Deserialize, Serialize};
use storage::db::typed::{Filter, Update};
use storage::db::{Document, Embedded};

#[derive(Embedded, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(crate = "storage::db")]
struct Address {
    city: String,
}

#[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(crate = "storage::db", collection = "people", version = 3)]
#[document(index(fields(address.city, age desc), name = "city_age", partial = r#"{"age": {"$gte": 18}}"#))]
#[serde(rename_all = "camelCase")]
struct Person {
    #[document(id)]
    #[serde(rename = "_id")]
    person_id: Option<String>,
    #[document(index(unique, sparse))]
    email_address: String,
    age: u32,
    address: Address,
}

fn main() {
    assert_eq!(<Person as Document>::COLLECTION, "people");
    assert_eq!(<Person as Document>::ID_FIELD, "_id");
    assert_eq!(<Person as Document>::VERSION, 3);
    assert_eq!(Person::fields().email_address().path(), "emailAddress");
    assert_eq!(Person::fields().address().city().path(), "address.city");
    assert_eq!(PersonIden::EmailAddress.as_str(), "emailAddress");
    assert_eq!(PersonIden::Table.to_string(), "people");
    let ix = <Person as Document>::indexes();
    assert_eq!(
        ix[0].fields,
        vec![("address.city".to_owned(), 1), ("age".to_owned(), -1)]
    );
    assert_eq!(ix[1].index_name(), "emailAddress_1");
    let _: Filter<Person> = Person::fields().age().gte(18);
    let _: Update<Person> = Update::new().set(Person::fields().address().city(), "Oslo");
}
