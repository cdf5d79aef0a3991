//! Query operators, sort, skip/limit, projection, count and distinct, checked
//! against the behaviour documented in the MongoDB manual
//! (https://www.mongodb.com/docs/manual/). Each test uses a small fixture and
//! asserts the exact `_id` list it expects (sorted by `_id` unless the test is
//! about sorting).
//!
//! The suite runs against every front end (see `common/front.rs`): each test
//! appears as `direct::…`, `transaction::…`, `async_api::…` and `rebuilt::…`.

mod common;

use collection_store::Error;
use common::front::{Db, C};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Fixture helpers
// ---------------------------------------------------------------------------

/// A database in a temporary directory, seen through the test's front end,
/// holding one collection "c".
struct Fx {
    db: Db,
}

fn fixture(docs: Vec<Value>) -> Fx {
    let db = Db::new();
    if !docs.is_empty() {
        db.collection("c").insert_many(docs).unwrap();
    }
    Fx { db }
}

fn id_of(doc: &Value) -> i64 {
    doc["_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("fixture documents have integer _id values, got {doc}"))
}

impl Fx {
    /// The collection "c".
    fn c(&self) -> C<'_> {
        self.db.collection("c")
    }

    /// `_id`s of the documents matching `filter`, in `_id` order.
    fn ids(&self, filter: Value) -> Vec<i64> {
        self.sorted_ids(filter, json!({"_id": 1}))
    }

    /// `_id`s of the documents matching `filter`, in the order of `sort`.
    fn sorted_ids(&self, filter: Value, sort: Value) -> Vec<i64> {
        let shown = format!("filter {filter} sort {sort}");
        self.c()
            .find(filter)
            .sort(sort)
            .to_vec()
            .unwrap_or_else(|e| panic!("{shown}: unexpected error {e}"))
            .iter()
            .map(id_of)
            .collect()
    }

    /// Documents matching `filter` shaped by `projection`, in `_id` order.
    fn projected(&self, filter: Value, projection: Value) -> Vec<Value> {
        let shown = format!("filter {filter} projection {projection}");
        self.c()
            .find(filter)
            .sort(json!({"_id": 1}))
            .projection(projection)
            .to_vec()
            .unwrap_or_else(|e| panic!("{shown}: unexpected error {e}"))
    }

    /// The error a find with `filter` reports (it must report one).
    fn filter_error(&self, filter: Value) -> Error {
        let shown = filter.to_string();
        match self.c().find(filter).to_vec() {
            Ok(docs) => panic!("filter {shown} should be rejected, matched {docs:?}"),
            Err(e) => e,
        }
    }
}

fn is_invalid_filter(e: &Error) -> bool {
    matches!(e, Error::InvalidFilter(_))
}

// ---------------------------------------------------------------------------
// $eq, implicit equality, arrays, embedded documents, null
// ---------------------------------------------------------------------------

fn eq_fixture() -> Fx {
    fixture(vec![
        json!({"_id": 1, "a": 1}),
        json!({"_id": 2, "a": 1.0}),
        json!({"_id": 3, "a": [1, 2]}),
        json!({"_id": 4, "a": [[1, 2], 3]}),
        json!({"_id": 5, "a": "1"}),
        json!({"_id": 6, "a": {"b": 1, "c": 2}}),
        json!({"_id": 7, "a": {"c": 2, "b": 1}}),
        json!({"_id": 8}),
        json!({"_id": 9, "a": null}),
        json!({"_id": 10, "a": [2, 1]}),
    ])
}

fn eq_scalar_matches_numbers_of_any_type_and_array_elements() {
    let fx = eq_fixture();
    // MongoDB manual, Comparison/Sort Order: "MongoDB treats some types as
    // equivalent for comparison purposes. For instance, all numeric types are
    // considered equivalent in comparisons." So 1 == 1.0.
    // MongoDB manual, Query an Array: "To query if the array field contains at
    // least one element with the specified value, use the filter
    // { <field>: <value> } where <value> is the element value."
    assert_eq!(fx.ids(json!({"a": 1})), [1, 2, 3, 10]);
    assert_eq!(fx.ids(json!({"a": 1.0})), [1, 2, 3, 10]);
    assert_eq!(fx.ids(json!({"a": {"$eq": 1}})), [1, 2, 3, 10]);
    assert_eq!(fx.ids(json!({"a": {"$eq": 1.0}})), [1, 2, 3, 10]);
    // A string never equals a number.
    assert_eq!(fx.ids(json!({"a": "1"})), [5]);
    assert_eq!(fx.ids(json!({"a": 2})), [3, 10]);
    assert_eq!(fx.ids(json!({"a": 3})), [4]);
}

fn eq_array_is_exact_array_or_element_equality() {
    let fx = eq_fixture();
    // MongoDB manual, Query an Array: "To specify equality condition on an
    // array, use the query document { <field>: <value> } where <value> is the
    // exact array to match, including the order of the elements."
    // MongoDB manual, $eq: the query matches documents where the array "equals
    // exactly the specified array or ... contains an element that equals the
    // array".
    assert_eq!(fx.ids(json!({"a": [1, 2]})), [3, 4]);
    assert_eq!(fx.ids(json!({"a": {"$eq": [1, 2]}})), [3, 4]);
    assert_eq!(fx.ids(json!({"a": [2, 1]})), [10]);
    assert_eq!(fx.ids(json!({"a": [1]})), Vec::<i64>::new());
    assert_eq!(fx.ids(json!({"a": [[1, 2], 3]})), [4]);
}

fn eq_embedded_document_is_field_order_sensitive() {
    let fx = eq_fixture();
    // MongoDB manual, Query on Embedded/Nested Documents: "Equality matches on
    // the whole embedded document require an exact match of the specified
    // <value> document, including the field order."
    assert_eq!(fx.ids(json!({"a": {"b": 1, "c": 2}})), [6]);
    assert_eq!(fx.ids(json!({"a": {"c": 2, "b": 1}})), [7]);
    assert_eq!(fx.ids(json!({"a": {"b": 1}})), Vec::<i64>::new());
    // A dotted path matches the field whatever the order.
    assert_eq!(fx.ids(json!({"a.b": 1})), [6, 7]);
}

fn eq_null_matches_null_and_missing() {
    let fx = eq_fixture();
    // MongoDB manual, Query for Null or Missing Fields: "The { item : null }
    // query matches documents that either contain the item field whose value is
    // null or that do not contain the item field."
    assert_eq!(fx.ids(json!({"a": null})), [8, 9]);
    assert_eq!(fx.ids(json!({"a": {"$eq": null}})), [8, 9]);
    // ... whereas "The { item : { $type: 10 } } query matches only documents
    // that contain the item field whose value is null".
    assert_eq!(fx.ids(json!({"a": {"$type": 10}})), [9]);
    // ... and "The { item : { $exists: false } } query matches documents that do
    // not contain the item field".
    assert_eq!(fx.ids(json!({"a": {"$exists": false}})), [8]);
}

fn ne_matches_missing_fields_and_excludes_arrays_containing_the_value() {
    let fx = eq_fixture();
    // MongoDB manual, $ne: "$ne selects the documents where the value of the
    // field is not equal to the specified value. This includes documents that
    // do not contain the field."
    assert_eq!(fx.ids(json!({"a": {"$ne": 1}})), [4, 5, 6, 7, 8, 9]);
    assert_eq!(fx.ids(json!({"a": {"$ne": 1.0}})), [4, 5, 6, 7, 8, 9]);
    assert_eq!(
        fx.ids(json!({"a": {"$ne": [1, 2]}})),
        [1, 2, 5, 6, 7, 8, 9, 10]
    );
    // MongoDB manual, Query for Null or Missing Fields (Non-Equality Filter):
    // { item: { $ne: null } } returns documents where the field exists and is
    // not null.
    assert_eq!(
        fx.ids(json!({"a": {"$ne": null}})),
        [1, 2, 3, 4, 5, 6, 7, 10]
    );
}

// ---------------------------------------------------------------------------
// $gt $gte $lt $lte and type bracketing
// ---------------------------------------------------------------------------

fn cmp_fixture() -> Fx {
    fixture(vec![
        json!({"_id": 1, "a": 1}),
        json!({"_id": 2, "a": 5}),
        json!({"_id": 3, "a": 10.5}),
        json!({"_id": 4, "a": "5"}),
        json!({"_id": 5, "a": "abc"}),
        json!({"_id": 6, "a": null}),
        json!({"_id": 7}),
        json!({"_id": 8, "a": [2, 20]}),
        json!({"_id": 9, "a": true}),
        json!({"_id": 10, "a": {"x": 5}}),
        json!({"_id": 11, "a": []}),
    ])
}

fn comparison_operators_on_numbers() {
    let fx = cmp_fixture();
    // MongoDB manual, $gt: "$gt selects those documents where the value of the
    // specified field is greater than (i.e. >) the specified value."
    // A condition on an array field matches when any element satisfies it.
    assert_eq!(fx.ids(json!({"a": {"$gt": 4}})), [2, 3, 8]);
    assert_eq!(fx.ids(json!({"a": {"$gt": 5}})), [3, 8]);
    assert_eq!(fx.ids(json!({"a": {"$gte": 5}})), [2, 3, 8]);
    assert_eq!(fx.ids(json!({"a": {"$lt": 5}})), [1, 8]);
    assert_eq!(fx.ids(json!({"a": {"$lte": 5}})), [1, 2, 8]);
    assert_eq!(fx.ids(json!({"a": {"$gt": 10.4}})), [3, 8]);
    assert_eq!(fx.ids(json!({"a": {"$lt": 1.5}})), [1]);
    assert_eq!(fx.ids(json!({"a": {"$lte": 1.0}})), [1]);
    assert_eq!(fx.ids(json!({"a": {"$gt": 100}})), Vec::<i64>::new());
}

fn number_ranges_never_match_other_types() {
    let fx = cmp_fixture();
    // MongoDB manual, Comparison/Sort Order: "MongoDB enforces comparisons with
    // Comparison Query Operators only on documents where the BSON type of the
    // target field matches the query operand type through Type Bracketing."
    // The string "5", null, missing, true, {x: 5} and [] never satisfy a number range.
    assert_eq!(fx.ids(json!({"a": {"$gte": -1000000}})), [1, 2, 3, 8]);
    assert_eq!(fx.ids(json!({"a": {"$lt": 1000000}})), [1, 2, 3, 8]);
    // String ranges only see strings ("5" < "abc" in binary order).
    assert_eq!(fx.ids(json!({"a": {"$gt": "a"}})), [5]);
    assert_eq!(fx.ids(json!({"a": {"$lt": "a"}})), [4]);
    assert_eq!(fx.ids(json!({"a": {"$gte": ""}})), [4, 5]);
    // Booleans only compare with booleans.
    assert_eq!(fx.ids(json!({"a": {"$gte": false}})), [9]);
    assert_eq!(fx.ids(json!({"a": {"$gt": true}})), Vec::<i64>::new());
    // Objects only compare with objects.
    assert_eq!(fx.ids(json!({"a": {"$gt": {"x": 4}}})), [10]);
    assert_eq!(fx.ids(json!({"a": {"$lt": {"x": 4}}})), Vec::<i64>::new());
}

fn comparisons_with_null() {
    let fx = cmp_fixture();
    // Type bracketing with a null operand: null and missing fields compare
    // equal to null, nothing is greater or less than it.
    assert_eq!(fx.ids(json!({"a": {"$gte": null}})), [6, 7]);
    assert_eq!(fx.ids(json!({"a": {"$lte": null}})), [6, 7]);
    assert_eq!(fx.ids(json!({"a": {"$gt": null}})), Vec::<i64>::new());
    assert_eq!(fx.ids(json!({"a": {"$lt": null}})), Vec::<i64>::new());
}

