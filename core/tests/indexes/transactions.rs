//! Unique violations inside transactions.

use super::*;

// MongoDB manual, Transactions (https://www.mongodb.com/docs/manual/core/transactions/):
// "When a transaction aborts, all data changes made in the transaction are
// discarded without ever becoming visible." A duplicate key error aborts the
// whole closure transaction, across collections.
#[test]
fn duplicate_key_in_a_closure_transaction_rolls_back_every_collection() {
    let (_d, db) = open();
    let users = db.collection("users").unwrap();
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    users.insert_one(json!({"_id": 1, "email": "a@x"})).unwrap();
    let orders = db.collection("orders").unwrap();
    orders.create_index(IndexSpec::new([("user", 1)])).unwrap();
    orders.insert_one(json!({"_id": 1, "user": 1})).unwrap();

    let err = db
        .transaction(|tx| {
            tx.collection("orders")?
                .insert_one(json!({"_id": 10, "user": 2}))?;
            tx.collection("users")?
                .update_one(json!({"_id": 1}), json!({"$set": {"orders": 1}}))?;
            tx.collection("users")?
                .insert_one(json!({"_id": 2, "email": "a@x"}))?;
            Ok(())
        })
        .unwrap_err();
    let (index, _) = dup_key(err);
    assert_eq!(index, "email_1");

    assert_eq!(
        ids(&orders.find(json!({})).to_vec().unwrap()),
        vec![json!(1)]
    );
    assert_eq!(orders.count(json!({"user": 2})).unwrap(), 0);
    let e = orders.explain(json!({"user": 2})).unwrap();
    assert_ixscan(&e, "user_1");
    assert_eq!(e.stats.keys_examined, 0, "no index entry left behind");
    assert_eq!(
        users.find(json!({})).to_vec().unwrap(),
        vec![json!({"_id": 1, "email": "a@x"})]
    );
    // The key stays taken, and nothing else was reserved.
    dup_key(
        users
            .insert_one(json!({"_id": 3, "email": "a@x"}))
            .unwrap_err(),
    );
    users.insert_one(json!({"_id": 2, "email": "b@x"})).unwrap();
}

// Same page: inside an explicit transaction a failed statement is undone on
// its own (the statement-level atomicity MongoDB gives every write); the
// application may go on and commit the statements that succeeded.
#[test]
fn duplicate_key_in_an_explicit_transaction_undoes_only_that_statement() {
    let (_d, db) = open();
    let users = db.collection("users").unwrap();
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    users.insert_one(json!({"_id": 1, "email": "a@x"})).unwrap();

    let tx = db.begin().unwrap();
    {
        let orders = tx.collection("orders").unwrap();
        let u = tx.collection("users").unwrap();
        orders.insert_one(json!({"_id": 10, "user": 2})).unwrap();
        u.insert_one(json!({"_id": 2, "email": "b@x"})).unwrap();
        let (index, _) = dup_key(u.insert_one(json!({"_id": 3, "email": "a@x"})).unwrap_err());
        assert_eq!(index, "email_1");
        // A multi-document statement failing half way leaves no trace either.
        dup_key(
            u.update_many(json!({}), json!({"$set": {"email": "same@x"}}))
                .unwrap_err(),
        );
        assert_eq!(u.count(json!({"email": "same@x"})).unwrap(), 0);
        u.insert_one(json!({"_id": 4, "email": "d@x"})).unwrap();
        // Reads inside the transaction see its writes, through the index.
        assert_eq!(
            ids(&u
                .find(json!({"email": {"$in": ["a@x", "b@x", "d@x"]}}))
                .to_vec()
                .unwrap()),
            vec![json!(1), json!(2), json!(4)]
        );
        assert_ixscan(&u.explain(json!({"email": "b@x"})).unwrap(), "email_1");
        // Not visible outside yet.
        assert_eq!(users.count(json!({})).unwrap(), 1);
    }
    tx.commit().unwrap();

    assert_eq!(
        ids(&users.find(json!({})).to_vec().unwrap()),
        vec![json!(1), json!(2), json!(4)]
    );
    assert_eq!(
        ids(&users.find(json!({"email": "b@x"})).to_vec().unwrap()),
        vec![json!(2)]
    );
    assert_eq!(users.count(json!({"email": "same@x"})).unwrap(), 0);
    assert_eq!(users.find_one(json!({"_id": 3})).unwrap(), None);
    assert_eq!(
        db.collection("orders").unwrap().count(json!({})).unwrap(),
        1
    );
    dup_key(
        users
            .insert_one(json!({"_id": 5, "email": "d@x"}))
            .unwrap_err(),
    );
}

// Index creation is part of the transaction too: rolled back with it
// (https://www.mongodb.com/docs/manual/core/transactions-operations/#create-collections-and-indexes-in-a-transaction).
#[test]
fn index_created_in_a_rolled_back_transaction_disappears() {
    let (_d, db) = open();
    let c = db.collection("people").unwrap();
    c.insert_many(people(500)).unwrap();
    let tx = db.begin().unwrap();
    {
        let tc = tx.collection("people").unwrap();
        tc.create_index(IndexSpec::new([("age", 1)])).unwrap();
        assert_eq!(tc.list_indexes().unwrap().len(), 1);
        assert_ixscan(&tc.explain(json!({"age": 3})).unwrap(), "age_1");
    }
    tx.rollback();
    assert!(c.list_indexes().unwrap().is_empty());
    assert_collscan(&c.explain(json!({"age": 3})).unwrap());
    // And it can be created again afterwards.
    assert_eq!(
        c.create_index(IndexSpec::new([("age", 1)])).unwrap(),
        "age_1"
    );
    assert_eq!(c.count(json!({"age": 3})).unwrap(), 5);
}