fn range_conditions_on_an_array_may_be_met_by_different_elements() {
    let fx = cmp_fixture();
    // MongoDB manual, Query an Array: "When specifying compound conditions on
    // array elements, you can specify the query such that either a single array
    // element meets these condition or any combination of array elements meets
    // the conditions." [2, 20]: 20 > 5 and 2 < 10.
    assert_eq!(fx.ids(json!({"a": {"$gt": 5, "$lt": 10}})), [8]);
    // With $elemMatch one element must meet both: none does.
    assert_eq!(
        fx.ids(json!({"a": {"$elemMatch": {"$gt": 5, "$lt": 10}}})),
        Vec::<i64>::new()
    );
    assert_eq!(
        fx.ids(json!({"a": {"$elemMatch": {"$gt": 5, "$lt": 30}}})),
        [8]
    );
}

fn array_operands_compare_whole_arrays() {
    let fx = fixture(vec![
        json!({"_id": 1, "a": [1, 5]}),
        json!({"_id": 2, "a": [1, 2, 3]}),
        json!({"_id": 3, "a": [2]}),
        json!({"_id": 4, "a": 3}),
        json!({"_id": 5, "a": [0, [1, 9]]}),
    ]);
    // MongoDB manual, Comparison/Sort Order (Arrays): "Comparison Query
    // Operators, such as $lt and $gt, perform comparisons on arrays
    // lexicographically." An array operand never brackets with the number 3.
    // Doc 5 matches through its element [1, 9].
    assert_eq!(fx.ids(json!({"a": {"$gt": [1, 4]}})), [1, 3, 5]);
    assert_eq!(fx.ids(json!({"a": {"$lt": [1, 4]}})), [2, 5]);
}

fn integers_and_doubles_compare_by_value() {
    let fx = fixture(vec![
        json!({"_id": 1, "a": 2}),
        json!({"_id": 2, "a": 2.0}),
        json!({"_id": 3, "a": 2.5}),
        json!({"_id": 4, "a": -0.0}),
        json!({"_id": 5, "a": 0}),
    ]);
    // MongoDB manual, Comparison/Sort Order: "all numeric types are considered
    // equivalent in comparisons".
    assert_eq!(fx.ids(json!({"a": 2})), [1, 2]);
    assert_eq!(fx.ids(json!({"a": 2.0})), [1, 2]);
    assert_eq!(fx.ids(json!({"a": {"$in": [2.0, 7]}})), [1, 2]);
    assert_eq!(fx.ids(json!({"a": {"$gt": 2}})), [3]);
    assert_eq!(fx.ids(json!({"a": {"$gte": 2.0, "$lt": 3}})), [1, 2, 3]);
    assert_eq!(fx.ids(json!({"a": 0})), [4, 5]);
    // The stored types remain distinct for $type.
    assert_eq!(fx.ids(json!({"a": {"$type": "double"}})), [2, 3, 4]);
    assert_eq!(fx.ids(json!({"a": {"$type": "int"}})), [1, 5]);
}

fn big_integers_beyond_2_pow_53_compare_exactly() {
    let two53 = 9_007_199_254_740_992_i64;
    let fx = fixture(vec![
        json!({"_id": 1, "a": two53}),
        json!({"_id": 2, "a": two53 + 1}),
        json!({"_id": 3, "a": 9_007_199_254_740_992.0_f64}),
        json!({"_id": 4, "a": i64::MAX}),
        json!({"_id": 5, "a": i64::MAX - 1}),
        json!({"_id": 6, "a": 9_223_372_036_854_775_808.0_f64}),
        json!({"_id": 7, "a": u64::MAX}),
        json!({"_id": 8, "a": u64::MAX - 1}),
    ]);
    // 64-bit integers are compared exactly, never rounded through a double:
    // 2^53 + 1 is not the double 2^53, and i64::MAX is not the double 2^63.
    assert_eq!(fx.ids(json!({"a": two53 + 1})), [2]);
    assert_eq!(fx.ids(json!({"a": two53})), [1, 3]);
    assert_eq!(fx.ids(json!({"a": 9_007_199_254_740_992.0_f64})), [1, 3]);
    assert_eq!(fx.ids(json!({"a": {"$gt": two53}})), [2, 4, 5, 6, 7, 8]);
    assert_eq!(
        fx.ids(json!({"a": {"$gt": 9_007_199_254_740_992.0_f64}})),
        [2, 4, 5, 6, 7, 8]
    );
    assert_eq!(fx.ids(json!({"a": {"$lte": two53}})), [1, 3]);
    assert_eq!(fx.ids(json!({"a": i64::MAX})), [4]);
    assert_eq!(fx.ids(json!({"a": {"$lt": i64::MAX}})), [1, 2, 3, 5]);
    assert_eq!(
        fx.ids(json!({"a": {"$gte": 9_223_372_036_854_775_808.0_f64}})),
        [6, 7, 8]
    );
    assert_eq!(
        fx.ids(json!({"a": {"$in": [two53 + 1, i64::MAX - 1]}})),
        [2, 5]
    );
    assert_eq!(fx.ids(json!({"a": u64::MAX})), [7]);
    assert_eq!(fx.ids(json!({"a": u64::MAX - 1})), [8]);
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"a": 1, "_id": 1})),
        [1, 3, 2, 5, 4, 6, 8, 7]
    );
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"a": -1, "_id": 1})),
        [7, 8, 6, 4, 5, 2, 1, 3]
    );
}

// ---------------------------------------------------------------------------
// $in / $nin
// ---------------------------------------------------------------------------

fn inventory_fixture() -> Fx {
    // The collection of the MongoDB manual's $in and $nin pages.
    fixture(vec![
        json!({"_id": 1, "item": "Pens", "quantity": 350, "tags": ["school", "office"]}),
        json!({"_id": 2, "item": "Erasers", "quantity": 15, "tags": ["school", "home"]}),
        json!({"_id": 3, "item": "Maps", "tags": ["office", "storage"]}),
        json!({"_id": 4, "item": "Books", "quantity": 5, "tags": ["school", "storage", "home"]}),
    ])
}

fn in_matches_any_listed_value_and_array_elements() {
    let fx = inventory_fixture();
    // MongoDB manual, $in: "The $in operator selects the documents where the
    // value of a field equals any value in the specified array." ... "If the
    // field holds an array, then the $in operator selects the documents whose
    // field holds an array that contains at least one element that matches a
    // value in the specified array".
    assert_eq!(fx.ids(json!({"quantity": {"$in": [5, 15]}})), [2, 4]);
    assert_eq!(
        fx.ids(json!({"tags": {"$in": ["home", "school"]}})),
        [1, 2, 4]
    );
    assert_eq!(fx.ids(json!({"tags": {"$in": ["storage"]}})), [3, 4]);
    // null in the list matches a missing field, as {field: null} does.
    assert_eq!(fx.ids(json!({"quantity": {"$in": [null, 350]}})), [1, 3]);
    // An empty list matches nothing.
    assert_eq!(fx.ids(json!({"quantity": {"$in": []}})), Vec::<i64>::new());
    // A whole-array value in the list is an exact array match.
    assert_eq!(fx.ids(json!({"tags": {"$in": [["school", "home"]]}})), [2]);
}

fn nin_matches_missing_fields_and_arrays_without_the_values() {
    let fx = inventory_fixture();
    // MongoDB manual, $nin: "$nin selects the documents where: the specified
    // field value is not in the specified array or the specified field does not
    // exist." ... "If the field holds an array, then the $nin operator selects
    // the documents whose field holds an array with no element equal to a value
    // in the specified array".
    assert_eq!(fx.ids(json!({"quantity": {"$nin": [5, 15]}})), [1, 3]);
    assert_eq!(fx.ids(json!({"tags": {"$nin": ["school"]}})), [3]);
    assert_eq!(
        fx.ids(json!({"tags": {"$nin": ["home", "office"]}})),
        Vec::<i64>::new()
    );
    assert_eq!(fx.ids(json!({"quantity": {"$nin": []}})), [1, 2, 3, 4]);
    assert_eq!(fx.ids(json!({"quantity": {"$nin": [null]}})), [1, 2, 4]);
    // MongoDB manual, $exists: { qty: { $exists: true, $nin: [ 5, 15 ] } }
    // "will select all documents ... where the qty field exists and its value
    // does not equal 5 or 15."
    assert_eq!(
        fx.ids(json!({"quantity": {"$exists": true, "$nin": [5, 15]}})),
        [1]
    );
}

fn in_and_nin_accept_regular_expressions() {
    let fx = inventory_fixture();
    // MongoDB manual, $in: "The $in operator can select documents using regular
    // expressions of the form /pattern/." In JSON the regular expression is
    // written as Extended JSON {"$regularExpression": {...}}.
    let st = json!({"$regularExpression": {"pattern": "^st", "options": ""}});
    let pe_i = json!({"$regularExpression": {"pattern": "^PE", "options": "i"}});
    assert_eq!(fx.ids(json!({"tags": {"$in": [st.clone()]}})), [3, 4]);
    assert_eq!(
        fx.ids(json!({"item": {"$in": [pe_i.clone(), "Maps"]}})),
        [1, 3]
    );
    assert_eq!(fx.ids(json!({"tags": {"$nin": [st]}})), [1, 2]);
    assert_eq!(fx.ids(json!({"item": {"$nin": [pe_i, "Maps"]}})), [2, 4]);
    // "You cannot use $regex operator expressions inside an $in."
    let e = fx.filter_error(json!({"tags": {"$in": [{"$regex": "^st"}]}}));
    assert!(is_invalid_filter(&e), "{e:?}");
}

// ---------------------------------------------------------------------------
// $and $or $nor $not
// ---------------------------------------------------------------------------

fn logic_fixture() -> Fx {
    // After the MongoDB manual's $nor example.
    fixture(vec![
        json!({"_id": 1, "price": 1.99, "sale": true}),
        json!({"_id": 2, "price": 1.99, "sale": false}),
        json!({"_id": 3, "price": 2.99, "sale": true}),
        json!({"_id": 4, "price": 2.99}),
        json!({"_id": 5, "sale": false}),
        json!({"_id": 6}),
    ])
}

fn and_or_nor() {
    let fx = logic_fixture();
    // MongoDB manual, $and: "$and performs a logical AND operation on an array
    // of one or more expressions ... and selects the documents that satisfy
    // all the expressions."
    assert_eq!(
        fx.ids(json!({"$and": [{"price": 1.99}, {"sale": true}]})),
        [1]
    );
    assert_eq!(fx.ids(json!({"price": 1.99, "sale": false})), [2]);
    assert_eq!(
        fx.ids(json!({"$and": [{"price": {"$ne": 1.99}}, {"price": {"$exists": true}}]})),
        [3, 4]
    );
    // MongoDB manual, $or: "The $or operator performs a logical OR operation on
    // an array of one or more <expressions> and selects the documents that
    // satisfy at least one of the <expressions>."
    assert_eq!(
        fx.ids(json!({"$or": [{"price": 1.99}, {"sale": true}]})),
        [1, 2, 3]
    );
    assert_eq!(fx.ids(json!({"$or": [{"price": 5}]})), Vec::<i64>::new());
    // MongoDB manual, $nor: "$nor performs a logical NOR operation on an array
    // of one or more query expression and selects the documents that fail all
    // the query expressions in the array." Its example
    // { $nor: [ { price: 1.99 }, { sale: true } ] } also returns documents
    // that do not contain the price field and/or the sale field.
    assert_eq!(
        fx.ids(json!({"$nor": [{"price": 1.99}, {"sale": true}]})),
        [4, 5, 6]
    );
    // Nesting.
    assert_eq!(
        fx.ids(json!({"$or": [
            {"$and": [{"price": 2.99}, {"sale": {"$exists": false}}]},
            {"sale": false, "price": {"$exists": false}}
        ]})),
        [4, 5]
    );
    assert_eq!(
        fx.ids(json!({"$and": [{"$or": [{"price": 1.99}, {"price": 2.99}]}, {"$nor": [{"sale": true}]}]})),
        [2, 4]
    );
    // $comment is accepted and ignored.
    assert_eq!(fx.ids(json!({"price": 1.99, "$comment": "why"})), [1, 2]);
}

fn not_negates_the_operator_and_matches_missing_fields() {
    let fx = logic_fixture();
    // MongoDB manual, $not: "$not performs a logical NOT operation on the
    // specified <operator-expression> and selects the documents that do not
    // match the <operator-expression>. This includes documents that do not
    // contain the field." ... "{ $not: { $gt: 1.99 } } is different from the
    // $lte operator. { $lte: 1.99 } returns only the documents where price
    // field exists and its value is less than or equal to 1.99."
    assert_eq!(
        fx.ids(json!({"price": {"$not": {"$gt": 1.99}}})),
        [1, 2, 5, 6]
    );
    assert_eq!(fx.ids(json!({"price": {"$lte": 1.99}})), [1, 2]);
    // "{ price: { $not: { $eq: 1.99 } } } The preceding query is equivalent
    // to: { price: { $ne: 1.99 } }"
    assert_eq!(
        fx.ids(json!({"price": {"$not": {"$eq": 1.99}}})),
        [3, 4, 5, 6]
    );
    assert_eq!(fx.ids(json!({"price": {"$ne": 1.99}})), [3, 4, 5, 6]);
    // $not of several operators negates their conjunction.
    assert_eq!(
        fx.ids(json!({"price": {"$not": {"$gt": 1, "$lt": 2}}})),
        [3, 4, 5, 6]
    );
    // On an array, $not negates "some element matches".
    let fx = fixture(vec![
        json!({"_id": 1, "a": [3, 8]}),
        json!({"_id": 2, "a": [1, 2]}),
        json!({"_id": 3, "a": "text"}),
    ]);
    assert_eq!(fx.ids(json!({"a": {"$not": {"$gt": 5}}})), [2, 3]);
}

// ---------------------------------------------------------------------------
// $exists
// ---------------------------------------------------------------------------

fn exists_true_includes_null_values_and_false_means_absent() {
    // The "records" collection of the MongoDB manual's $exists page.
    let fx = fixture(vec![
        json!({"_id": 1, "a": 5, "b": 5, "c": null}),
        json!({"_id": 2, "a": 3, "b": null, "c": 8}),
        json!({"_id": 3, "a": null, "b": 3, "c": 9}),
        json!({"_id": 4, "a": 1, "b": 2, "c": 3}),
        json!({"_id": 5, "a": 2, "c": 5}),
        json!({"_id": 6, "a": 3, "b": 2}),
        json!({"_id": 7, "a": 4}),
        json!({"_id": 8, "b": 2, "c": 4}),
        json!({"_id": 9, "b": 2}),
        json!({"_id": 10, "c": 6}),
    ]);
    // MongoDB manual, $exists: "When <boolean> is true, $exists matches the
    // documents that contain the field, including documents where the field
    // value is null. If <boolean> is false, the query returns only the
    // documents that do not contain the field."
    assert_eq!(
        fx.ids(json!({"a": {"$exists": true}})),
        [1, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(fx.ids(json!({"b": {"$exists": false}})), [5, 7, 10]);
    assert_eq!(fx.ids(json!({"c": {"$exists": false}})), [6, 7, 9]);
    // Numbers are accepted as booleans.
    assert_eq!(fx.ids(json!({"c": {"$exists": 0}})), [6, 7, 9]);
    assert_eq!(fx.ids(json!({"b": {"$exists": 1}})), [1, 2, 3, 4, 6, 8, 9]);
    // Null vs missing vs $type null.
    assert_eq!(fx.ids(json!({"a": null})), [3, 8, 9, 10]);
    assert_eq!(fx.ids(json!({"a": {"$type": "null"}})), [3]);
}

fn exists_on_dotted_paths() {
    let fx = fixture(vec![
        json!({"_id": 1, "a": {"b": null}}),
        json!({"_id": 2, "a": {"c": 1}}),
        json!({"_id": 3, "a": [{"c": 1}, {"b": 2}]}),
        json!({"_id": 4, "a": [{"c": 1}]}),
        json!({"_id": 5, "a": [7, 8]}),
        json!({"_id": 6}),
    ]);
    assert_eq!(fx.ids(json!({"a.b": {"$exists": true}})), [1, 3]);
    assert_eq!(fx.ids(json!({"a.b": {"$exists": false}})), [2, 4, 5, 6]);
    assert_eq!(fx.ids(json!({"a.1": {"$exists": true}})), [3, 5]);
}

// ---------------------------------------------------------------------------
// $type
// ---------------------------------------------------------------------------

fn type_fixture() -> Fx {
    fixture(vec![
        json!({"_id": 1, "a": 1}),
        json!({"_id": 2, "a": 3_000_000_000_i64}),
        json!({"_id": 3, "a": 1.5}),
        json!({"_id": 4, "a": "s"}),
        json!({"_id": 5, "a": {"x": 1}}),
        json!({"_id": 6, "a": [1, "s"]}),
        json!({"_id": 7, "a": null}),
        json!({"_id": 8, "a": true}),
        json!({"_id": 9}),
        json!({"_id": 10, "a": []}),
        json!({"_id": 11, "a": [[1]]}),
        json!({"_id": 12, "a": {"$date": "2024-01-31T12:00:00Z"}}),
        json!({"_id": 13, "a": 2_147_483_647}),
        json!({"_id": 14, "a": -2_147_483_649_i64}),
        json!({"_id": 15, "a": [{"x": 1}]}),
    ])
}

fn type_by_alias() {
    let fx = type_fixture();
    // MongoDB manual, $type: "$type returns documents where the BSON type of
    // the field matches the BSON type passed to $type." ... "For documents
    // where field is an array, $type returns documents in which at least one
    // array element matches a type passed to $type."
    assert_eq!(fx.ids(json!({"a": {"$type": "int"}})), [1, 6, 13]);
    assert_eq!(fx.ids(json!({"a": {"$type": "long"}})), [2, 14]);
    assert_eq!(fx.ids(json!({"a": {"$type": "double"}})), [3]);
    assert_eq!(fx.ids(json!({"a": {"$type": "string"}})), [4, 6]);
    assert_eq!(fx.ids(json!({"a": {"$type": "object"}})), [5, 15]);
    assert_eq!(fx.ids(json!({"a": {"$type": "null"}})), [7]);
    assert_eq!(fx.ids(json!({"a": {"$type": "bool"}})), [8]);
    assert_eq!(fx.ids(json!({"a": {"$type": "date"}})), [12]);
    assert_eq!(fx.ids(json!({"a": {"$type": "regex"}})), Vec::<i64>::new());
    // The "number" alias "matches against the following BSON types: double,
    // 32-bit integer, 64-bit integer, decimal".
    assert_eq!(
        fx.ids(json!({"a": {"$type": "number"}})),
        [1, 2, 3, 6, 13, 14]
    );
}

fn type_array_matches_the_field_itself() {
    let fx = type_fixture();
    // MongoDB manual, $type: "Queries for $type: "array" return documents where
    // the field itself is an array."
    assert_eq!(fx.ids(json!({"a": {"$type": "array"}})), [6, 10, 11, 15]);
    assert_eq!(fx.ids(json!({"a": {"$type": 4}})), [6, 10, 11, 15]);
    // The empty array has no element of any other type.
    assert_eq!(
        fx.ids(json!({"a": {"$type": ["int", "string", "object", "null"]}})),
        [1, 4, 5, 6, 7, 13, 15]
    );
}

fn type_by_number_and_by_list() {
    let fx = type_fixture();
    // MongoDB manual, $type: "You can specify either the number or alias for
    // the BSON type." ... "The above query matches documents where the field
    // value is any of the listed types. The types specified in the array can be
    // either numeric or string aliases."
    assert_eq!(fx.ids(json!({"a": {"$type": 16}})), [1, 6, 13]);
    assert_eq!(fx.ids(json!({"a": {"$type": 18}})), [2, 14]);
    assert_eq!(fx.ids(json!({"a": {"$type": 1}})), [3]);
    assert_eq!(fx.ids(json!({"a": {"$type": 2}})), [4, 6]);
    assert_eq!(fx.ids(json!({"a": {"$type": 8}})), [8]);
    assert_eq!(fx.ids(json!({"a": {"$type": 9}})), [12]);
    assert_eq!(fx.ids(json!({"a": {"$type": 10}})), [7]);
    assert_eq!(fx.ids(json!({"a": {"$type": [2, "bool"]}})), [4, 6, 8]);
    assert_eq!(fx.ids(json!({"a": {"$type": ["long", 1]}})), [2, 3, 14]);
    // A missing field has no type.
    assert!(!fx
        .ids(
            json!({"a": {"$type": ["null", "number", "array", "object", "string", "bool", "date"]}})
        )
        .contains(&9));
}

// ---------------------------------------------------------------------------
// $all
// ---------------------------------------------------------------------------

fn all_fixture() -> Fx {
    // The inventory collection of the MongoDB manual's $all page, plus a few.
    fixture(vec![
        json!({"_id": 1, "code": "xyz", "tags": ["school", "book", "bag", "headphone", "appliance"],
               "qty": [{"size": "S", "num": 10, "color": "blue"},
                       {"size": "M", "num": 45, "color": "blue"},
                       {"size": "L", "num": 100, "color": "green"}]}),
        json!({"_id": 2, "code": "abc", "tags": ["appliance", "school", "book"],
               "qty": [{"size": "6", "num": 100, "color": "green"},
                       {"size": "6", "num": 50, "color": "blue"},
                       {"size": "8", "num": 100, "color": "brown"}]}),
        json!({"_id": 3, "code": "efg", "tags": ["school", "book"],
               "qty": [{"size": "S", "num": 10, "color": "blue"},
                       {"size": "M", "num": 100, "color": "blue"},
                       {"size": "L", "num": 100, "color": "green"}]}),
        json!({"_id": 4, "code": "ijk", "tags": ["electronics", "school"],
               "qty": [{"size": "M", "num": 100, "color": "green"}]}),
        json!({"_id": 5, "tags": "school"}),
        json!({"_id": 6, "tags": [["ssl", "security"], "x"]}),
        json!({"_id": 7, "tags": ["ssl", "security"]}),
    ])
}

fn all_requires_every_value() {
    let fx = all_fixture();
    // MongoDB manual, $all: "The $all is equivalent to an $and operation of the
    // specified values; i.e. the following statement: { tags: { $all: [ "ssl" ,
    // "security" ] } } is equivalent to: { $and: [ { tags: "ssl" }, { tags:
    // "security" } ] }"
    assert_eq!(
        fx.ids(json!({"tags": {"$all": ["appliance", "school", "book"]}})),
        [1, 2]
    );
    assert_eq!(fx.ids(json!({"tags": {"$all": ["ssl", "security"]}})), [7]);
    assert_eq!(
        fx.ids(json!({"$and": [{"tags": "ssl"}, {"tags": "security"}]})),
        fx.ids(json!({"tags": {"$all": ["ssl", "security"]}}))
    );
    // "The matched documents can either contain a field with a value that is an
    // array containing all the specified elements, or a field with a single
    // value matching the specified element."
    assert_eq!(
        fx.ids(json!({"tags": {"$all": ["school"]}})),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(fx.ids(json!({"qty.num": {"$all": [50]}})), [2]);
    assert_eq!(fx.ids(json!({"qty.num": {"$all": [10, 45]}})), [1]);
}

fn all_with_a_nested_array() {
    let fx = all_fixture();
    // MongoDB manual, $all: "When passed an array of a nested array (e.g.
    // [ [ "A" ] ] ), $all matches documents where the field contains the nested
    // array as an element (e.g. field: [ [ "A" ], ... ]), or the field equals
    // the nested array (e.g. field: [ "A" ])."
    assert_eq!(
        fx.ids(json!({"tags": {"$all": [["ssl", "security"]]}})),
        [6, 7]
    );
}

fn all_with_elem_match() {
    let fx = all_fixture();
    // MongoDB manual, $all (Use $all with $elemMatch): "If the field contains
    // an array of documents, you can use the $all with the $elemMatch
    // operator." Example: qty: { $all: [ { "$elemMatch" : { size: "M", num:
    // { $gt: 50} } }, { "$elemMatch" : { num : 100, color: "green" } } ] }
    // returns the "efg" and "ijk" documents.
    assert_eq!(
        fx.ids(json!({"qty": {"$all": [
            {"$elemMatch": {"size": "M", "num": {"$gt": 50}}},
            {"$elemMatch": {"num": 100, "color": "green"}}
        ]}})),
        [3, 4]
    );
    assert_eq!(
        fx.ids(json!({"qty": {"$all": [{"$elemMatch": {"color": "brown"}}]}})),
        [2]
    );
}

fn all_with_an_empty_list_matches_nothing() {
    let fx = all_fixture();
    // MongoDB's server parses {$all: []} as "always false" (documented
    // behaviour, see MongoDB JIRA SERVER-99098 "$all with empty operand never
    // matches any documents").
    assert_eq!(fx.ids(json!({"tags": {"$all": []}})), Vec::<i64>::new());
    assert_eq!(fx.ids(json!({"missing": {"$all": []}})), Vec::<i64>::new());
}

// ---------------------------------------------------------------------------
// $elemMatch
// ---------------------------------------------------------------------------

fn elem_match_value_form() {
    // MongoDB manual, $elemMatch (query): "The $elemMatch operator matches
    // documents that contain an array field with at least one element that
    // matches all the specified query criteria." Example: results: [82, 85, 88]
    // and [75, 88, 89]; { results: { $elemMatch: { $gte: 80, $lt: 85 } } }
    // returns only _id 1 "because the element 82 is both greater than or equal
    // to 80 and is less than 85".
    let fx = fixture(vec![
        json!({"_id": 1, "results": [82, 85, 88]}),
        json!({"_id": 2, "results": [75, 88, 89]}),
        json!({"_id": 3, "results": 82}),
        json!({"_id": 4, "results": [82, 82]}),
        json!({"_id": 5}),
        json!({"_id": 6, "results": []}),
    ]);
    assert_eq!(
        fx.ids(json!({"results": {"$elemMatch": {"$gte": 80, "$lt": 85}}})),
        [1, 4]
    );
    // Without $elemMatch different elements may satisfy different conditions
    // (75 < 85 and 88 >= 80), and a scalar field is matched directly.
    assert_eq!(
        fx.ids(json!({"results": {"$gte": 80, "$lt": 85}})),
        [1, 2, 3, 4]
    );
    // $elemMatch never matches a non-array field (3), a missing field (5) or
    // an empty array (6).
    assert_eq!(
        fx.ids(json!({"results": {"$elemMatch": {"$eq": 82}}})),
        [1, 4]
    );
    // $ne inside $elemMatch: some element differs from 82.
    assert_eq!(
        fx.ids(json!({"results": {"$elemMatch": {"$ne": 82}}})),
        [1, 2]
    );
    assert_eq!(fx.ids(json!({"results": {"$ne": 82}})), [2, 5, 6]);
    assert_eq!(
        fx.ids(json!({"results": {"$elemMatch": {"$in": [75, 89]}}})),
        [2]
    );
    assert_eq!(
        fx.ids(json!({"results": {"$elemMatch": {"$not": {"$gte": 80}}}})),
        [2]
    );
    assert_eq!(
        fx.ids(json!({"results": {"$elemMatch": {"$exists": true}}})),
        [1, 2, 4]
    );
    let nested = fixture(vec![
        json!({"_id": 1, "a": [[1, 2], 3]}),
        json!({"_id": 2, "a": [1, 2]}),
    ]);
    assert_eq!(
        nested.ids(json!({"a": {"$elemMatch": {"$type": "array"}}})),
        [1]
    );
    assert_eq!(
        nested.ids(json!({"a": {"$elemMatch": {"$eq": [1, 2]}}})),
        [1]
    );
}

fn survey_fixture() -> Fx {
    // The survey collection of the MongoDB manual's $elemMatch page, plus a
    // document whose results field is not an array.
    fixture(vec![
        json!({"_id": 1, "results": [{"product": "abc", "score": 10}, {"product": "xyz", "score": 5}]}),
        json!({"_id": 2, "results": [{"product": "abc", "score": 8}, {"product": "xyz", "score": 7}]}),
        json!({"_id": 3, "results": [{"product": "abc", "score": 7}, {"product": "xyz", "score": 8}]}),
        json!({"_id": 4, "results": [{"product": "abc", "score": 7}, {"product": "def", "score": 8}]}),
        json!({"_id": 5, "results": {"product": "xyz", "score": 9}}),
    ])
}

fn elem_match_document_form() {
    let fx = survey_fixture();
    // MongoDB manual, $elemMatch (query): "The following query matches only
    // those documents where the results array contains at least one element
    // with both product equal to "xyz" and score greater than or equal to 8."
    assert_eq!(
        fx.ids(json!({"results": {"$elemMatch": {"product": "xyz", "score": {"$gte": 8}}}})),
        [3]
    );
    // MongoDB manual, Query an Array of Embedded Documents: "If the compound
    // query conditions on an array of embedded documents do not use the
    // $elemMatch operator, the query selects those documents whose array
    // contains any combination of elements that satisfies the conditions."
    assert_eq!(
        fx.ids(json!({"results.product": "xyz", "results.score": {"$gte": 8}})),
        [1, 2, 3, 5]
    );
    // Logical operators inside the document form.
    assert_eq!(
        fx.ids(json!({"results": {"$elemMatch": {"$or": [{"product": "def"}, {"score": {"$gte": 10}}]}}})),
        [1, 4]
    );
}

fn elem_match_single_condition_and_ne() {
    let fx = survey_fixture();
    // MongoDB manual, $elemMatch (query), Single Query Condition:
    // { results: { $elemMatch: { product: "xyz" } } } and
    // { "results.product": "xyz" } return the same documents for arrays
    // (document 5 is not an array, so only the dotted form matches it).
    assert_eq!(
        fx.ids(json!({"results": {"$elemMatch": {"product": "xyz"}}})),
        [1, 2, 3]
    );
    assert_eq!(fx.ids(json!({"results.product": "xyz"})), [1, 2, 3, 5]);
    // "...and are not using the $not or $ne operators inside of $elemMatch":
    // { results: { $elemMatch: { product: { $ne: "xyz" } } } } matches
    // documents with some element whose product is not "xyz", whereas
    // { "results.product": { $ne: "xyz" } } matches documents with no element
    // whose product is "xyz".
    assert_eq!(
        fx.ids(json!({"results": {"$elemMatch": {"product": {"$ne": "xyz"}}}})),
        [1, 2, 3, 4]
    );
    assert_eq!(fx.ids(json!({"results.product": {"$ne": "xyz"}})), [4]);
}

// ---------------------------------------------------------------------------
// $size
// ---------------------------------------------------------------------------

fn size_matches_arrays_of_exactly_n_elements() {
    let fx = fixture(vec![
        json!({"_id": 1, "a": []}),
        json!({"_id": 2, "a": [1]}),
        json!({"_id": 3, "a": [1, 2]}),
        json!({"_id": 4, "a": "ab"}),
        json!({"_id": 5, "a": {"x": 1, "y": 2}}),
        json!({"_id": 6}),
        json!({"_id": 7, "a": [[1, 2]]}),
        json!({"_id": 8, "b": [{"c": [1]}, {"c": [1, 2]}]}),
    ]);
    // MongoDB manual, $size: "The $size operator matches any array with the
    // number of elements specified by the argument."
    assert_eq!(fx.ids(json!({"a": {"$size": 0}})), [1]);
    assert_eq!(fx.ids(json!({"a": {"$size": 1}})), [2, 7]);
    assert_eq!(fx.ids(json!({"a": {"$size": 2}})), [3]);
    assert_eq!(fx.ids(json!({"a": {"$size": 2.0}})), [3]);
    assert_eq!(fx.ids(json!({"a": {"$size": 3}})), Vec::<i64>::new());
    assert_eq!(fx.ids(json!({"b.c": {"$size": 2}})), [8]);
    assert_eq!(
        fx.ids(json!({"a": {"$not": {"$size": 1}}})),
        [1, 3, 4, 5, 6, 8]
    );
}

// ---------------------------------------------------------------------------
// $regex
// ---------------------------------------------------------------------------

fn regex_fixture() -> Fx {
    fixture(vec![
        json!({"_id": 1, "s": "apple"}),
        json!({"_id": 2, "s": "Apple pie"}),
        json!({"_id": 3, "s": "banana\napple"}),
        json!({"_id": 4, "s": "line1\nline2"}),
        json!({"_id": 5, "s": 123}),
        json!({"_id": 6, "s": ["grape", "Apricot"]}),
        json!({"_id": 7}),
    ])
}

fn regex_basic_matching_is_unanchored_and_only_on_strings() {
    let fx = regex_fixture();
    // MongoDB manual, $regex: "Provides regular expression capabilities for
    // pattern matching strings in queries."
    assert_eq!(fx.ids(json!({"s": {"$regex": "^a"}})), [1]);
    assert_eq!(fx.ids(json!({"s": {"$regex": "nan"}})), [3]);
    assert_eq!(fx.ids(json!({"s": {"$regex": "pp"}})), [1, 2, 3]);
    // Numbers are not strings.
    assert_eq!(fx.ids(json!({"s": {"$regex": "1"}})), [4]);
    // Arrays match through their elements.
    assert_eq!(fx.ids(json!({"s": {"$regex": "^gr"}})), [6]);
    // A regular expression value ({field: /pattern/}) written as Extended JSON.
    assert_eq!(
        fx.ids(json!({"s": {"$regularExpression": {"pattern": "^ban", "options": ""}}})),
        [3]
    );
    assert_eq!(
        fx.ids(json!({"s": {"$regularExpression": {"pattern": "^ap", "options": "i"}}})),
        [1, 2, 6]
    );
}

fn regex_options() {
    let fx = regex_fixture();
    // MongoDB manual, $regex, $options:
    // i: "Case insensitivity to match upper and lower cases."
    assert_eq!(
        fx.ids(json!({"s": {"$regex": "^a", "$options": "i"}})),
        [1, 2, 6]
    );
    // m: "For patterns that include anchors (i.e. ^ for the start, $ for the
    // end), match at the beginning or end of each line for strings with
    // multiline values. Without this option, these anchors match at beginning
    // or end of the string."
    assert_eq!(fx.ids(json!({"s": {"$regex": "^apple"}})), [1]);
    assert_eq!(
        fx.ids(json!({"s": {"$regex": "^apple", "$options": "m"}})),
        [1, 3]
    );
    assert_eq!(
        fx.ids(json!({"s": {"$regex": "line1$"}})),
        Vec::<i64>::new()
    );
    assert_eq!(
        fx.ids(json!({"s": {"$regex": "line1$", "$options": "m"}})),
        [4]
    );
    // s: "Allows the dot character (i.e. .) to match all characters including
    // newline characters."
    assert_eq!(
        fx.ids(json!({"s": {"$regex": "line1.line2"}})),
        Vec::<i64>::new()
    );
    assert_eq!(
        fx.ids(json!({"s": {"$regex": "line1.line2", "$options": "s"}})),
        [4]
    );
    // x: "“Extended” capability to ignore all white space characters in the
    // $regex pattern unless escaped or included in a character class."
    assert_eq!(
        fx.ids(json!({"s": {"$regex": "a p p l e"}})),
        Vec::<i64>::new()
    );
    assert_eq!(
        fx.ids(json!({"s": {"$regex": "a p p l e", "$options": "x"}})),
        [1, 3]
    );
    // Options combine.
    assert_eq!(
        fx.ids(json!({"s": {"$regex": "^APPLE$", "$options": "im"}})),
        [1, 3]
    );
    // $options may come before $regex.
    assert_eq!(
        fx.ids(json!({"s": {"$options": "i", "$regex": "^apple"}})),
        [1, 2]
    );
}

fn not_with_a_regular_expression() {
    let fx = regex_fixture();
    // MongoDB manual, $not: "$not operator can perform logical NOT operation
    // on: regular expression objects (i.e. /pattern/)" ... and on "$regex
    // operator expression". The negation includes non-strings and missing fields.
    assert_eq!(
        fx.ids(json!({"s": {"$not": {"$regularExpression": {"pattern": "^a", "options": "i"}}}})),
        [3, 4, 5, 7]
    );
    assert_eq!(
        fx.ids(json!({"s": {"$not": {"$regex": "^a", "$options": "i"}}})),
        [3, 4, 5, 7]
    );
}

// ---------------------------------------------------------------------------
// $mod
// ---------------------------------------------------------------------------

fn mod_fixture() -> Fx {
    fixture(vec![
        json!({"_id": 1, "qty": 0}),
        json!({"_id": 2, "qty": 5}),
        json!({"_id": 3, "qty": 12}),
        json!({"_id": 4, "qty": -5}),
        json!({"_id": 5, "qty": -12}),
        json!({"_id": 6, "qty": 12.9}),
        json!({"_id": 7, "qty": -4.5}),
        json!({"_id": 8, "qty": "12"}),
        json!({"_id": 9}),
        json!({"_id": 10, "qty": [7, 8]}),
        json!({"_id": 11, "qty": 6_000_000_001_i64}),
    ])
}

fn mod_selects_by_remainder() {
    let fx = mod_fixture();
    // MongoDB manual, $mod: "Select documents where the value of a field
    // divided by a divisor has the specified remainder". The manual's example:
    // qty 0, 5, 12 with { qty: { $mod: [ 4, 0 ] } } returns qty 0 and 12.
    // Doubles in the field are truncated (12.9 -> 12, -4.5 -> -4); strings and
    // missing fields never match; arrays match through their elements.
    assert_eq!(
        fx.ids(json!({"qty": {"$mod": [4, 0]}})),
        [1, 3, 5, 6, 7, 10]
    );
    assert_eq!(fx.ids(json!({"qty": {"$mod": [4, 1]}})), [2, 11]);
    assert_eq!(fx.ids(json!({"qty": {"$mod": [4, 3]}})), [10]);
    assert_eq!(fx.ids(json!({"qty": {"$mod": [1_000_000_000, 1]}})), [11]);
}

fn mod_with_negative_numbers() {
    let fx = mod_fixture();
    // MongoDB manual, $mod: "When the dividend is negative, the remainder is
    // also negative." (-5 % 4 == -1, -5 % -4 == -1, 5 % -4 == 1, as in JavaScript.)
    assert_eq!(fx.ids(json!({"qty": {"$mod": [4, -1]}})), [4]);
    assert_eq!(fx.ids(json!({"qty": {"$mod": [-4, -1]}})), [4]);
    assert_eq!(fx.ids(json!({"qty": {"$mod": [-4, 1]}})), [2, 11]);
    assert_eq!(fx.ids(json!({"qty": {"$mod": [4, 3]}})), [10]);
    assert_eq!(fx.ids(json!({"qty": {"$mod": [5, -2]}})), [5]);
}

fn mod_truncates_decimal_arguments() {
    let fx = mod_fixture();
    // MongoDB manual, $mod, Floating Point Arguments: "The $mod expression
    // rounds decimal input towards zero." Its examples { $mod: [ 4.0, 0 ] },
    // { $mod: [ 4.5, 0 ] } and { $mod: [ 4.99, 0 ] } all return the same
    // documents as { $mod: [ 4, 0 ] }.
    let expected = fx.ids(json!({"qty": {"$mod": [4, 0]}}));
    assert_eq!(expected, [1, 3, 5, 6, 7, 10]);
    for divisor in [json!(4.0), json!(4.5), json!(4.99)] {
        assert_eq!(
            fx.ids(json!({"qty": {"$mod": [divisor.clone(), 0]}})),
            expected,
            "divisor {divisor}"
        );
    }
    assert_eq!(fx.ids(json!({"qty": {"$mod": [4, 1.7]}})), [2, 11]);
    assert_eq!(fx.ids(json!({"qty": {"$mod": [-4.9, -1.2]}})), [4]);
}

// ---------------------------------------------------------------------------
// Bitwise operators
// ---------------------------------------------------------------------------

fn bits_fixture() -> Fx {
    // The collection of the MongoDB manual's bitwise pages (a: 54, 20, 20.0 and
    // BinData(0, "Zg==")), plus a negative number, a non-integral double, a
    // string and a missing field.
    fixture(vec![
        json!({"_id": 1, "a": 54}),
        json!({"_id": 2, "a": 20}),
        json!({"_id": 3, "a": 20.0}),
        json!({"_id": 4, "a": {"$binary": {"base64": "Zg==", "subType": "00"}}}),
        json!({"_id": 5, "a": -5}),
        json!({"_id": 6, "a": 1.5}),
        json!({"_id": 7, "a": "x"}),
        json!({"_id": 8}),
    ])
}

fn bits_all_set() {
    let fx = bits_fixture();
    // MongoDB manual, $bitsAllSet: "$bitsAllSet matches documents where all of
    // the bit positions given by the query are set (i.e. 1) in field."
    // Manual examples: [1, 5] -> _id 1 and 4; bitmask 50 -> _id 1.
    // -5 is ...11111011 in two's complement: every bit but bit 2 is set.
    assert_eq!(fx.ids(json!({"a": {"$bitsAllSet": [1, 5]}})), [1, 4, 5]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAllSet": 50}})), [1, 5]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAllSet": [2, 4]}})), [1, 2, 3]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAllSet": [0, 1, 3, 63]}})), [5]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAllSet": [63]}})), [5]);
    // An empty mask is trivially satisfied by every numeric or BinData value
    // that can be tested ("The field value must be either numeric or a BinData
    // instance. Otherwise, $bitsAllSet will not match the current document.")
    assert_eq!(fx.ids(json!({"a": {"$bitsAllSet": []}})), [1, 2, 3, 4, 5]);
}

fn bits_any_set() {
    let fx = bits_fixture();
    // MongoDB manual, $bitsAnySet: "$bitsAnySet matches documents where any of
    // the bit positions given by the query are set (i.e. 1) in field."
    // Manual examples: [1, 5] -> _id 1 and 4; bitmask 35 -> _id 1 and 4.
    assert_eq!(fx.ids(json!({"a": {"$bitsAnySet": [1, 5]}})), [1, 4, 5]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAnySet": 35}})), [1, 4, 5]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAnySet": [2]}})), [1, 2, 3, 4]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAnySet": [62]}})), [5]);
}

fn bits_all_clear() {
    let fx = bits_fixture();
    // MongoDB manual, $bitsAllClear: "$bitsAllClear matches documents where all
    // of the bit positions given by the query are clear (i.e. 0) in field."
    // Manual examples: [1, 5] -> _id 2 and 3; bitmask 35 -> _id 2 and 3.
    assert_eq!(fx.ids(json!({"a": {"$bitsAllClear": [1, 5]}})), [2, 3]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAllClear": 35}})), [2, 3]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAllClear": [2]}})), [5]);
    // Positive numbers have their high bits clear; BinData is zero-extended.
    assert_eq!(fx.ids(json!({"a": {"$bitsAllClear": [63]}})), [1, 2, 3, 4]);
}

fn bits_any_clear() {
    let fx = bits_fixture();
    // MongoDB manual, $bitsAnyClear: "$bitsAnyClear matches documents where any
    // of the bit positions given by the query are clear (i.e. 0) in field."
    // Manual examples: [1, 5] -> _id 2 and 3; bitmask 35 -> _id 1, 2, 3 and 4.
    assert_eq!(fx.ids(json!({"a": {"$bitsAnyClear": [1, 5]}})), [2, 3]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAnyClear": 35}})), [1, 2, 3, 4]);
    assert_eq!(
        fx.ids(json!({"a": {"$bitsAnyClear": [0, 2]}})),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        fx.ids(json!({"a": {"$bitsAnyClear": [0, 1]}})),
        [1, 2, 3, 4]
    );
}

fn bits_never_match_fractional_doubles_strings_or_missing_fields() {
    let fx = bits_fixture();
    // MongoDB manual, $bitsAllSet, Floating Point Values: "$bitsAllSet will not
    // match numerical values that cannot be represented as a signed 64-bit
    // integer. This can be the case if a value is either too large or too
    // small to fit in a signed 64-bit integer, or if it has a fractional
    // component."
    for op in [
        "$bitsAllSet",
        "$bitsAnySet",
        "$bitsAllClear",
        "$bitsAnyClear",
    ] {
        for mask in [json!(0), json!(1), json!(7), json!([0]), json!([3, 40])] {
            let ids = fx.ids(json!({"a": {op: mask.clone()}}));
            for never in [6, 7, 8] {
                assert!(!ids.contains(&never), "{op} {mask}: matched _id {never}");
            }
        }
    }
}

fn bits_positions_beyond_63_are_sign_extended() {
    let fx = bits_fixture();
    // MongoDB manual, $bitsAllSet, Sign Extension: "Numbers are sign extended.
    // For example, $bitsAllSet considers bit position 200 to be set for the
    // negative number -5, but bit position 200 to be clear for the positive
    // number +5." ... "In contrast, BinData instances are zero-extended."
    // Position lists only require that "each <position> must be a
    // non-negative integer".
    assert_eq!(fx.ids(json!({"a": {"$bitsAllSet": [200]}})), [5]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAllClear": [200]}})), [1, 2, 3, 4]);
    assert_eq!(fx.ids(json!({"a": {"$bitsAnySet": [1, 64]}})), [1, 4, 5]);
}

// ---------------------------------------------------------------------------
// Dotted paths, array indexes and the implicit array rule
// ---------------------------------------------------------------------------

fn path_fixture() -> Fx {
    fixture(vec![
        json!({"_id": 1, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}],
               "tags": ["x", "y"], "meta": {"info": {"level": 3}}}),
        json!({"_id": 2, "items": [{"sku": "b", "qty": 2}], "tags": ["y", "x"],
               "meta": {"info": {"level": 4}}}),
        json!({"_id": 3, "items": {"sku": "a", "qty": 9}, "tags": "x", "meta": {"0": "zero"}}),
        json!({"_id": 4, "items": [], "tags": []}),
        json!({"_id": 5, "items": [{"sku": "c"}, {"qty": 1}]}),
        json!({"_id": 6, "grid": [[1, 2], [3, 4]]}),
    ])
}

fn dotted_paths_through_embedded_documents_and_arrays_of_documents() {
    let fx = path_fixture();
    // MongoDB manual, Query an Array of Embedded Documents: "If you do not know
    // the index position of the document nested in the array, concatenate the
    // name of the array field, with a dot (.) and the name of the field in the
    // nested document."
    assert_eq!(fx.ids(json!({"items.sku": "a"})), [1, 3]);
    assert_eq!(fx.ids(json!({"items.sku": "b"})), [1, 2]);
    assert_eq!(fx.ids(json!({"items.qty": {"$gt": 4}})), [1, 3]);
    assert_eq!(fx.ids(json!({"items.sku": {"$in": ["c", "z"]}})), [5]);
    // MongoDB manual, Query on Embedded/Nested Documents: "To specify a query
    // condition on fields in an embedded/nested document, use dot notation".
    assert_eq!(fx.ids(json!({"meta.info.level": {"$gte": 4}})), [2]);
    assert_eq!(fx.ids(json!({"meta.info.level": 3})), [1]);
    // Different elements may satisfy the two conditions without $elemMatch.
    assert_eq!(fx.ids(json!({"items.sku": "c", "items.qty": 1})), [5]);
    assert_eq!(
        fx.ids(json!({"items": {"$elemMatch": {"sku": "c", "qty": 1}}})),
        Vec::<i64>::new()
    );
}

fn numeric_path_parts_index_arrays() {
    let fx = path_fixture();
    // MongoDB manual, Query an Array: "Using dot notation, you can specify query
    // conditions for an element at a particular index or position of the
    // array. The array uses zero-based indexing."
    assert_eq!(fx.ids(json!({"tags.0": "x"})), [1]);
    assert_eq!(fx.ids(json!({"tags.1": "x"})), [2]);
    assert_eq!(fx.ids(json!({"tags.2": "x"})), Vec::<i64>::new());
    // MongoDB manual, Query an Array of Embedded Documents: "Using dot notation,
    // you can specify query conditions for field in a document at a particular
    // index or position of the array."
    assert_eq!(fx.ids(json!({"items.0.sku": "b"})), [2]);
    assert_eq!(fx.ids(json!({"items.1.qty": {"$lte": 5}})), [1, 5]);
    assert_eq!(fx.ids(json!({"grid.1.0": 3})), [6]);
    assert_eq!(fx.ids(json!({"grid.0": [1, 2]})), [6]);
    // A numeric part on an embedded document is an ordinary field name.
    assert_eq!(fx.ids(json!({"meta.0": "zero"})), [3]);
    // An index past the end is a missing field, which equals null.
    assert_eq!(
        fx.ids(json!({"tags.5": {"$exists": true}})),
        Vec::<i64>::new()
    );
}

fn scalar_conditions_match_any_array_element() {
    let fx = path_fixture();
    // MongoDB manual, Query an Array: "To query if the array field contains at
    // least one element with the specified value, use the filter
    // { <field>: <value> } where <value> is the element value." and "To specify
    // conditions on the elements in the array field, use query operators".
    assert_eq!(fx.ids(json!({"tags": "x"})), [1, 2, 3]);
    assert_eq!(fx.ids(json!({"tags": {"$gte": "y"}})), [1, 2]);
    assert_eq!(fx.ids(json!({"tags": ["x", "y"]})), [1]);
    assert_eq!(fx.ids(json!({"tags": []})), [4]);
    assert_eq!(fx.ids(json!({"grid": [3, 4]})), [6]);
    assert_eq!(fx.ids(json!({"grid": 3})), Vec::<i64>::new());
}

fn null_on_dotted_paths_through_arrays_of_documents() {
    let fx = fixture(vec![
        json!({"_id": 1, "a": [{"b": 1}, {"b": 2}]}),
        json!({"_id": 2, "a": [{"b": 1}, {"c": 2}]}),
        json!({"_id": 3, "a": [{"b": null}]}),
        json!({"_id": 4, "a": {"b": 1}}),
        json!({"_id": 5, "a": {"c": 1}}),
        json!({"_id": 6}),
    ]);
    // MongoDB manual, Query for Null or Missing Fields: { item : null } matches
    // documents where the field "is null or ... do not contain" it. Along
    // "a.b", an element of `a` without `b` is such a missing value.
    assert_eq!(fx.ids(json!({"a.b": null})), [2, 3, 5, 6]);
    assert_eq!(fx.ids(json!({"a.b": {"$ne": null}})), [1, 4]);
    assert_eq!(fx.ids(json!({"a.b": {"$exists": false}})), [5, 6]);
    assert_eq!(fx.ids(json!({"a.b": 1})), [1, 2, 4]);
    assert_eq!(fx.ids(json!({"a.b": {"$type": "null"}})), [3]);
}

// ---------------------------------------------------------------------------
// Sort, skip, limit
// ---------------------------------------------------------------------------

fn sort_multiple_keys_ascending_and_descending() {
    let fx = fixture(vec![
        json!({"_id": 1, "a": 1, "b": "x"}),
        json!({"_id": 2, "a": 2, "b": "y"}),
        json!({"_id": 3, "a": 1, "b": "z"}),
        json!({"_id": 4, "a": 2, "b": "w"}),
        json!({"_id": 5, "a": 1.5, "b": "x"}),
    ]);
    // MongoDB manual, cursor.sort(): "Specifies the order in which the query
    // returns matching documents." with 1 ascending and -1 descending, the
    // first field being the most significant.
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"a": 1, "b": -1})),
        [3, 1, 5, 2, 4]
    );
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"a": -1, "b": 1})),
        [4, 2, 5, 1, 3]
    );
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"b": 1, "a": -1})),
        [4, 5, 1, 2, 3]
    );
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"_id": -1})),
        [5, 4, 3, 2, 1]
    );
    assert_eq!(
        fx.sorted_ids(json!({"a": {"$lt": 2}}), json!({"b": -1, "_id": -1})),
        [3, 5, 1]
    );
    // Without a sort, results come in _id order.
    let unsorted: Vec<i64> = fx
        .c()
        .find(json!({}))
        .to_vec()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(unsorted, [1, 2, 3, 4, 5]);
}

fn sort_arrays_missing_null_and_empty_arrays() {
    let fx = fixture(vec![
        json!({"_id": 1, "a": [1, 10]}),
        json!({"_id": 2, "a": 5}),
        json!({"_id": 3, "a": [3, 4]}),
        json!({"_id": 4, "a": null}),
        json!({"_id": 5}),
        json!({"_id": 6, "a": []}),
        json!({"_id": 7, "a": [2]}),
    ]);
    // MongoDB manual, Comparison/Sort Order (Arrays): "With arrays, a less-than
    // comparison or an ascending sort compares the smallest elements of the
    // array, and a greater-than comparison or a descending sort compares the
    // largest elements of the arrays." ... "A comparison of an empty array
    // (e.g. [ ]) treats the empty array as less than a null value or a missing
    // field value."
    // (Non-existent Fields): "The comparison treats a non-existent field as if
    // it were an empty BSON Object. As such, a sort on the a field in documents
    // { } and { a: null } would treat the documents as equivalent in sort order."
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"a": 1, "_id": 1})),
        [6, 4, 5, 1, 7, 3, 2]
    );
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"a": -1, "_id": 1})),
        [1, 2, 3, 7, 4, 5, 6]
    );
    // null and missing are equivalent: the tie is broken by the next key.
    assert_eq!(
        fx.sorted_ids(json!({"a": null}), json!({"a": 1, "_id": -1})),
        [5, 4]
    );
}

fn sort_across_types_follows_the_bson_comparison_order() {
    let fx = fixture(vec![
        json!({"_id": 1, "a": true}),
        json!({"_id": 2, "a": "b"}),
        json!({"_id": 3, "a": {"x": 1}}),
        // An array sorts by its elements: this one's only element is an array.
        json!({"_id": 4, "a": [[1]]}),
        json!({"_id": 5, "a": null}),
        json!({"_id": 6, "a": 2.5}),
        json!({"_id": 7, "a": {"$oid": "507f1f77bcf86cd799439011"}}),
        json!({"_id": 8, "a": {"$date": "2024-01-01T00:00:00Z"}}),
        json!({"_id": 9, "a": {"$binary": {"base64": "AQ==", "subType": "00"}}}),
        json!({"_id": 10, "a": -3}),
        json!({"_id": 11, "a": "a"}),
        json!({"_id": 12, "a": {"$timestamp": {"t": 1, "i": 1}}}),
        json!({"_id": 13, "a": {"$regularExpression": {"pattern": "x", "options": ""}}}),
        json!({"_id": 14, "a": {"$minKey": 1}}),
        json!({"_id": 15, "a": {"$maxKey": 1}}),
        json!({"_id": 16, "a": 3_000_000_000_i64}),
    ]);
    // MongoDB manual, Comparison/Sort Order: "When comparing values of
    // different BSON types in sort operations, MongoDB uses the following
    // comparison order, from lowest to highest: MinKey (internal type), Null,
    // Numbers (ints, longs, doubles, decimals), Symbol, String, Object, Array,
    // BinData, ObjectId, Boolean, Date, Timestamp, Regular Expression, ...,
    // MaxKey (internal type)".
    let ascending = [14, 5, 10, 6, 16, 11, 2, 3, 4, 9, 7, 1, 8, 12, 13, 15];
    assert_eq!(fx.sorted_ids(json!({}), json!({"a": 1})), ascending);
    let mut descending = ascending;
    descending.reverse();
    assert_eq!(fx.sorted_ids(json!({}), json!({"a": -1})), descending);
}

fn sort_by_dotted_path_over_arrays_of_documents() {
    let fx = fixture(vec![
        json!({"_id": 1, "items": [{"qty": 5}, {"qty": 1}]}),
        json!({"_id": 2, "items": [{"qty": 3}]}),
        json!({"_id": 3, "items": [{"qty": 2}, {"qty": 9}]}),
        json!({"_id": 4, "items": {"qty": 4}}),
    ]);
    // Ascending uses the smallest value reached, descending the largest.
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"items.qty": 1})),
        [1, 3, 2, 4]
    );
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"items.qty": -1})),
        [3, 1, 4, 2]
    );
}

fn skip_and_limit() {
    let docs: Vec<Value> = (1..=10).map(|i| json!({"_id": i, "n": 100 - i})).collect();
    let fx = fixture(docs);
    let run = |skip: u64, limit: u64| -> Vec<i64> {
        fx.c()
            .find(json!({}))
            .sort(json!({"n": 1}))
            .skip(skip)
            .limit(limit)
            .to_vec()
            .unwrap()
            .iter()
            .map(id_of)
            .collect()
    };
    // Sort happens before skip and limit.
    assert_eq!(run(2, 3), [8, 7, 6]);
    assert_eq!(run(0, 1), [10]);
    assert_eq!(run(9, 5), [1]);
    assert_eq!(run(10, 5), Vec::<i64>::new());
    // MongoDB manual, cursor.limit(): "A limit() value of 0 (i.e. .limit(0)) is
    // equivalent to setting no limit."
    assert_eq!(run(7, 0), [3, 2, 1]);
    assert_eq!(run(0, 0).len(), 10);
    // Unsorted, streaming through the iterator.
    let streamed: Vec<i64> = fx
        .c()
        .find(json!({"n": {"$lt": 97}}))
        .skip(1)
        .limit(3)
        .into_iter()
        .map(|r| id_of(&r.unwrap()))
        .collect();
    assert_eq!(streamed, [5, 6, 7]);
    // find_one returns the first match in _id order.
    let one = fx.c().find_one(json!({"n": {"$lt": 95}})).unwrap().unwrap();
    assert_eq!(one, json!({"_id": 6, "n": 94}));
    assert_eq!(fx.c().find_one(json!({"n": 1000})).unwrap(), None);
}

fn iterator_yields_the_same_documents_as_to_vec() {
    let docs: Vec<Value> = (1..=600)
        .map(|i| json!({"_id": i, "even": i % 2 == 0}))
        .collect();
    let fx = fixture(docs);
    let filter = json!({"even": true});
    let via_vec = fx.c().find(filter.clone()).to_vec().unwrap();
    let via_iter: Vec<Value> = fx
        .c()
        .find(filter)
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(via_vec.len(), 300);
    assert_eq!(via_iter, via_vec);
}

// ---------------------------------------------------------------------------
// Projection
// ---------------------------------------------------------------------------

fn projection_fixture() -> Fx {
    // After the inventory collection of the MongoDB manual's "Project Fields to
    // Return from Query".
    fixture(vec![
        json!({"_id": 1, "item": "journal", "status": "A",
               "size": {"h": 14, "w": 21, "uom": "cm"},
               "instock": [{"warehouse": "A", "qty": 5}]}),
        json!({"_id": 2, "item": "notebook", "status": "A",
               "size": {"h": 8.5, "w": 11, "uom": "in"},
               "instock": [{"warehouse": "C", "qty": 5}, {"warehouse": "A", "qty": 10}]}),
        json!({"_id": 3, "item": "paper", "status": "D"}),
    ])
}

fn inclusion_projection_keeps_id_unless_excluded() {
    let fx = projection_fixture();
    // MongoDB manual, Project Fields to Return from Query: "A projection can
    // explicitly include several fields by setting the <field> to 1 in the
    // projection document." ... "you do not need to explicitly specify the _id
    // field to return the field." ... "You can remove the _id field from the
    // results by setting it to 0 in the projection".
    assert_eq!(
        fx.projected(json!({"status": "A"}), json!({"item": 1, "status": 1})),
        [
            json!({"_id": 1, "item": "journal", "status": "A"}),
            json!({"_id": 2, "item": "notebook", "status": "A"}),
        ]
    );
    assert_eq!(
        fx.projected(
            json!({"status": "A"}),
            json!({"item": 1, "status": 1, "_id": 0})
        ),
        [
            json!({"item": "journal", "status": "A"}),
            json!({"item": "notebook", "status": "A"})
        ]
    );
    assert_eq!(
        fx.projected(json!({"_id": 1}), json!({"item": true, "_id": false})),
        [json!({"item": "journal"})]
    );
    // Fields keep the document's order, and missing fields are just absent.
    let out = fx.projected(
        json!({"_id": 3}),
        json!({"status": 1, "item": 1, "size": 1}),
    );
    assert_eq!(out, [json!({"_id": 3, "item": "paper", "status": "D"})]);
    let keys: Vec<&String> = out[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["_id", "item", "status"]);
}

fn projection_of_only_id_returns_only_id() {
    let fx = projection_fixture();
    // MongoDB manual, db.collection.findOne(): "If the projection argument is
    // specified, the returned document contains only the projection fields,
    // and the _id field if you do not explicitly exclude the _id field."
    // MongoDB manual, db.collection.find(), projection: "<field>: <1 or true>
    // Specifies the inclusion of a field." {_id: 1} is an inclusion projection
    // of _id alone.
    assert_eq!(
        fx.projected(json!({"_id": 3}), json!({"_id": 1})),
        [json!({"_id": 3})]
    );
    assert_eq!(
        fx.projected(json!({"status": "A"}), json!({"_id": true})),
        [json!({"_id": 1}), json!({"_id": 2})]
    );
}

fn exclusion_projection() {
    let fx = projection_fixture();
    // MongoDB manual, Project Fields to Return from Query: "Instead of listing
    // the fields to return in the matching document, you can use a projection
    // to exclude specific fields."
    assert_eq!(
        fx.projected(json!({"_id": 1}), json!({"status": 0, "instock": 0})),
        [json!({"_id": 1, "item": "journal", "size": {"h": 14, "w": 21, "uom": "cm"}})]
    );
    assert_eq!(
        fx.projected(json!({"_id": 3}), json!({"_id": 0})),
        [json!({"item": "paper", "status": "D"})]
    );
    assert_eq!(
        fx.projected(json!({"_id": 3}), json!({"status": false, "_id": 1})),
        [json!({"_id": 3, "item": "paper"})]
    );
    // An empty projection returns whole documents.
    assert_eq!(
        fx.projected(json!({"_id": 3}), json!({})),
        [json!({"_id": 3, "item": "paper", "status": "D"})]
    );
}

fn dotted_projection_paths() {
    let fx = projection_fixture();
    // MongoDB manual, Project Fields to Return from Query, "Return Specific
    // Fields in Embedded Documents": { item: 1, status: 1, "size.uom": 1 }.
    assert_eq!(
        fx.projected(
            json!({"_id": 1}),
            json!({"item": 1, "status": 1, "size.uom": 1})
        ),
        [json!({"_id": 1, "item": "journal", "status": "A", "size": {"uom": "cm"}})]
    );
    // "Suppress Specific Fields in Embedded Documents": { "size.uom": 0 }.
    assert_eq!(
        fx.projected(json!({"_id": 1}), json!({"size.uom": 0})),
        [
            json!({"_id": 1, "item": "journal", "status": "A", "size": {"h": 14, "w": 21},
                "instock": [{"warehouse": "A", "qty": 5}]})
        ]
    );
    // A dotted inclusion of a field the document lacks leaves it out.
    assert_eq!(
        fx.projected(json!({"_id": 3}), json!({"size.uom": 1})),
        [json!({"_id": 3})]
    );
}

fn projection_over_arrays_of_documents() {
    let fx = projection_fixture();
    // MongoDB manual, Project Fields to Return from Query, "Projection on
    // Embedded Documents in an Array": { item: 1, status: 1, "instock.qty": 1 }
    // returns instock as an array of documents holding only qty.
    assert_eq!(
        fx.projected(
            json!({"status": "A"}),
            json!({"item": 1, "status": 1, "instock.qty": 1})
        ),
        [
            json!({"_id": 1, "item": "journal", "status": "A", "instock": [{"qty": 5}]}),
            json!({"_id": 2, "item": "notebook", "status": "A", "instock": [{"qty": 5}, {"qty": 10}]}),
        ]
    );
    assert_eq!(
        fx.projected(
            json!({"_id": 2}),
            json!({"instock.qty": 0, "size": 0, "status": 0})
        ),
        [
            json!({"_id": 2, "item": "notebook", "instock": [{"warehouse": "C"}, {"warehouse": "A"}]})
        ]
    );
}

fn projection_errors() {
    let fx = projection_fixture();
    // MongoDB manual, Project Fields to Return from Query: "With the exception
    // of the _id field, you cannot combine inclusion and exclusion statements
    // in projection documents."
    let bad = [
        json!({"item": 1, "status": 0}),
        json!({"item": 0, "status": 1}),
        json!({"item": 1, "size.uom": 0}),
        json!({"_id": 0, "item": 1, "status": 0}),
        // Path collision: a document and one of its fields.
        json!({"size": 1, "size.uom": 1}),
        // Not an object.
        json!(["item"]),
    ];
    for p in bad {
        let shown = p.to_string();
        let err = fx.c().find(json!({})).projection(p).to_vec().unwrap_err();
        assert!(
            matches!(err, Error::InvalidProjection(_)),
            "{shown}: {err:?}"
        );
    }
    // The _id exception is allowed in both directions.
    assert!(fx
        .c()
        .find(json!({}))
        .projection(json!({"item": 1, "_id": 0}))
        .to_vec()
        .is_ok());
    assert!(fx
        .c()
        .find(json!({}))
        .projection(json!({"item": 0, "_id": 1}))
        .to_vec()
        .is_ok());
}

// ---------------------------------------------------------------------------
// count and distinct
// ---------------------------------------------------------------------------

fn count_fixture() -> Fx {
    fixture(vec![
        json!({"_id": 1, "a": [1, 2, 2], "b": "x", "items": [{"sku": "p"}, {"sku": "q"}]}),
        json!({"_id": 2, "a": 2, "b": "y", "items": [{"sku": "q"}]}),
        json!({"_id": 3, "a": [3, [1]], "b": "x", "items": {"sku": "r"}}),
        json!({"_id": 4, "b": "x"}),
        json!({"_id": 5, "a": null}),
    ])
}

fn count_matches_find() {
    let fx = count_fixture();
    assert_eq!(fx.c().count(json!({})).unwrap(), 5);
    assert_eq!(fx.c().count(json!({"b": "x"})).unwrap(), 3);
    assert_eq!(fx.c().count(json!({"a": 2})).unwrap(), 2);
    assert_eq!(fx.c().count(json!({"a": null})).unwrap(), 2);
    assert_eq!(fx.c().count(json!({"a": {"$gt": 100}})).unwrap(), 0);
    for f in [
        json!({"a": {"$size": 3}}),
        json!({"items.sku": "q"}),
        json!({"$or": [{"a": 3}, {"b": "y"}]}),
    ] {
        let n = fx.c().find(f.clone()).to_vec().unwrap().len() as u64;
        assert_eq!(fx.c().count(f.clone()).unwrap(), n, "{f}");
    }
}

fn distinct_counts_array_elements_individually() {
    let fx = count_fixture();
    // MongoDB manual, db.collection.distinct(): "If the value of the specified
    // field is an array, db.collection.distinct() considers each element of
    // the array as a separate value. For instance, if a field has as its value
    // [ 1, [1], 1 ], then db.collection.distinct() considers 1, [1], and 1 as
    // separate values."
    assert_eq!(
        fx.c().distinct("a", json!({})).unwrap(),
        [json!(null), json!(1), json!(2), json!(3), json!([1])]
    );
    assert_eq!(
        fx.c().distinct("a", json!({"b": "x"})).unwrap(),
        [json!(1), json!(2), json!(3), json!([1])]
    );
    assert_eq!(
        fx.c().distinct("b", json!({})).unwrap(),
        [json!("x"), json!("y")]
    );
    assert_eq!(
        fx.c().distinct("items.sku", json!({})).unwrap(),
        [json!("p"), json!("q"), json!("r")]
    );
    assert_eq!(
        fx.c().distinct("items.sku", json!({"a": 2})).unwrap(),
        [json!("p"), json!("q")]
    );
    assert_eq!(
        fx.c().distinct("nope", json!({})).unwrap(),
        Vec::<Value>::new()
    );
}

fn queries_on_a_collection_that_does_not_exist() {
    let fx = fixture(vec![]);
    let other = fx.db.collection("never_written");
    assert_eq!(
        other.find(json!({"a": 1})).to_vec().unwrap(),
        Vec::<Value>::new()
    );
    assert_eq!(other.count(json!({})).unwrap(), 0);
    assert_eq!(other.distinct("a", json!({})).unwrap(), Vec::<Value>::new());
    assert_eq!(other.find_one(json!({})).unwrap(), None);
    // Bad filters are still reported.
    assert!(matches!(
        other.count(json!({"a": {"$in": 3}})),
        Err(Error::InvalidFilter(_))
    ));
}

// ---------------------------------------------------------------------------
// Bad filters and sorts
// ---------------------------------------------------------------------------

fn bad_filters_return_invalid_filter() {
    let fx = inventory_fixture();
    let cases = [
        // Unknown operators.
        json!({"quantity": {"$foo": 1}}),
        json!({"$foo": [{"a": 1}]}),
        json!({"quantity": {"$gt": 1, "b": 2}}),
        // Operand types.
        json!({"tags": {"$size": "x"}}),
        json!({"tags": {"$size": -1}}),
        json!({"tags": {"$size": 1.5}}),
        json!({"tags": {"$in": 3}}),
        json!({"tags": {"$nin": "school"}}),
        json!({"tags": {"$all": "school"}}),
        json!({"tags": {"$elemMatch": 3}}),
        json!({"tags": {"$exists": "yes"}}),
        json!({"tags": {"$type": "nosuchtype"}}),
        json!({"tags": {"$type": 99}}),
        json!({"tags": {"$type": []}}),
        json!({"quantity": {"$not": 5}}),
        json!({"item": {"$options": "i"}}),
        // MongoDB manual, $mod: "The $mod operator returns an error if the
        // [ divisor, remainder ] array contains fewer or more than two elements."
        json!({"quantity": {"$mod": [0, 1]}}),
        json!({"quantity": {"$mod": [4]}}),
        json!({"quantity": {"$mod": []}}),
        json!({"quantity": {"$mod": [4, 1, 2]}}),
        json!({"quantity": {"$mod": ["4", 1]}}),
        json!({"quantity": {"$mod": 4}}),
        // MongoDB manual, $bitsAllSet: "The bitmask must be a non-negative
        // 64-bit signed integer. Otherwise, $bitsAllSet returns an error." and
        // "each <position> must be a non-negative integer".
        json!({"quantity": {"$bitsAllSet": -1}}),
        json!({"quantity": {"$bitsAnySet": [-1]}}),
        json!({"quantity": {"$bitsAllClear": 1.5}}),
        json!({"quantity": {"$bitsAnyClear": "x"}}),
        // Logical operators take a non-empty array of objects.
        json!({"$and": {"a": 1}}),
        json!({"$and": []}),
        json!({"$or": [1]}),
        json!({"$nor": "x"}),
        // Unsupported operators.
        json!({"$where": "this.a == 1"}),
        json!({"quantity": {"$where": "1"}}),
        json!({"$expr": {"$eq": ["$a", 1]}}),
        json!({"$text": {"$search": "x"}}),
        // Filters that are not objects.
        json!([{"a": 1}]),
        json!("a"),
        json!(5),
        json!(null),
        // Bad paths.
        json!({"a..b": 1}),
        json!({"": 1}),
        json!({"a.": 1}),
        // Bad Extended JSON.
        json!({"d": {"$date": "yesterday"}}),
    ];
    for f in cases {
        let shown = f.to_string();
        let e = fx.filter_error(f.clone());
        assert!(
            is_invalid_filter(&e),
            "{shown}: expected InvalidFilter, got {e:?}"
        );
        // Every entry point reports the same error.
        assert!(
            matches!(fx.c().count(f.clone()), Err(Error::InvalidFilter(_))),
            "count {shown}"
        );
        assert!(
            matches!(fx.c().find_one(f.clone()), Err(Error::InvalidFilter(_))),
            "find_one {shown}"
        );
        assert!(
            matches!(
                fx.c().distinct("item", f.clone()),
                Err(Error::InvalidFilter(_))
            ),
            "distinct {shown}"
        );
        let mut it = fx.c().find(f).into_iter();
        assert!(
            matches!(it.next(), Some(Err(Error::InvalidFilter(_)))),
            "iterator {shown}"
        );
        assert!(
            it.next().is_none(),
            "iterator {shown} continues after an error"
        );
    }
    // Nothing was changed or lost.
    assert_eq!(fx.c().count(json!({})).unwrap(), 4);
}

fn invalid_regular_expressions_return_invalid_regex() {
    let fx = regex_fixture();
    let cases = [
        json!({"s": {"$regex": "("}}),
        json!({"s": {"$regex": "[a-"}}),
        json!({"s": {"$regex": "a", "$options": "q"}}),
        json!({"s": {"$regularExpression": {"pattern": "(", "options": ""}}}),
        json!({"s": {"$in": [{"$regularExpression": {"pattern": "(", "options": ""}}]}}),
        json!({"s": {"$not": {"$regex": "("}}}),
    ];
    for f in cases {
        let shown = f.to_string();
        let e = fx.filter_error(f.clone());
        assert!(matches!(e, Error::InvalidRegex { .. }), "{shown}: {e:?}");
        assert!(
            matches!(fx.c().count(f), Err(Error::InvalidRegex { .. })),
            "count {shown}"
        );
    }
    match fx.filter_error(json!({"s": {"$regex": "(ab"}})) {
        Error::InvalidRegex { pattern, .. } => assert_eq!(pattern, "(ab"),
        other => panic!("expected InvalidRegex, got {other:?}"),
    }
    // A regex operand that is not a string is a filter error.
    let e = fx.filter_error(json!({"s": {"$regex": 5}}));
    assert!(is_invalid_filter(&e), "{e:?}");
}

fn bad_sorts_return_invalid_sort() {
    let fx = inventory_fixture();
    let cases = [
        json!({"quantity": 2}),
        json!({"quantity": 0}),
        json!({"quantity": "asc"}),
        json!({"quantity": null}),
        json!({"quantity": 1, "item": -2}),
        json!([["quantity", 1]]),
        json!("quantity"),
        json!({"": 1}),
    ];
    for s in cases {
        let shown = s.to_string();
        let err = fx.c().find(json!({})).sort(s.clone()).to_vec().unwrap_err();
        assert!(matches!(err, Error::InvalidSort(_)), "{shown}: {err:?}");
        let mut it = fx.c().find(json!({})).sort(s).into_iter();
        assert!(
            matches!(it.next(), Some(Err(Error::InvalidSort(_)))),
            "iterator {shown}"
        );
    }
    // 1.0 and -1.0 are accepted as directions.
    assert_eq!(
        fx.sorted_ids(json!({}), json!({"quantity": -1.0, "_id": 1.0})),
        [1, 2, 4, 3]
    );
}

// ---------------------------------------------------------------------------
// Random filters: typed errors, never a panic, count == find
// ---------------------------------------------------------------------------

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$type",
            "$size", "$all", "$elemMatch", "$regex", "$options", "$mod", "$bitsAllSet",
            "$bitsAnySet", "$bitsAllClear", "$bitsAnyClear", "$not", "$and", "$or", "$nor",
            "$where", "$regularExpression", "$date", "a", "a.b", "a.0", "b", "_id",
        ])
        .prop_map(String::from),
        1 => "[a-c]{1,2}(\\.[0-2a-c]{1,2})?",
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..70).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e3f64..1.0e3).prop_map(|f| json!(f)),
        "[a-c^$().*]{0,4}".prop_map(Value::from),
        prop::sample::select(vec!["int", "string", "array", "number", "imx"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((arb_key(), inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn arb_filter() -> impl Strategy<Value = Value> {
    prop::collection::vec((arb_key(), arb_value()), 0..3)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

fn random_filters_give_typed_errors_and_never_panic() {
    let fx = fixture(vec![
        json!({"_id": 1, "a": 1, "b": "x"}),
        json!({"_id": 2, "a": [1, 2, {"b": 3}], "b": null}),
        json!({"_id": 3, "a": {"b": [5, "s"]}}),
        json!({"_id": 4}),
        json!({"_id": 5, "a": -7.5, "b": [true, [1]]}),
    ]);
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&arb_filter(), |filter| {
            let found = fx.c().find(filter.clone()).to_vec();
            let counted = fx.c().count(filter.clone());
            match (found, counted) {
                (Ok(docs), Ok(n)) => prop_assert_eq!(docs.len() as u64, n, "filter {}", filter),
                (Err(e1), Err(e2)) => {
                    prop_assert!(
                        matches!(e1, Error::InvalidFilter(_) | Error::InvalidRegex { .. }),
                        "filter {} gave {:?}",
                        filter,
                        e1
                    );
                    prop_assert_eq!(e1.to_string(), e2.to_string());
                }
                (a, b) => {
                    return Err(TestCaseError::fail(format!(
                        "find and count disagree on {filter}: {a:?} vs {b:?}"
                    )))
                }
            }
            Ok(())
        })
        .unwrap();
}

crate::suite!(
    eq_scalar_matches_numbers_of_any_type_and_array_elements,
    eq_array_is_exact_array_or_element_equality,
    eq_embedded_document_is_field_order_sensitive,
    eq_null_matches_null_and_missing,
    ne_matches_missing_fields_and_excludes_arrays_containing_the_value,
    comparison_operators_on_numbers,
    number_ranges_never_match_other_types,
    comparisons_with_null,
    range_conditions_on_an_array_may_be_met_by_different_elements,
    array_operands_compare_whole_arrays,
    integers_and_doubles_compare_by_value,
    big_integers_beyond_2_pow_53_compare_exactly,
    in_matches_any_listed_value_and_array_elements,
    nin_matches_missing_fields_and_arrays_without_the_values,
    in_and_nin_accept_regular_expressions,
    and_or_nor,
    not_negates_the_operator_and_matches_missing_fields,
    exists_true_includes_null_values_and_false_means_absent,
    exists_on_dotted_paths,
    type_by_alias,
    type_array_matches_the_field_itself,
    type_by_number_and_by_list,
    all_requires_every_value,
    all_with_a_nested_array,
    all_with_elem_match,
    all_with_an_empty_list_matches_nothing,
    elem_match_value_form,
    elem_match_document_form,
    elem_match_single_condition_and_ne,
    size_matches_arrays_of_exactly_n_elements,
    regex_basic_matching_is_unanchored_and_only_on_strings,
    regex_options,
    not_with_a_regular_expression,
    mod_selects_by_remainder,
    mod_with_negative_numbers,
    mod_truncates_decimal_arguments,
    bits_all_set,
    bits_any_set,
    bits_all_clear,
    bits_any_clear,
    bits_never_match_fractional_doubles_strings_or_missing_fields,
    bits_positions_beyond_63_are_sign_extended,
    dotted_paths_through_embedded_documents_and_arrays_of_documents,
    numeric_path_parts_index_arrays,
    scalar_conditions_match_any_array_element,
    null_on_dotted_paths_through_arrays_of_documents,
    sort_multiple_keys_ascending_and_descending,
    sort_arrays_missing_null_and_empty_arrays,
    sort_across_types_follows_the_bson_comparison_order,
    sort_by_dotted_path_over_arrays_of_documents,
    skip_and_limit,
    iterator_yields_the_same_documents_as_to_vec,
    inclusion_projection_keeps_id_unless_excluded,
    projection_of_only_id_returns_only_id,
    exclusion_projection,
    dotted_projection_paths,
    projection_over_arrays_of_documents,
    projection_errors,
    count_matches_find,
    distinct_counts_array_elements_individually,
    queries_on_a_collection_that_does_not_exist,
    bad_filters_return_invalid_filter,
    invalid_regular_expressions_return_invalid_regex,
    bad_sorts_return_invalid_sort,
    random_filters_give_typed_errors_and_never_panic,
);
