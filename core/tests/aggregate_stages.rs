//! Aggregation stages and accumulators, checked against the examples of the
//! MongoDB manual (https://www.mongodb.com/docs/manual/reference/operator/aggregation-pipeline/).
//! Each case names the manual page and example it reproduces.
//!
//! Differences from the manual's printed output, all allowed by MongoDB's
//! documented semantics: documents come from the collection in primary-key
//! order (so `$push` lists and unsorted outputs follow `_id`), `$group` emits
//! groups in the order their first document arrived (MongoDB: unspecified, so
//! tests sort or compare as sets where the manual does), and `$avg`/`$divide`
//! results are doubles (`10.0`; the shell prints them as `10`).

use collection_store::{Database, Document, Error, IndexSpec};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

struct Fx {
    db: Database,
    _dir: tempfile::TempDir,
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    Fx {
        db: Database::open(dir.path()).unwrap(),
        _dir: dir,
    }
}

impl Fx {
    fn load(&self, name: &str, docs: Vec<Value>) {
        self.db.collection(name).unwrap().insert_many(docs).unwrap();
    }

    fn run(&self, name: &str, pipeline: Value) -> Vec<Value> {
        let shown = pipeline.to_string();
        self.db
            .collection(name)
            .unwrap()
            .aggregate(pipeline)
            .to_vec()
            .unwrap_or_else(|e| panic!("{shown}: {e}"))
    }

    fn error(&self, name: &str, pipeline: Value) -> Error {
        let shown = pipeline.to_string();
        match self
            .db
            .collection(name)
            .unwrap()
            .aggregate(pipeline)
            .to_vec()
        {
            Ok(out) => panic!("{shown} should fail, returned {out:?}"),
            Err(e) => e,
        }
    }
}

/// One collection "c" holding `docs`, run through `pipeline`.
fn run(docs: Vec<Value>, pipeline: Value) -> Vec<Value> {
    let f = fx();
    if !docs.is_empty() {
        f.load("c", docs);
    }
    f.run("c", pipeline)
}

fn date(s: &str) -> Value {
    json!({ "$date": s })
}

fn by_id(mut docs: Vec<Value>) -> Vec<Value> {
    docs.sort_by_key(|d| d["_id"].to_string());
    docs
}

fn ids(docs: &[Value]) -> Vec<Value> {
    docs.iter().map(|d| d["_id"].clone()).collect()
}

// ---------------------------------------------------------------------------
// $match
// ---------------------------------------------------------------------------

fn articles() -> Vec<Value> {
    vec![
        json!({"_id": {"$oid": "512bc95fe835e68f199c8686"}, "author": "dave", "score": 80, "views": 100}),
        json!({"_id": {"$oid": "512bc962e835e68f199c8687"}, "author": "dave", "score": 85, "views": 521}),
        json!({"_id": {"$oid": "55f5a192d4bede9ac365b257"}, "author": "ahn", "score": 60, "views": 1000}),
        json!({"_id": {"$oid": "55f5a192d4bede9ac365b258"}, "author": "li", "score": 55, "views": 5000}),
        json!({"_id": {"$oid": "55f5a1d3d4bede9ac365b259"}, "author": "annT", "score": 60, "views": 50}),
        json!({"_id": {"$oid": "55f5a1d3d4bede9ac365b25a"}, "author": "li", "score": 94, "views": 999}),
        json!({"_id": {"$oid": "55f5a1d3d4bede9ac365b25b"}, "author": "ty", "score": 95, "views": 1000}),
    ]
}

#[test]
fn match_equality_and_count() {
    // Manual, $match: "Equality Match".
    let out = run(articles(), json!([{"$match": {"author": "dave"}}]));
    assert_eq!(
        out,
        vec![
            json!({"_id": {"$oid": "512bc95fe835e68f199c8686"}, "author": "dave", "score": 80, "views": 100}),
            json!({"_id": {"$oid": "512bc962e835e68f199c8687"}, "author": "dave", "score": 85, "views": 521}),
        ]
    );
    // Manual, $match: "Perform a Count".
    let out = run(
        articles(),
        json!([
            {"$match": {"$or": [{"score": {"$gt": 70, "$lt": 90}}, {"views": {"$gte": 1000}}]}},
            {"$group": {"_id": null, "count": {"$sum": 1}}}
        ]),
    );
    assert_eq!(out, vec![json!({"_id": null, "count": 5})]);
    // Manual, $match: "Restrictions" — $expr compares fields of one document.
    let out = run(
        articles(),
        json!([{"$match": {"$expr": {"$gt": ["$views", {"$multiply": ["$score", 10]}]}}}, {"$count": "n"}]),
    );
    assert_eq!(out, vec![json!({"n": 4})]);
    // A $match after other stages filters their output.
    let out = run(
        articles(),
        json!([{"$group": {"_id": "$author", "total": {"$sum": "$views"}}}, {"$match": {"total": {"$gte": 1000}}}, {"$sort": {"_id": 1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "ahn", "total": 1000}),
            json!({"_id": "li", "total": 5999}),
            json!({"_id": "ty", "total": 1000})
        ]
    );
}

// ---------------------------------------------------------------------------
// $project, $addFields/$set, $unset, $replaceRoot/$replaceWith
// ---------------------------------------------------------------------------

fn book() -> Value {
    json!({"_id": 1, "title": "abc123", "isbn": "0001122223334", "author": {"last": "zzz", "first": "aaa"}, "copies": 5, "lastModified": "2016-07-28"})
}

#[test]
fn project_includes_and_excludes() {
    // Manual, $project: "Include Specific Fields in Output Documents".
    assert_eq!(
        run(
            vec![book()],
            json!([{"$project": {"title": 1, "author": 1}}])
        ),
        vec![json!({"_id": 1, "title": "abc123", "author": {"last": "zzz", "first": "aaa"}})]
    );
    // Manual, $project: "Suppress _id Field in the Output Documents".
    assert_eq!(
        run(
            vec![book()],
            json!([{"$project": {"_id": 0, "title": 1, "author": 1}}])
        ),
        vec![json!({"title": "abc123", "author": {"last": "zzz", "first": "aaa"}})]
    );
    // Manual, $project: "Exclude Fields from Output Documents".
    assert_eq!(
        run(vec![book()], json!([{"$project": {"lastModified": 0}}])),
        vec![
            json!({"_id": 1, "title": "abc123", "isbn": "0001122223334", "author": {"last": "zzz", "first": "aaa"}, "copies": 5})
        ]
    );
    // Manual, $project: "Exclude Fields from Embedded Documents".
    assert_eq!(
        run(
            vec![book()],
            json!([{"$project": {"author.first": 0, "lastModified": 0}}])
        ),
        vec![
            json!({"_id": 1, "title": "abc123", "isbn": "0001122223334", "author": {"last": "zzz"}, "copies": 5})
        ]
    );
    assert_eq!(
        run(
            vec![book()],
            json!([{"$project": {"author": {"first": 0}, "lastModified": 0}}])
        ),
        vec![
            json!({"_id": 1, "title": "abc123", "isbn": "0001122223334", "author": {"last": "zzz"}, "copies": 5})
        ]
    );
    // Manual, $project: "Include Specific Fields from Embedded Documents" (also in arrays).
    let bookmarks = vec![
        json!({"_id": 1, "user": "1234", "stop": {"title": "book1", "author": "xyz", "page": 32}}),
        json!({"_id": 2, "user": "7890", "stop": [{"title": "book2", "author": "abc", "page": 5}, {"title": "book3", "author": "ijk", "page": 100}]}),
    ];
    assert_eq!(
        run(bookmarks.clone(), json!([{"$project": {"stop.title": 1}}])),
        vec![
            json!({"_id": 1, "stop": {"title": "book1"}}),
            json!({"_id": 2, "stop": [{"title": "book2"}, {"title": "book3"}]})
        ]
    );
    assert_eq!(
        run(bookmarks, json!([{"$project": {"stop": {"title": 1}}}])),
        vec![
            json!({"_id": 1, "stop": {"title": "book1"}}),
            json!({"_id": 2, "stop": [{"title": "book2"}, {"title": "book3"}]})
        ]
    );
}

#[test]
fn project_computed_fields() {
    // Manual, $project: "Include Computed Fields".
    assert_eq!(
        run(
            vec![book()],
            json!([{"$project": {
                "title": 1,
                "isbn": {
                    "prefix": {"$substr": ["$isbn", 0, 3]},
                    "group": {"$substr": ["$isbn", 3, 2]},
                    "publisher": {"$substr": ["$isbn", 5, 4]},
                    "title": {"$substr": ["$isbn", 9, 3]},
                    "checkDigit": {"$substr": ["$isbn", 12, 1]}
                },
                "lastName": "$author.last",
                "copiesSold": "$copies"
            }}])
        ),
        vec![json!({"_id": 1, "title": "abc123",
                    "isbn": {"prefix": "000", "group": "11", "publisher": "2222", "title": "333", "checkDigit": "4"},
                    "lastName": "zzz", "copiesSold": 5})]
    );
    // Manual, $project: "Project New Array Fields" (a missing field becomes null).
    let doc = vec![json!({"_id": {"$oid": "55ad167f320c6be244eb3b95"}, "x": 1, "y": 1})];
    assert_eq!(
        run(
            doc.clone(),
            json!([{"$project": {"myArray": ["$x", "$y"]}}])
        ),
        vec![json!({"_id": {"$oid": "55ad167f320c6be244eb3b95"}, "myArray": [1, 1]})]
    );
    assert_eq!(
        run(
            doc,
            json!([{"$project": {"myArray": ["$x", "$y", "$someField"]}}])
        ),
        vec![json!({"_id": {"$oid": "55ad167f320c6be244eb3b95"}, "myArray": [1, 1, null]})]
    );
    // Manual, $project: "Conditionally Exclude Fields" ($$REMOVE).
    let books = vec![
        book(),
        json!({"_id": 2, "title": "Baked Goods", "isbn": "9999999999999", "author": {"last": "xyz", "first": "abc", "middle": ""}, "copies": 2, "lastModified": "2017-07-21"}),
        json!({"_id": 3, "title": "Ice Cream Cakes", "isbn": "8888888888888", "author": {"last": "xyz", "first": "abc", "middle": "mmm"}, "copies": 5, "lastModified": "2017-07-22"}),
    ];
    assert_eq!(
        run(
            books,
            json!([{"$project": {
                "title": 1, "author.first": 1, "author.last": 1,
                "author.middle": {"$cond": {"if": {"$eq": ["", "$author.middle"]}, "then": "$$REMOVE", "else": "$author.middle"}}
            }}])
        ),
        vec![
            json!({"_id": 1, "title": "abc123", "author": {"last": "zzz", "first": "aaa"}}),
            json!({"_id": 2, "title": "Baked Goods", "author": {"last": "xyz", "first": "abc"}}),
            json!({"_id": 3, "title": "Ice Cream Cakes", "author": {"last": "xyz", "first": "abc", "middle": "mmm"}}),
        ]
    );
}

#[test]
fn project_specification_errors() {
    let f = fx();
    f.load("c", vec![book()]);
    for (spec, needle) in [
        (
            json!({"title": 1, "copies": 0}),
            "cannot mix inclusion and exclusion",
        ),
        (
            json!({"title": 0, "isbn": {"$toUpper": "$isbn"}}),
            "exclusion projection",
        ),
        (json!({}), "at least one field"),
        (json!({"a": {}}), "empty object"),
        (json!({"a": 1, "a.b": 1}), "path collision"),
        (json!({"$a": 1}), "cannot start with '$'"),
        (json!([1]), "takes an object"),
    ] {
        let e = f.error("c", json!([{"$project": spec.clone()}]));
        assert!(
            matches!(&e, Error::InvalidPipeline(m) if m.starts_with("stage 1 ($project)") && m.contains(needle)),
            "{spec}: {e}"
        );
    }
}

#[test]
fn add_fields_and_set() {
    let scores = || {
        vec![
            json!({"_id": 1, "student": "Maya", "homework": [10, 5, 10], "quiz": [10, 8], "extraCredit": 0}),
            json!({"_id": 2, "student": "Ryan", "homework": [5, 6, 5], "quiz": [8, 8], "extraCredit": 8}),
        ]
    };
    // Manual, $addFields: "Using Two $addFields Stages" (and the same with $set).
    for stage in ["$addFields", "$set"] {
        let out = run(
            scores(),
            json!([
                {stage: {"totalHomework": {"$sum": "$homework"}, "totalQuiz": {"$sum": "$quiz"}}},
                {stage: {"totalScore": {"$add": ["$totalHomework", "$totalQuiz", "$extraCredit"]}}}
            ]),
        );
        assert_eq!(
            out,
            vec![
                json!({"_id": 1, "student": "Maya", "homework": [10, 5, 10], "quiz": [10, 8], "extraCredit": 0, "totalHomework": 25, "totalQuiz": 18, "totalScore": 43}),
                json!({"_id": 2, "student": "Ryan", "homework": [5, 6, 5], "quiz": [8, 8], "extraCredit": 8, "totalHomework": 16, "totalQuiz": 16, "totalScore": 40}),
            ],
            "{stage}"
        );
    }
    // Manual, $addFields: "Adding Fields to an Embedded Document".
    let vehicles = vec![
        json!({"_id": 1, "type": "car", "specs": {"doors": 4, "wheels": 4}}),
        json!({"_id": 2, "type": "motorcycle", "specs": {"doors": 0, "wheels": 2}}),
        json!({"_id": 3, "type": "jet ski"}),
    ];
    assert_eq!(
        run(
            vehicles,
            json!([{"$addFields": {"specs.fuel_type": "unleaded"}}])
        ),
        vec![
            json!({"_id": 1, "type": "car", "specs": {"doors": 4, "wheels": 4, "fuel_type": "unleaded"}}),
            json!({"_id": 2, "type": "motorcycle", "specs": {"doors": 0, "wheels": 2, "fuel_type": "unleaded"}}),
            json!({"_id": 3, "type": "jet ski", "specs": {"fuel_type": "unleaded"}}),
        ]
    );
    // Manual, $addFields: "Overwriting an existing field" (in place, _id too).
    assert_eq!(
        run(
            vec![json!({"_id": 1, "dogs": 10, "cats": 15})],
            json!([{"$addFields": {"cats": 20}}])
        ),
        vec![json!({"_id": 1, "dogs": 10, "cats": 20})]
    );
    let fruit = vec![
        json!({"_id": 1, "item": "tangerine", "type": "citrus"}),
        json!({"_id": 2, "item": "lemon", "type": "citrus"}),
        json!({"_id": 3, "item": "grapefruit", "type": "citrus"}),
    ];
    assert_eq!(
        run(
            fruit,
            json!([{"$addFields": {"_id": "$item", "item": "fruit"}}])
        ),
        vec![
            json!({"_id": "tangerine", "item": "fruit", "type": "citrus"}),
            json!({"_id": "lemon", "item": "fruit", "type": "citrus"}),
            json!({"_id": "grapefruit", "item": "fruit", "type": "citrus"}),
        ]
    );
    // Manual, $addFields: "Add Element to an Array".
    assert_eq!(
        run(
            scores(),
            json!([{"$match": {"_id": 1}}, {"$addFields": {"homework": {"$concatArrays": ["$homework", [7]]}}}])
        ),
        vec![
            json!({"_id": 1, "student": "Maya", "homework": [10, 5, 10, 7], "quiz": [10, 8], "extraCredit": 0})
        ]
    );
    // Manual, $addFields: "Remove Fields" ($$REMOVE, unconditionally and with $ifNull).
    let readings = vec![
        json!({"_id": 1, "date": date("2024-10-09T00:00:00Z"), "temperature": 80}),
        json!({"_id": 2, "date": null, "temperature": 83}),
        json!({"_id": 3, "date": date("2024-12-09T00:00:00Z"), "temperature": 85}),
    ];
    assert_eq!(
        run(
            readings.clone(),
            json!([{"$addFields": {"date": "$$REMOVE"}}])
        ),
        vec![
            json!({"_id": 1, "temperature": 80}),
            json!({"_id": 2, "temperature": 83}),
            json!({"_id": 3, "temperature": 85})
        ]
    );
    assert_eq!(
        run(
            readings,
            json!([{"$addFields": {"date": {"$ifNull": ["$date", "$$REMOVE"]}}}])
        ),
        vec![
            json!({"_id": 1, "date": date("2024-10-09T00:00:00Z"), "temperature": 80}),
            json!({"_id": 2, "temperature": 83}),
            json!({"_id": 3, "date": date("2024-12-09T00:00:00Z"), "temperature": 85}),
        ]
    );
    // Manual, $addFields: "Behavior" — nested objects (empty ones too) are accepted.
    assert_eq!(
        run(
            vec![json!({"_id": 1, "a": {"c": 2}})],
            json!([{"$addFields": {"a": {"b": {}}}}])
        ),
        vec![json!({"_id": 1, "a": {"c": 2, "b": {}}})]
    );
    // Dotted paths through arrays of documents set the field in each element.
    assert_eq!(
        run(
            vec![json!({"_id": 1, "a": [{"x": 1}, {"x": 2}]})],
            json!([{"$set": {"a.y": "$_id"}}])
        ),
        vec![json!({"_id": 1, "a": [{"x": 1, "y": 1}, {"x": 2, "y": 1}]})]
    );
}

#[test]
fn unset_fields() {
    // Manual, $unset (aggregation): "Remove a Single Field", "Remove Top-Level Fields",
    // "Remove Embedded Fields".
    let books = || {
        vec![
            json!({"_id": 1, "title": "Antelope Antics", "isbn": "0001122223334", "author": {"last": "An", "first": "Auntie"}, "copies": [{"warehouse": "A", "qty": 5}, {"warehouse": "B", "qty": 15}]}),
            json!({"_id": 2, "title": "Bees Babble", "isbn": "999999999333", "author": {"last": "Bumble", "first": "Bee"}, "copies": [{"warehouse": "A", "qty": 2}, {"warehouse": "B", "qty": 5}]}),
        ]
    };
    let want = vec![
        json!({"_id": 1, "title": "Antelope Antics", "isbn": "0001122223334", "author": {"last": "An", "first": "Auntie"}}),
        json!({"_id": 2, "title": "Bees Babble", "isbn": "999999999333", "author": {"last": "Bumble", "first": "Bee"}}),
    ];
    assert_eq!(run(books(), json!([{"$unset": "copies"}])), want);
    assert_eq!(run(books(), json!([{"$unset": ["copies"]}])), want);
    assert_eq!(
        run(books(), json!([{"$unset": ["isbn", "copies"]}])),
        vec![
            json!({"_id": 1, "title": "Antelope Antics", "author": {"last": "An", "first": "Auntie"}}),
            json!({"_id": 2, "title": "Bees Babble", "author": {"last": "Bumble", "first": "Bee"}}),
        ]
    );
    assert_eq!(
        run(
            books(),
            json!([{"$unset": ["isbn", "author.first", "copies.warehouse"]}])
        ),
        vec![
            json!({"_id": 1, "title": "Antelope Antics", "author": {"last": "An"}, "copies": [{"qty": 5}, {"qty": 15}]}),
            json!({"_id": 2, "title": "Bees Babble", "author": {"last": "Bumble"}, "copies": [{"qty": 2}, {"qty": 5}]}),
        ]
    );
    assert_eq!(
        run(vec![json!({"_id": 1, "a": 1})], json!([{"$unset": "_id"}])),
        vec![json!({"a": 1})]
    );
}

#[test]
fn replace_root_and_with() {
    // Manual, $replaceRoot: "$replaceRoot with an Embedded Document Field" (with $mergeObjects defaults).
    let people = || {
        vec![
            json!({"_id": 1, "name": "Arlene", "age": 34, "pets": {"dogs": 2, "cats": 1}}),
            json!({"_id": 2, "name": "Sam", "age": 41, "pets": {"cats": 1, "fish": 3}}),
            json!({"_id": 3, "name": "Maria", "age": 25}),
        ]
    };
    let want = vec![
        json!({"dogs": 2, "cats": 1, "birds": 0, "fish": 0}),
        json!({"dogs": 0, "cats": 1, "birds": 0, "fish": 3}),
        json!({"dogs": 0, "cats": 0, "birds": 0, "fish": 0}),
    ];
    assert_eq!(
        run(
            people(),
            json!([{"$replaceRoot": {"newRoot": {"$mergeObjects": [{"dogs": 0, "cats": 0, "birds": 0, "fish": 0}, "$pets"]}}}])
        ),
        want
    );
    // Manual, $replaceWith: the same example with $replaceWith.
    assert_eq!(
        run(
            people(),
            json!([{"$replaceWith": {"$mergeObjects": [{"dogs": 0, "cats": 0, "birds": 0, "fish": 0}, "$pets"]}}])
        ),
        want
    );
    // Manual, $replaceRoot: "$replaceRoot with a Document Nested in an Array".
    let students = vec![
        json!({"_id": 1, "grades": [{"test": 1, "grade": 80, "mean": 75, "std": 6}, {"test": 2, "grade": 85, "mean": 90, "std": 4}, {"test": 3, "grade": 95, "mean": 85, "std": 6}]}),
        json!({"_id": 2, "grades": [{"test": 1, "grade": 90, "mean": 75, "std": 6}, {"test": 2, "grade": 87, "mean": 90, "std": 3}, {"test": 3, "grade": 91, "mean": 85, "std": 4}]}),
    ];
    assert_eq!(
        run(
            students,
            json!([{"$unwind": "$grades"}, {"$match": {"grades.grade": {"$gte": 90}}}, {"$replaceRoot": {"newRoot": "$grades"}}])
        ),
        vec![
            json!({"test": 3, "grade": 95, "mean": 85, "std": 6}),
            json!({"test": 1, "grade": 90, "mean": 75, "std": 6}),
            json!({"test": 3, "grade": 91, "mean": 85, "std": 4}),
        ]
    );
    // Manual, $replaceRoot: "$replaceRoot with a newly created document".
    let contacts = vec![
        json!({"_id": 1, "first_name": "Gary", "last_name": "Sheffield", "city": "New York"}),
        json!({"_id": 2, "first_name": "Nancy", "last_name": "Walker", "city": "Anaheim"}),
        json!({"_id": 3, "first_name": "Peter", "last_name": "Sumner", "city": "Toledo"}),
    ];
    assert_eq!(
        run(
            contacts,
            json!([{"$replaceRoot": {"newRoot": {"full_name": {"$concat": ["$first_name", " ", "$last_name"]}}}}])
        ),
        vec![
            json!({"full_name": "Gary Sheffield"}),
            json!({"full_name": "Nancy Walker"}),
            json!({"full_name": "Peter Sumner"})
        ]
    );
    // Manual, $replaceRoot: "Behavior" — a newRoot that is not a document is an
    // error (the fourth person has no name document).
    let f = fx();
    f.load(
        "people",
        vec![
            json!({"_id": 1, "name": {"first": "John", "last": "Backus"}}),
            json!({"_id": 2, "name": {"first": "John", "last": "McCarthy"}}),
            json!({"_id": 3, "name": {"first": "Grace", "last": "Hopper"}}),
            json!({"_id": 4, "firstname": "Ole-Johan", "lastname": "Dahl"}),
        ],
    );
    let e = f.error("people", json!([{"$replaceRoot": {"newRoot": "$name"}}]));
    assert!(
        matches!(&e, Error::TypeMismatch { path, message, .. } if path == "newRoot" && message.contains("missing") && message.contains("stage 1 ($replaceRoot)")),
        "{e}"
    );
    // Manual, $replaceRoot: the documented workaround with $mergeObjects.
    let out = f.run(
        "people",
        json!([{"$replaceRoot": {"newRoot": {"$mergeObjects": [{"_id": "$_id", "first": "", "last": ""}, "$name"]}}}]),
    );
    assert_eq!(out[3], json!({"_id": 4, "first": "", "last": ""}));
}

// ---------------------------------------------------------------------------
// $group and the accumulators
// ---------------------------------------------------------------------------

fn group_sales() -> Vec<Value> {
    vec![
        json!({"_id": 1, "item": "abc", "price": 10, "quantity": 2, "date": date("2014-03-01T08:00:00Z")}),
        json!({"_id": 2, "item": "jkl", "price": 20, "quantity": 1, "date": date("2014-03-01T09:00:00Z")}),
        json!({"_id": 3, "item": "xyz", "price": 5, "quantity": 10, "date": date("2014-03-15T09:00:00Z")}),
        json!({"_id": 4, "item": "xyz", "price": 5, "quantity": 20, "date": date("2014-04-04T11:21:39.736Z")}),
        json!({"_id": 5, "item": "abc", "price": 10, "quantity": 10, "date": date("2014-04-04T21:23:13.331Z")}),
    ]
}

#[test]
fn group_examples() {
    // Manual, $group: "Group by Month, Day, and Year".
    let out = run(
        group_sales(),
        json!([{"$group": {
            "_id": {"month": {"$month": "$date"}, "day": {"$dayOfMonth": "$date"}, "year": {"$year": "$date"}},
            "totalPrice": {"$sum": {"$multiply": ["$price", "$quantity"]}},
            "averageQuantity": {"$avg": "$quantity"},
            "count": {"$sum": 1}
        }}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": {"month": 3, "day": 1, "year": 2014}, "totalPrice": 40, "averageQuantity": 1.5, "count": 2}),
            json!({"_id": {"month": 3, "day": 15, "year": 2014}, "totalPrice": 50, "averageQuantity": 10.0, "count": 1}),
            json!({"_id": {"month": 4, "day": 4, "year": 2014}, "totalPrice": 200, "averageQuantity": 15.0, "count": 2}),
        ]
    );
    // Manual, $group: "Group by null".
    let out = run(
        group_sales(),
        json!([{"$group": {"_id": null, "totalPrice": {"$sum": {"$multiply": ["$price", "$quantity"]}}, "averageQuantity": {"$avg": "$quantity"}, "count": {"$sum": 1}}}]),
    );
    assert_eq!(
        out,
        vec![json!({"_id": null, "totalPrice": 290, "averageQuantity": 8.6, "count": 5})]
    );
    // Manual, $group: "Retrieve Distinct Values".
    let out = run(
        group_sales(),
        json!([{"$group": {"_id": "$item"}}, {"$sort": {"_id": -1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "xyz"}),
            json!({"_id": "jkl"}),
            json!({"_id": "abc"})
        ]
    );
    // Manual, $group: "Pivot Data" — titles by author, and whole documents with $$ROOT.
    let books = vec![
        json!({"_id": 8751, "title": "The Banquet", "author": "Dante", "copies": 2}),
        json!({"_id": 8752, "title": "Divine Comedy", "author": "Dante", "copies": 1}),
        json!({"_id": 8645, "title": "Eclogues", "author": "Dante", "copies": 2}),
        json!({"_id": 7000, "title": "The Odyssey", "author": "Homer", "copies": 10}),
        json!({"_id": 7020, "title": "Iliad", "author": "Homer", "copies": 10}),
    ];
    let out = run(
        books.clone(),
        json!([{"$group": {"_id": "$author", "books": {"$push": "$title"}}}, {"$sort": {"_id": -1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "Homer", "books": ["The Odyssey", "Iliad"]}),
            json!({"_id": "Dante", "books": ["Eclogues", "The Banquet", "Divine Comedy"]}),
        ]
    );
    let out = run(
        books,
        json!([{"$group": {"_id": "$author", "books": {"$push": "$$ROOT"}}}, {"$sort": {"_id": -1}}]),
    );
    assert_eq!(
        out[0],
        json!({"_id": "Homer", "books": [
            {"_id": 7000, "title": "The Odyssey", "author": "Homer", "copies": 10},
            {"_id": 7020, "title": "Iliad", "author": "Homer", "copies": 10}
        ]})
    );
}

fn acc_sales() -> Vec<Value> {
    vec![
        json!({"_id": 1, "item": "abc", "price": 10, "quantity": 2, "date": date("2014-01-01T08:00:00Z")}),
        json!({"_id": 2, "item": "jkl", "price": 20, "quantity": 1, "date": date("2014-02-03T09:00:00Z")}),
        json!({"_id": 3, "item": "xyz", "price": 5, "quantity": 5, "date": date("2014-02-03T09:05:00Z")}),
        json!({"_id": 4, "item": "abc", "price": 10, "quantity": 10, "date": date("2014-02-15T08:00:00Z")}),
        json!({"_id": 5, "item": "xyz", "price": 5, "quantity": 10, "date": date("2014-02-15T09:05:00Z")}),
    ]
}

#[test]
fn accumulators_sum_avg_min_max() {
    // Manual, $sum: "Use in $group Stage".
    let out = run(
        acc_sales(),
        json!([{"$group": {"_id": {"day": {"$dayOfYear": "$date"}, "year": {"$year": "$date"}},
            "totalAmount": {"$sum": {"$multiply": ["$price", "$quantity"]}}, "count": {"$sum": 1}}},
            {"$sort": {"_id.day": -1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": {"day": 46, "year": 2014}, "totalAmount": 150, "count": 2}),
            json!({"_id": {"day": 34, "year": 2014}, "totalAmount": 45, "count": 2}),
            json!({"_id": {"day": 1, "year": 2014}, "totalAmount": 20, "count": 1}),
        ]
    );
    // Manual, $avg: "Use in $group Stage".
    let out = run(
        acc_sales(),
        json!([{"$group": {"_id": "$item", "avgAmount": {"$avg": {"$multiply": ["$price", "$quantity"]}}, "avgQuantity": {"$avg": "$quantity"}}},
               {"$sort": {"_id": -1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "xyz", "avgAmount": 37.5, "avgQuantity": 7.5}),
            json!({"_id": "jkl", "avgAmount": 20.0, "avgQuantity": 1.0}),
            json!({"_id": "abc", "avgAmount": 60.0, "avgQuantity": 6.0}),
        ]
    );
    // Manual, $min and $max: "Use in $group Stage".
    let out = run(
        acc_sales(),
        json!([{"$group": {"_id": "$item", "minQuantity": {"$min": "$quantity"},
            "maxTotalAmount": {"$max": {"$multiply": ["$price", "$quantity"]}}, "maxQuantity": {"$max": "$quantity"}}},
            {"$sort": {"_id": -1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "xyz", "minQuantity": 5, "maxTotalAmount": 50, "maxQuantity": 10}),
            json!({"_id": "jkl", "minQuantity": 1, "maxTotalAmount": 20, "maxQuantity": 1}),
            json!({"_id": "abc", "minQuantity": 2, "maxTotalAmount": 100, "maxQuantity": 10}),
        ]
    );
    // Manual, $sum / $avg / $min / $max: "Behavior" — non-numbers are ignored by
    // $sum/$avg, null and missing by $min/$max; an all-missing group gives 0 / null.
    let docs = vec![
        json!({"_id": 1, "g": 1, "v": 4}),
        json!({"_id": 2, "g": 1, "v": "x"}),
        json!({"_id": 3, "g": 1, "v": null}),
        json!({"_id": 4, "g": 1}),
        json!({"_id": 5, "g": 2}),
    ];
    let out = run(
        docs,
        json!([{"$group": {"_id": "$g", "s": {"$sum": "$v"}, "a": {"$avg": "$v"}, "mn": {"$min": "$v"}, "mx": {"$max": "$v"}}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "s": 4, "a": 4.0, "mn": 4, "mx": "x"}),
            json!({"_id": 2, "s": 0, "a": null, "mn": null, "mx": null}),
        ]
    );
}

#[test]
fn accumulators_first_last_push_add_to_set() {
    let sales = vec![
        json!({"_id": 1, "item": "abc", "price": 10, "quantity": 2, "date": date("2014-01-01T08:00:00Z")}),
        json!({"_id": 2, "item": "jkl", "price": 20, "quantity": 1, "date": date("2014-02-03T09:00:00Z")}),
        json!({"_id": 3, "item": "xyz", "price": 5, "quantity": 5, "date": date("2014-02-03T09:05:00Z")}),
        json!({"_id": 4, "item": "abc", "price": 10, "quantity": 10, "date": date("2014-02-15T08:00:00Z")}),
        json!({"_id": 5, "item": "xyz", "price": 5, "quantity": 10, "date": date("2014-02-15T09:05:00Z")}),
        json!({"_id": 6, "item": "xyz", "price": 5, "quantity": 5, "date": date("2014-02-15T12:05:10Z")}),
        json!({"_id": 7, "item": "xyz", "price": 5, "quantity": 10, "date": date("2014-02-15T14:12:12Z")}),
    ];
    // Manual, $first (aggregation accumulator): "Use in $group Stage".
    let out = run(
        sales.clone(),
        json!([{"$sort": {"item": 1, "date": 1}}, {"$group": {"_id": "$item", "firstSale": {"$first": "$date"}}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "abc", "firstSale": date("2014-01-01T08:00:00Z")}),
            json!({"_id": "jkl", "firstSale": date("2014-02-03T09:00:00Z")}),
            json!({"_id": "xyz", "firstSale": date("2014-02-03T09:05:00Z")}),
        ]
    );
    // Manual, $last (aggregation accumulator): "Use in $group Stage".
    let out = run(
        sales.clone(),
        json!([{"$sort": {"item": 1, "date": 1}}, {"$group": {"_id": "$item", "lastSalesDate": {"$last": "$date"}}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "abc", "lastSalesDate": date("2014-02-15T08:00:00Z")}),
            json!({"_id": "jkl", "lastSalesDate": date("2014-02-03T09:00:00Z")}),
            json!({"_id": "xyz", "lastSalesDate": date("2014-02-15T14:12:12Z")}),
        ]
    );
    // Manual, $push: "Use in $group Stage".
    let out = run(
        sales.clone(),
        json!([{"$sort": {"date": 1, "item": 1}},
               {"$group": {"_id": {"day": {"$dayOfYear": "$date"}, "year": {"$year": "$date"}},
                           "itemsSold": {"$push": {"item": "$item", "quantity": "$quantity"}}}},
               {"$sort": {"_id.day": -1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": {"day": 46, "year": 2014}, "itemsSold": [
                {"item": "abc", "quantity": 10}, {"item": "xyz", "quantity": 10},
                {"item": "xyz", "quantity": 5}, {"item": "xyz", "quantity": 10}]}),
            json!({"_id": {"day": 34, "year": 2014}, "itemsSold": [{"item": "jkl", "quantity": 1}, {"item": "xyz", "quantity": 5}]}),
            json!({"_id": {"day": 1, "year": 2014}, "itemsSold": [{"item": "abc", "quantity": 2}]}),
        ]
    );
    // Manual, $addToSet: "Use in $group Stage" (order undefined: compared as sets).
    let out = run(
        acc_sales(),
        json!([{"$group": {"_id": {"day": {"$dayOfYear": "$date"}, "year": {"$year": "$date"}}, "itemsSold": {"$addToSet": "$item"}}},
               {"$sort": {"_id.day": -1}}]),
    );
    let sets: Vec<Vec<String>> = out
        .iter()
        .map(|d| {
            let mut v: Vec<String> = d["itemsSold"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect();
            v.sort();
            v
        })
        .collect();
    assert_eq!(
        sets,
        vec![vec!["abc", "xyz"], vec!["jkl", "xyz"], vec!["abc"]]
    );
    // $addToSet treats equal values of different numeric types as one; $push
    // skips missing values; $first/$last take null for a missing one.
    let docs = vec![
        json!({"_id": 1, "v": 1}),
        json!({"_id": 2, "v": 1.0}),
        json!({"_id": 3}),
        json!({"_id": 4, "v": [1]}),
        json!({"_id": 5, "v": 2}),
        json!({"_id": 6}),
    ];
    let out = run(
        docs,
        json!([{"$group": {"_id": null, "set": {"$addToSet": "$v"}, "all": {"$push": "$v"}, "f": {"$first": "$v"}, "l": {"$last": "$v"}}}]),
    );
    assert_eq!(
        out,
        vec![json!({"_id": null, "set": [1, [1], 2], "all": [1, 1.0, [1], 2], "f": 1, "l": null})]
    );
}

#[test]
fn accumulators_count_stddev_merge_objects() {
    // Manual, $count (aggregation accumulator): "Example" (documents per state).
    let sales = vec![
        json!({"_id": 1, "state": "CA", "price": 100, "quantity": 1}),
        json!({"_id": 2, "state": "WA", "price": 250, "quantity": 1}),
        json!({"_id": 3, "state": "CA", "price": 150, "quantity": 2}),
        json!({"_id": 4, "state": "NY", "price": 75, "quantity": 3}),
        json!({"_id": 5, "state": "CA", "price": 200, "quantity": 1}),
    ];
    let out = run(
        sales,
        json!([{"$group": {"_id": "$state", "countNumberOfDocumentsForState": {"$count": {}}}}, {"$sort": {"_id": 1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "CA", "countNumberOfDocumentsForState": 3}),
            json!({"_id": "NY", "countNumberOfDocumentsForState": 1}),
            json!({"_id": "WA", "countNumberOfDocumentsForState": 1}),
        ]
    );
    // Manual, $stdDevPop: "Use in $group Stage".
    let users = vec![
        json!({"_id": 1, "name": "dave123", "quiz": 1, "score": 85}),
        json!({"_id": 2, "name": "dave2", "quiz": 1, "score": 90}),
        json!({"_id": 3, "name": "ahn", "quiz": 1, "score": 71}),
        json!({"_id": 4, "name": "li", "quiz": 2, "score": 96}),
        json!({"_id": 5, "name": "annT", "quiz": 2, "score": 77}),
        json!({"_id": 6, "name": "ty", "quiz": 2, "score": 82}),
    ];
    let out = run(
        users.clone(),
        json!([{"$group": {"_id": "$quiz", "stdDev": {"$stdDevPop": "$score"}, "samp": {"$stdDevSamp": "$score"}}}]),
    );
    for d in &out {
        assert!(
            (d["stdDev"].as_f64().unwrap() - 8.04155872120988).abs() < 1e-9,
            "{d}"
        );
        assert!(
            (d["samp"].as_f64().unwrap() - 9.848857801796104).abs() < 1e-9,
            "{d}"
        );
    }
    // Manual, $mergeObjects (accumulator): "$mergeObjects as an Accumulator".
    let sales = vec![
        json!({"_id": 1, "year": 2017, "item": "A", "quantity": {"2017Q1": 500, "2017Q2": 500}}),
        json!({"_id": 2, "year": 2016, "item": "A", "quantity": {"2016Q1": 400, "2016Q2": 300, "2016Q3": 0, "2016Q4": 0}}),
        json!({"_id": 3, "year": 2017, "item": "B", "quantity": {"2017Q1": 300}}),
        json!({"_id": 4, "year": 2016, "item": "B", "quantity": {"2016Q3": 100, "2016Q4": 250}}),
    ];
    assert_eq!(
        run(
            sales,
            json!([{"$group": {"_id": "$item", "mergedSales": {"$mergeObjects": "$quantity"}}}])
        ),
        vec![
            json!({"_id": "A", "mergedSales": {"2017Q1": 500, "2017Q2": 500, "2016Q1": 400, "2016Q2": 300, "2016Q3": 0, "2016Q4": 0}}),
            json!({"_id": "B", "mergedSales": {"2017Q1": 300, "2016Q3": 100, "2016Q4": 250}}),
        ]
    );
}

#[test]
fn group_keys_follow_value_equality() {
    // Manual, $group: "group key" — values MongoDB considers equal share a group:
    // 1 and 1.0, null and missing; documents compare field by field.
    let docs = vec![
        json!({"_id": 1, "k": 1}),
        json!({"_id": 2, "k": 1.0}),
        json!({"_id": 3, "k": null}),
        json!({"_id": 4}),
        json!({"_id": 5, "k": {"a": 1}}),
        json!({"_id": 6, "k": {"a": 1.0}}),
        json!({"_id": 7, "k": [1, 2]}),
        json!({"_id": 8, "k": "1"}),
    ];
    let out = run(
        docs,
        json!([{"$group": {"_id": "$k", "ids": {"$push": "$_id"}}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "ids": [1, 2]}),
            json!({"_id": null, "ids": [3, 4]}),
            json!({"_id": {"a": 1}, "ids": [5, 6]}),
            json!({"_id": [1, 2], "ids": [7]}),
            json!({"_id": "1", "ids": [8]}),
        ]
    );
}

#[test]
fn group_specification_errors() {
    let f = fx();
    f.load("c", vec![json!({"_id": 1})]);
    for (spec, needle) in [
        (json!({"n": {"$sum": 1}}), "needs an '_id'"),
        (
            json!({"_id": null, "n": {"$median": 1}}),
            "unknown accumulator '$median'",
        ),
        (json!({"_id": null, "n": 1}), "accumulator object"),
        (
            json!({"_id": null, "n": {"$sum": 1, "$avg": 1}}),
            "accumulator object",
        ),
        (
            json!({"_id": null, "n": {"$sum": [1, 2]}}),
            "unary operator",
        ),
        (
            json!({"_id": null, "a.b": {"$sum": 1}}),
            "not a valid output field name",
        ),
        (json!({"_id": null, "n": {"$count": 1}}), "empty object"),
        (
            json!({"_id": null, "n": {"$accumulator": {}}}),
            "never executes code",
        ),
    ] {
        let e = f.error("c", json!([{"$group": spec.clone()}]));
        assert!(
            matches!(&e, Error::InvalidPipeline(m) if m.starts_with("stage 1 ($group)") && m.contains(needle)),
            "{spec}: {e}"
        );
    }
    let e = f.error(
        "c",
        json!([{"$group": {"_id": null, "m": {"$mergeObjects": "$_id"}}}]),
    );
    assert!(
        matches!(&e, Error::TypeMismatch { operator, path, .. } if operator == "$mergeObjects" && path == "m"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// $sort, $skip, $limit, $count, $sortByCount
// ---------------------------------------------------------------------------

#[test]
fn sort_skip_limit() {
    // Manual, $sort: "Sort Consistency" / "Ascending/Descending Sort".
    let restaurants = vec![
        json!({"_id": 1, "name": "Central Park Cafe", "borough": "Manhattan"}),
        json!({"_id": 2, "name": "Rock A Feller Bar and Grill", "borough": "Queens"}),
        json!({"_id": 3, "name": "Empire State Pub", "borough": "Brooklyn"}),
        json!({"_id": 4, "name": "Stan's Pizzaria", "borough": "Manhattan"}),
        json!({"_id": 5, "name": "Jane's Deli", "borough": "Brooklyn"}),
    ];
    let f = fx();
    f.load("restaurants", restaurants);
    let out = f.run(
        "restaurants",
        json!([{"$project": {"borough": 1}}, {"$sort": {"borough": 1, "_id": 1}}]),
    );
    assert_eq!(
        ids(&out),
        vec![json!(3), json!(5), json!(1), json!(4), json!(2)]
    );
    let out = f.run(
        "restaurants",
        json!([{"$project": {"borough": 1}}, {"$sort": {"borough": -1, "_id": -1}}]),
    );
    assert_eq!(
        ids(&out),
        vec![json!(2), json!(4), json!(1), json!(5), json!(3)]
    );
    // Manual, $skip and $limit: "Example".
    let out = f.run(
        "restaurants",
        json!([{"$project": {"borough": 1}}, {"$skip": 2}, {"$limit": 2}]),
    );
    assert_eq!(ids(&out), vec![json!(3), json!(4)]);
    // $limit then $skip, and a top-k ($sort then $limit) over a computed key.
    let out = f.run(
        "restaurants",
        json!([{"$project": {"name": 1}}, {"$limit": 3}, {"$skip": 1}]),
    );
    assert_eq!(ids(&out), vec![json!(2), json!(3)]);
    let out = f.run(
        "restaurants",
        json!([{"$addFields": {"len": {"$strLenCP": "$name"}}}, {"$sort": {"len": -1}}, {"$limit": 2}, {"$project": {"len": 1}}]),
    );
    assert_eq!(
        out,
        vec![json!({"_id": 2, "len": 27}), json!({"_id": 1, "len": 17})]
    );
    // Manual, $sort: "Behavior" — arrays sort by their smallest (ascending) or
    // largest (descending) element, missing sorts as null, before numbers.
    let docs = vec![
        json!({"_id": 1, "v": [5, 1]}),
        json!({"_id": 2, "v": 3}),
        json!({"_id": 3}),
        json!({"_id": 4, "v": "a"}),
        json!({"_id": 5, "v": [2, 9]}),
    ];
    let asc = run(
        docs.clone(),
        json!([{"$project": {"_id": 1}}, {"$sort": {"v": 1}}, {"$project": {"_id": 1}}]),
    );
    // The $project first forces an in-memory sort of computed documents (v is gone: all null).
    assert_eq!(
        ids(&asc),
        vec![json!(1), json!(2), json!(3), json!(4), json!(5)]
    );
    let asc = run(
        docs.clone(),
        json!([{"$addFields": {"w": "$v"}}, {"$sort": {"w": 1}}]),
    );
    assert_eq!(
        ids(&asc),
        vec![json!(3), json!(1), json!(5), json!(2), json!(4)]
    );
    let desc = run(
        docs,
        json!([{"$addFields": {"w": "$v"}}, {"$sort": {"w": -1}}]),
    );
    assert_eq!(
        ids(&desc),
        vec![json!(4), json!(5), json!(1), json!(2), json!(3)]
    );
}

#[test]
fn count_stage() {
    // Manual, $count (aggregation): "Example".
    let scores = vec![
        json!({"_id": 1, "subject": "History", "score": 88}),
        json!({"_id": 2, "subject": "History", "score": 92}),
        json!({"_id": 3, "subject": "History", "score": 97}),
        json!({"_id": 4, "subject": "History", "score": 71}),
        json!({"_id": 5, "subject": "History", "score": 79}),
        json!({"_id": 6, "subject": "History", "score": 83}),
    ];
    assert_eq!(
        run(
            scores.clone(),
            json!([{"$match": {"score": {"$gt": 80}}}, {"$count": "passing_scores"}])
        ),
        vec![json!({"passing_scores": 4})]
    );
    // No input: no document (as in MongoDB).
    assert_eq!(
        run(
            scores,
            json!([{"$match": {"score": {"$gt": 100}}}, {"$count": "n"}])
        ),
        Vec::<Value>::new()
    );
    let f = fx();
    f.load("c", vec![json!({"_id": 1})]);
    for bad in [json!(""), json!("$n"), json!("a.b"), json!(1)] {
        let e = f.error("c", json!([{"$count": bad.clone()}]));
        assert!(
            matches!(&e, Error::InvalidPipeline(m) if m.contains("$count")),
            "{bad}: {e}"
        );
    }
}

fn exhibits() -> Vec<Value> {
    vec![
        json!({"_id": 1, "title": "The Pillars of Society", "artist": "Grosz", "year": 1926, "tags": ["painting", "satire", "Expressionism", "caricature"]}),
        json!({"_id": 2, "title": "Melancholy III", "artist": "Munch", "year": 1902, "tags": ["woodcut", "Expressionism"]}),
        json!({"_id": 3, "title": "Dancer", "artist": "Miro", "year": 1925, "tags": ["oil", "Surrealism", "painting"]}),
        json!({"_id": 4, "title": "The Great Wave off Kanagawa", "artist": "Hokusai", "tags": ["woodblock", "ukiyo-e"]}),
        json!({"_id": 5, "title": "The Persistence of Memory", "artist": "Dali", "year": 1931, "tags": ["Surrealism", "painting", "oil"]}),
        json!({"_id": 6, "title": "Composition VII", "artist": "Kandinsky", "year": 1913, "tags": ["oil", "painting", "abstract"]}),
        json!({"_id": 7, "title": "The Scream", "artist": "Munch", "year": 1893, "tags": ["Expressionism", "painting", "oil"]}),
        json!({"_id": 8, "title": "Blue Flower", "artist": "O'Keefe", "year": 1918, "tags": ["abstract", "painting"]}),
    ]
}

#[test]
fn sort_by_count() {
    // Manual, $sortByCount: "Example" (ties in any order: checked by count, then as a set).
    let out = run(
        exhibits(),
        json!([{"$unwind": "$tags"}, {"$sortByCount": "$tags"}]),
    );
    let counts: Vec<i64> = out.iter().map(|d| d["count"].as_i64().unwrap()).collect();
    assert_eq!(counts, vec![6, 4, 3, 2, 2, 1, 1, 1, 1, 1]);
    assert_eq!(out[0], json!({"_id": "painting", "count": 6}));
    assert_eq!(out[1], json!({"_id": "oil", "count": 4}));
    assert_eq!(out[2], json!({"_id": "Expressionism", "count": 3}));
    let mut ones: Vec<String> = out[5..]
        .iter()
        .map(|d| d["_id"].as_str().unwrap().to_owned())
        .collect();
    ones.sort();
    assert_eq!(
        ones,
        vec!["caricature", "satire", "ukiyo-e", "woodblock", "woodcut"]
    );
    let f = fx();
    f.load("c", vec![json!({"_id": 1})]);
    let e = f.error("c", json!([{"$sortByCount": "tags"}]));
    assert!(
        matches!(&e, Error::InvalidPipeline(m) if m.contains("field path")),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// $unwind
// ---------------------------------------------------------------------------

fn clothing() -> Vec<Value> {
    vec![
        json!({"_id": 1, "item": "Shirt", "sizes": ["S", "M", "L"]}),
        json!({"_id": 2, "item": "Shorts", "sizes": []}),
        json!({"_id": 3, "item": "Hat", "sizes": "M"}),
        json!({"_id": 4, "item": "Gloves"}),
        json!({"_id": 5, "item": "Scarf", "sizes": null}),
    ]
}

#[test]
fn unwind_examples() {
    // Manual, $unwind: "Unwind Array".
    assert_eq!(
        run(
            vec![json!({"_id": 1, "item": "ABC1", "sizes": ["S", "M", "L"]})],
            json!([{"$unwind": "$sizes"}])
        ),
        vec![
            json!({"_id": 1, "item": "ABC1", "sizes": "S"}),
            json!({"_id": 1, "item": "ABC1", "sizes": "M"}),
            json!({"_id": 1, "item": "ABC1", "sizes": "L"}),
        ]
    );
    // Manual, $unwind: "Missing or Non-array Values".
    assert_eq!(
        run(clothing(), json!([{"$unwind": {"path": "$sizes"}}])),
        vec![
            json!({"_id": 1, "item": "Shirt", "sizes": "S"}),
            json!({"_id": 1, "item": "Shirt", "sizes": "M"}),
            json!({"_id": 1, "item": "Shirt", "sizes": "L"}),
            json!({"_id": 3, "item": "Hat", "sizes": "M"}),
        ]
    );
    // Manual, $unwind: "preserveNullAndEmptyArrays".
    assert_eq!(
        run(
            clothing(),
            json!([{"$unwind": {"path": "$sizes", "preserveNullAndEmptyArrays": true}}])
        ),
        vec![
            json!({"_id": 1, "item": "Shirt", "sizes": "S"}),
            json!({"_id": 1, "item": "Shirt", "sizes": "M"}),
            json!({"_id": 1, "item": "Shirt", "sizes": "L"}),
            json!({"_id": 2, "item": "Shorts"}),
            json!({"_id": 3, "item": "Hat", "sizes": "M"}),
            json!({"_id": 4, "item": "Gloves"}),
            json!({"_id": 5, "item": "Scarf", "sizes": null}),
        ]
    );
    // Manual, $unwind: "includeArrayIndex" (null for a non-array value).
    assert_eq!(
        run(
            clothing(),
            json!([{"$unwind": {"path": "$sizes", "includeArrayIndex": "arrayIndex"}}])
        ),
        vec![
            json!({"_id": 1, "item": "Shirt", "sizes": "S", "arrayIndex": 0}),
            json!({"_id": 1, "item": "Shirt", "sizes": "M", "arrayIndex": 1}),
            json!({"_id": 1, "item": "Shirt", "sizes": "L", "arrayIndex": 2}),
            json!({"_id": 3, "item": "Hat", "sizes": "M", "arrayIndex": null}),
        ]
    );
    // Manual, $unwind: "Group by Unwound Values" (average price per size).
    let inventory = vec![
        json!({"_id": 1, "item": "Shirt", "price": 10.0, "sizes": ["S", "M", "L"]}),
        json!({"_id": 2, "item": "Shorts", "price": 20.0, "sizes": ["M"]}),
        json!({"_id": 3, "item": "Hat", "price": 5.0, "sizes": "M"}),
    ];
    assert_eq!(
        run(
            inventory,
            json!([{"$unwind": {"path": "$sizes", "preserveNullAndEmptyArrays": true}},
                             {"$group": {"_id": "$sizes", "averagePrice": {"$avg": "$price"}}}, {"$sort": {"averagePrice": -1}}])
        ),
        vec![
            json!({"_id": "M", "averagePrice": 11.666666666666666}),
            json!({"_id": "S", "averagePrice": 10.0}),
            json!({"_id": "L", "averagePrice": 10.0}),
        ]
    );
    // Nested paths unwind inside embedded documents.
    assert_eq!(
        run(
            vec![json!({"_id": 1, "a": {"b": [1, 2]}})],
            json!([{"$unwind": "$a.b"}])
        ),
        vec![
            json!({"_id": 1, "a": {"b": 1}}),
            json!({"_id": 1, "a": {"b": 2}})
        ]
    );
    let f = fx();
    f.load("c", vec![json!({"_id": 1})]);
    for bad in [
        json!("sizes"),
        json!({"path": "sizes"}),
        json!({"path": "$s", "includeArrayIndex": "$i"}),
        json!({"path": "$s", "other": 1}),
    ] {
        let e = f.error("c", json!([{"$unwind": bad.clone()}]));
        assert!(
            matches!(&e, Error::InvalidPipeline(m) if m.starts_with("stage 1 ($unwind)")),
            "{bad}: {e}"
        );
    }
}

// ---------------------------------------------------------------------------
// $bucket and $facet
// ---------------------------------------------------------------------------

fn artists() -> Vec<Value> {
    vec![
        json!({"_id": 1, "last_name": "Bernard", "first_name": "Emil", "year_born": 1868, "year_died": 1941, "nationality": "France"}),
        json!({"_id": 2, "last_name": "Rippl-Ronai", "first_name": "Joszi", "year_born": 1861, "year_died": 1927, "nationality": "Hungary"}),
        json!({"_id": 3, "last_name": "Ostroumova", "first_name": "Anna", "year_born": 1871, "year_died": 1955, "nationality": "Russia"}),
        json!({"_id": 4, "last_name": "Van Gogh", "first_name": "Vincent", "year_born": 1853, "year_died": 1890, "nationality": "Holland"}),
        json!({"_id": 5, "last_name": "Maurer", "first_name": "Alfred", "year_born": 1868, "year_died": 1932, "nationality": "USA"}),
        json!({"_id": 6, "last_name": "Munch", "first_name": "Edvard", "year_born": 1863, "year_died": 1944, "nationality": "Norway"}),
        json!({"_id": 7, "last_name": "Redon", "first_name": "Odilon", "year_born": 1840, "year_died": 1916, "nationality": "France"}),
        json!({"_id": 8, "last_name": "Diriks", "first_name": "Edvard", "year_born": 1855, "year_died": 1930, "nationality": "Norway"}),
    ]
}

#[test]
fn bucket_examples() {
    // Manual, $bucket: "Bucket by Year and Filter by Bucket Results".
    let out = run(
        artists(),
        json!([
            {"$bucket": {"groupBy": "$year_born", "boundaries": [1840, 1850, 1860, 1870, 1880], "default": "Other",
                "output": {"count": {"$sum": 1},
                           "artists": {"$push": {"name": {"$concat": ["$first_name", " ", "$last_name"]}, "year_born": "$year_born"}}}}},
            {"$match": {"count": {"$gt": 3}}}
        ]),
    );
    assert_eq!(
        out,
        vec![json!({"_id": 1860, "count": 4, "artists": [
            {"name": "Emil Bernard", "year_born": 1868},
            {"name": "Joszi Rippl-Ronai", "year_born": 1861},
            {"name": "Alfred Maurer", "year_born": 1868},
            {"name": "Edvard Munch", "year_born": 1863}
        ]})]
    );
    // The same buckets without the filter: boundary order, empty buckets left
    // out, the default output is {count}.
    let out = run(
        artists(),
        json!([{"$bucket": {"groupBy": "$year_born", "boundaries": [1840, 1850, 1860, 1870, 1880]}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1840, "count": 1}),
            json!({"_id": 1850, "count": 2}),
            json!({"_id": 1860, "count": 4}),
            json!({"_id": 1870, "count": 1}),
        ]
    );
    // Values outside the boundaries go to the default bucket, emitted last.
    let out = run(
        artists(),
        json!([{"$bucket": {"groupBy": "$year_born", "boundaries": [1850, 1865], "default": "Other"}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1850, "count": 4}),
            json!({"_id": "Other", "count": 4})
        ]
    );
    // Manual, $bucket: without a default, a value outside every bucket is an error.
    let f = fx();
    f.load("artists", artists());
    let e = f.error(
        "artists",
        json!([{"$bucket": {"groupBy": "$year_born", "boundaries": [1850, 1865]}}]),
    );
    assert!(
        matches!(&e, Error::TypeMismatch { operator, .. } if operator == "$bucket"),
        "{e}"
    );
    for (spec, needle) in [
        (json!({"groupBy": "$y", "boundaries": [1]}), "at least two"),
        (json!({"groupBy": "$y", "boundaries": [3, 1]}), "ascending"),
        (
            json!({"groupBy": "$y", "boundaries": [1, "a"]}),
            "same type",
        ),
        (
            json!({"groupBy": "$y", "boundaries": [1, 5], "default": 3}),
            "'default'",
        ),
        (json!({"groupBy": "y", "boundaries": [1, 5]}), "'groupBy'"),
        (json!({"boundaries": [1, 5]}), "'groupBy'"),
    ] {
        let e = f.error("artists", json!([{"$bucket": spec.clone()}]));
        assert!(
            matches!(&e, Error::InvalidPipeline(m) if m.contains(needle)),
            "{spec}: {e}"
        );
    }
}

#[test]
fn facet_example() {
    // Manual, $facet: "Example" (the artwork collection; prices as doubles, and
    // the manual's $bucketAuto facet left out: $bucketAuto is not supported).
    let artwork = vec![
        json!({"_id": 1, "title": "The Pillars of Society", "artist": "Grosz", "year": 1926, "price": 199.99, "tags": ["painting", "satire", "Expressionism", "caricature"]}),
        json!({"_id": 2, "title": "Melancholy III", "artist": "Munch", "year": 1902, "price": 280.00, "tags": ["woodcut", "Expressionism"]}),
        json!({"_id": 3, "title": "Dancer", "artist": "Miro", "year": 1925, "price": 76.04, "tags": ["oil", "Surrealism", "painting"]}),
        json!({"_id": 4, "title": "The Great Wave off Kanagawa", "artist": "Hokusai", "price": 167.30, "tags": ["woodblock", "ukiyo-e"]}),
        json!({"_id": 5, "title": "The Persistence of Memory", "artist": "Dali", "year": 1931, "price": 483.00, "tags": ["Surrealism", "painting", "oil"]}),
        json!({"_id": 6, "title": "Composition VII", "artist": "Kandinsky", "year": 1913, "price": 385.00, "tags": ["oil", "painting", "abstract"]}),
        json!({"_id": 7, "title": "The Scream", "artist": "Munch", "year": 1893, "tags": ["Expressionism", "painting", "oil"]}),
        json!({"_id": 8, "title": "Blue Flower", "artist": "O'Keefe", "year": 1918, "price": 118.42, "tags": ["abstract", "painting"]}),
    ];
    let out = run(
        artwork,
        json!([{"$facet": {
            "categorizedByTags": [{"$unwind": "$tags"}, {"$sortByCount": "$tags"}, {"$limit": 3}],
            "categorizedByPrice": [
                {"$match": {"price": {"$exists": 1}}},
                {"$bucket": {"groupBy": "$price", "boundaries": [0, 150, 200, 300, 400], "default": "Other",
                    "output": {"count": {"$sum": 1}, "titles": {"$push": "$title"}}}}
            ],
            "total": [{"$count": "n"}]
        }}]),
    );
    assert_eq!(
        out,
        vec![json!({
            "categorizedByTags": [{"_id": "painting", "count": 6}, {"_id": "oil", "count": 4}, {"_id": "Expressionism", "count": 3}],
            "categorizedByPrice": [
                {"_id": 0, "count": 2, "titles": ["Dancer", "Blue Flower"]},
                {"_id": 150, "count": 2, "titles": ["The Pillars of Society", "The Great Wave off Kanagawa"]},
                {"_id": 200, "count": 1, "titles": ["Melancholy III"]},
                {"_id": 300, "count": 1, "titles": ["Composition VII"]},
                {"_id": "Other", "count": 1, "titles": ["The Persistence of Memory"]}
            ],
            "total": [{"n": 8}]
        })]
    );
    // With no input, one document of empty arrays.
    assert_eq!(
        run(
            vec![],
            json!([{"$facet": {"a": [{"$match": {}}], "b": [{"$count": "n"}]}}])
        ),
        vec![json!({"a": [], "b": []})]
    );
    let f = fx();
    f.load("c", vec![json!({"_id": 1})]);
    let e = f.error("c", json!([{"$facet": {"a": [{"$facet": {"b": []}}]}}]));
    assert!(
        matches!(&e, Error::InvalidPipeline(m) if m.contains("inside a $facet")),
        "{e}"
    );
    let e = f.error("c", json!([{"$facet": {"a": [{"$group": {}}]}}]));
    assert!(
        matches!(&e, Error::InvalidPipeline(m) if m.contains("of the pipeline in stage 1 ($facet)")),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// $lookup
// ---------------------------------------------------------------------------

#[test]
fn lookup_equality_match() {
    // Manual, $lookup: "Perform a Single Equality Join with $lookup" (a missing
    // localField matches null and missing foreign fields).
    let f = fx();
    f.load(
        "orders",
        vec![
            json!({"_id": 1, "item": "almonds", "price": 12, "quantity": 2}),
            json!({"_id": 2, "item": "pecans", "price": 20, "quantity": 1}),
            json!({"_id": 3}),
        ],
    );
    f.load(
        "inventory",
        vec![
            json!({"_id": 1, "sku": "almonds", "description": "product 1", "instock": 120}),
            json!({"_id": 2, "sku": "bread", "description": "product 2", "instock": 80}),
            json!({"_id": 3, "sku": "cashews", "description": "product 3", "instock": 60}),
            json!({"_id": 4, "sku": "pecans", "description": "product 4", "instock": 70}),
            json!({"_id": 5, "sku": null, "description": "Incomplete"}),
            json!({"_id": 6}),
        ],
    );
    let pipeline = json!([{"$lookup": {"from": "inventory", "localField": "item", "foreignField": "sku", "as": "inventory_docs"}}]);
    let want = vec![
        json!({"_id": 1, "item": "almonds", "price": 12, "quantity": 2, "inventory_docs": [
            {"_id": 1, "sku": "almonds", "description": "product 1", "instock": 120}]}),
        json!({"_id": 2, "item": "pecans", "price": 20, "quantity": 1, "inventory_docs": [
            {"_id": 4, "sku": "pecans", "description": "product 4", "instock": 70}]}),
        json!({"_id": 3, "inventory_docs": [{"_id": 5, "sku": null, "description": "Incomplete"}, {"_id": 6}]}),
    ];
    assert_eq!(f.run("orders", pipeline.clone()), want);
    // The same through an index on the foreign field.
    f.db.collection("inventory")
        .unwrap()
        .create_index(IndexSpec::new([("sku", 1)]))
        .unwrap();
    assert_eq!(by_id(f.run("orders", pipeline)), want);
    // Manual, $lookup: "Use $lookup with an Array" (each element is looked up).
    f.load(
        "classes",
        vec![
            json!({"_id": 1, "title": "Reading is ...", "enrollmentlist": ["giraffe2", "pandabear", "artie"], "days": ["M", "W", "F"]}),
            json!({"_id": 2, "title": "But Writing ...", "enrollmentlist": ["giraffe1", "artie"], "days": ["T", "F"]}),
        ],
    );
    f.load(
        "members",
        vec![
            json!({"_id": 1, "name": "artie", "joined": date("2016-05-01T00:00:00Z"), "status": "A"}),
            json!({"_id": 2, "name": "giraffe", "joined": date("2017-05-01T00:00:00Z"), "status": "D"}),
            json!({"_id": 3, "name": "giraffe1", "joined": date("2017-10-01T00:00:00Z"), "status": "A"}),
            json!({"_id": 4, "name": "panda", "joined": date("2018-10-11T00:00:00Z"), "status": "A"}),
            json!({"_id": 5, "name": "pandabear", "joined": date("2018-12-01T00:00:00Z"), "status": "A"}),
            json!({"_id": 6, "name": "giraffe2", "joined": date("2018-12-01T00:00:00Z"), "status": "D"}),
        ],
    );
    let out = f.run(
        "classes",
        json!([{"$lookup": {"from": "members", "localField": "enrollmentlist", "foreignField": "name", "as": "enrollee_info"}},
               {"$project": {"names": "$enrollee_info.name"}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "names": ["artie", "pandabear", "giraffe2"]}),
            json!({"_id": 2, "names": ["artie", "giraffe1"]})
        ]
    );
    // A collection that does not exist joins nothing.
    let out = f.run("orders", json!([{"$lookup": {"from": "nowhere", "localField": "item", "foreignField": "x", "as": "n"}}, {"$project": {"n": 1}}]));
    assert_eq!(out[0], json!({"_id": 1, "n": []}));
}

#[test]
fn lookup_pipelines() {
    let f = fx();
    f.load(
        "orders",
        vec![
            json!({"_id": 1, "item": "almonds", "price": 12, "ordered": 2}),
            json!({"_id": 2, "item": "pecans", "price": 20, "ordered": 1}),
            json!({"_id": 3, "item": "cookies", "price": 10, "ordered": 60}),
        ],
    );
    f.load(
        "warehouses",
        vec![
            json!({"_id": 1, "stock_item": "almonds", "warehouse": "A", "instock": 120}),
            json!({"_id": 2, "stock_item": "pecans", "warehouse": "A", "instock": 80}),
            json!({"_id": 3, "stock_item": "almonds", "warehouse": "B", "instock": 60}),
            json!({"_id": 4, "stock_item": "cookies", "warehouse": "B", "instock": 40}),
            json!({"_id": 5, "stock_item": "cookies", "warehouse": "A", "instock": 80}),
        ],
    );
    // Manual, $lookup: "Perform Multiple Joins and a Correlated Subquery with $lookup".
    let out = f.run(
        "orders",
        json!([{"$lookup": {
            "from": "warehouses",
            "let": {"order_item": "$item", "order_qty": "$ordered"},
            "pipeline": [
                {"$match": {"$expr": {"$and": [{"$eq": ["$stock_item", "$$order_item"]}, {"$gte": ["$instock", "$$order_qty"]}]}}},
                {"$project": {"stock_item": 0, "_id": 0}}
            ],
            "as": "stockdata"
        }}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "item": "almonds", "price": 12, "ordered": 2, "stockdata": [{"warehouse": "A", "instock": 120}, {"warehouse": "B", "instock": 60}]}),
            json!({"_id": 2, "item": "pecans", "price": 20, "ordered": 1, "stockdata": [{"warehouse": "A", "instock": 80}]}),
            json!({"_id": 3, "item": "cookies", "price": 10, "ordered": 60, "stockdata": [{"warehouse": "A", "instock": 80}]}),
        ]
    );
    // Manual, $lookup: "Perform an Uncorrelated Subquery with $lookup".
    f.load(
        "absences",
        vec![
            json!({"_id": 1, "student": "Ann Aardvark", "sickdays": [date("2018-05-01T00:00:00Z"), date("2018-08-23T00:00:00Z")]}),
            json!({"_id": 2, "student": "Zoe Zebra", "sickdays": [date("2018-02-01T00:00:00Z"), date("2018-05-23T00:00:00Z")]}),
        ],
    );
    f.load(
        "holidays",
        vec![
            json!({"_id": 1, "year": 2018, "name": "New Years", "date": date("2018-01-01T00:00:00Z")}),
            json!({"_id": 2, "year": 2018, "name": "Pi Day", "date": date("2018-03-14T00:00:00Z")}),
            json!({"_id": 3, "year": 2018, "name": "Ice Cream Day", "date": date("2018-07-15T00:00:00Z")}),
            json!({"_id": 4, "year": 2017, "name": "New Years", "date": date("2017-01-01T00:00:00Z")}),
            json!({"_id": 5, "year": 2017, "name": "Ice Cream Day", "date": date("2017-07-16T00:00:00Z")}),
        ],
    );
    let out = f.run(
        "absences",
        json!([{"$lookup": {
            "from": "holidays",
            "pipeline": [{"$match": {"year": 2018}}, {"$project": {"_id": 0, "date": {"name": "$name", "date": "$date"}}}, {"$replaceRoot": {"newRoot": "$date"}}],
            "as": "holidays"
        }}, {"$project": {"student": 1, "holidays": 1}}]),
    );
    let holidays = json!([
        {"name": "New Years", "date": date("2018-01-01T00:00:00Z")},
        {"name": "Pi Day", "date": date("2018-03-14T00:00:00Z")},
        {"name": "Ice Cream Day", "date": date("2018-07-15T00:00:00Z")}
    ]);
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "student": "Ann Aardvark", "holidays": holidays}),
            json!({"_id": 2, "student": "Zoe Zebra", "holidays": holidays}),
        ]
    );
    // Manual, $lookup: "Perform a Concise Correlated Subquery" (equality fields and a pipeline).
    let out = f.run(
        "orders",
        json!([{"$lookup": {"from": "warehouses", "localField": "item", "foreignField": "stock_item",
                             "let": {"q": "$ordered"}, "pipeline": [{"$match": {"$expr": {"$gte": ["$instock", {"$multiply": ["$$q", 2]}]}}}, {"$project": {"warehouse": 1, "_id": 0}}],
                             "as": "w"}}, {"$project": {"w": 1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "w": [{"warehouse": "A"}, {"warehouse": "B"}]}),
            json!({"_id": 2, "w": [{"warehouse": "A"}]}),
            json!({"_id": 3, "w": []}),
        ]
    );
    // Nested lookups see the outer let variables.
    let out = f.run(
        "orders",
        json!([{"$match": {"_id": 1}}, {"$lookup": {"from": "warehouses", "let": {"it": "$item"}, "as": "w", "pipeline": [
            {"$match": {"$expr": {"$eq": ["$stock_item", "$$it"]}}},
            {"$lookup": {"from": "orders", "let": {"wh": "$warehouse"}, "as": "o", "pipeline": [
                {"$match": {"$expr": {"$eq": ["$item", "$$it"]}}}, {"$project": {"_id": 0, "tag": {"$concat": ["$$it", "@", "$$wh"]}}}]}},
            {"$project": {"_id": 0, "o": 1}}]}}, {"$project": {"w": 1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "w": [{"o": [{"tag": "almonds@A"}]}, {"o": [{"tag": "almonds@B"}]}]})
        ]
    );
    for (spec, needle) in [
        (
            json!({"from": "w", "as": "x"}),
            "'localField' and 'foreignField', or a 'pipeline'",
        ),
        (
            json!({"from": "w", "localField": "a", "as": "x"}),
            "go together",
        ),
        (
            json!({"from": "w", "localField": "$a", "foreignField": "b", "as": "x"}),
            "without '$'",
        ),
        (
            json!({"from": "w", "let": {"v": 1}, "localField": "a", "foreignField": "b", "as": "x"}),
            "'let' needs a 'pipeline'",
        ),
        (
            json!({"from": "w", "pipeline": [{"$match": {"$expr": "$$nope"}}], "as": "x"}),
            "undefined variable",
        ),
        (json!({"from": "", "pipeline": [], "as": "x"}), "'from'"),
        (
            json!({"from": "w", "pipeline": [], "as": "x", "extra": 1}),
            "does not take a field 'extra'",
        ),
    ] {
        let e = f.error("orders", json!([{"$lookup": spec.clone()}]));
        assert!(
            matches!(&e, Error::InvalidPipeline(m) if m.contains(needle)),
            "{spec}: {e}"
        );
    }
}

// ---------------------------------------------------------------------------
// Pipeline errors, entry points, iteration
// ---------------------------------------------------------------------------

#[test]
fn pipeline_shape_errors() {
    let f = fx();
    f.load("c", vec![json!({"_id": 1, "a": 1})]);
    for (p, needle) in [
        (json!({"$match": {}}), "must be an array"),
        (json!([1]), "exactly one field"),
        (json!([{"$match": {}, "$limit": 1}]), "exactly one field"),
        (
            json!([{"$frob": {}}]),
            "unknown or unsupported stage '$frob'",
        ),
        (json!([{"$out": "x"}]), "writing from a pipeline"),
        (json!([{"$merge": "x"}]), "writing from a pipeline"),
        (json!([{"$limit": 0}]), "positive whole number"),
        (json!([{"$limit": -1}]), "positive whole number"),
        (json!([{"$limit": 1.5}]), "positive whole number"),
        (json!([{"$skip": -1}]), "non-negative"),
        (json!([{"$sort": {}}]), "at least one field"),
        (
            json!([{"$match": {"$expr": 1}}, {"$replaceRoot": {}}]),
            "stage 2 ($replaceRoot)",
        ),
        (
            json!([{"$match": {"$and": [{"$expr": true}]}}]),
            "top level of $match",
        ),
    ] {
        let e = f.error("c", p.clone());
        assert!(
            matches!(&e, Error::InvalidPipeline(m) if m.contains(needle)),
            "{p}: {e}"
        );
    }
    // Filters and sorts keep their own error kinds, with the stage named.
    let e = f.error(
        "c",
        json!([{"$project": {"a": 1}}, {"$match": {"a": {"$bogus": 1}}}]),
    );
    assert!(
        matches!(&e, Error::InvalidFilter(m) if m.contains("stage 2 ($match)")),
        "{e}"
    );
    let e = f.error("c", json!([{"$sort": {"a": 2}}]));
    assert!(
        matches!(&e, Error::InvalidSort(m) if m.contains("stage 1 ($sort)")),
        "{e}"
    );
    let e = f.error("c", json!([{"$match": {"a": {"$regex": "("}}}]));
    assert!(matches!(&e, Error::InvalidRegex { .. }), "{e}");
    // A malformed pipeline reads nothing and fails the same on an empty collection.
    let e = f.error("empty", json!([{"$frob": {}}]));
    assert!(matches!(e, Error::InvalidPipeline(_)));
}

#[derive(Document, Serialize, Deserialize, Debug, PartialEq)]
#[document(collection = "people")]
struct Person {
    #[document(id)]
    id: u64,
    name: String,
    city: String,
    age: u32,
}

#[derive(Deserialize, Debug, PartialEq)]
struct CityCount {
    #[serde(rename = "_id")]
    city: String,
    n: u32,
    avg_age: f64,
}

fn people() -> Vec<Person> {
    vec![
        Person {
            id: 1,
            name: "Ann".into(),
            city: "Oslo".into(),
            age: 30,
        },
        Person {
            id: 2,
            name: "Bob".into(),
            city: "Rome".into(),
            age: 40,
        },
        Person {
            id: 3,
            name: "Cid".into(),
            city: "Oslo".into(),
            age: 50,
        },
    ]
}

const BY_CITY: &str = r#"[{"$group": {"_id": "$city", "n": {"$sum": 1}, "avg_age": {"$avg": "$age"}}}, {"$sort": {"_id": 1}}]"#;

#[test]
fn typed_and_transaction_entry_points() {
    let f = fx();
    let people_coll = f.db.typed::<Person>().unwrap();
    people_coll.insert_many(&people()).unwrap();
    let pipeline: Value = serde_json::from_str(BY_CITY).unwrap();
    let want = vec![
        CityCount {
            city: "Oslo".into(),
            n: 2,
            avg_age: 40.0,
        },
        CityCount {
            city: "Rome".into(),
            n: 1,
            avg_age: 40.0,
        },
    ];
    // Typed collection, typed output.
    assert_eq!(
        people_coll
            .aggregate(pipeline.clone())
            .to_vec_as::<CityCount>()
            .unwrap(),
        want
    );
    assert_eq!(
        people_coll
            .aggregate(pipeline.clone())
            .aggregate_as::<CityCount>()
            .to_vec()
            .unwrap(),
        want
    );
    let iterated: Vec<CityCount> = people_coll
        .aggregate(pipeline.clone())
        .aggregate_as::<CityCount>()
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(iterated, want);
    // Stored documents straight into the collection's own type.
    let oslo: Vec<Person> = people_coll
        .aggregate(json!([{"$match": {"city": "Oslo"}}]))
        .to_vec_as()
        .unwrap();
    assert_eq!(oslo, vec![people().remove(0), people().remove(2)]);
    // A document that does not fit names itself.
    let e = people_coll
        .aggregate(json!([{"$project": {"city": 1}}]))
        .to_vec_as::<Person>()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Decode { collection, .. } if collection == "people"),
        "{e}"
    );
    // Inside a transaction the pipeline sees the transaction's own writes.
    f.db.transaction(|tx| {
        let c = tx.collection("people")?;
        c.insert_one(json!({"id": 4, "name": "Dag", "city": "Rome", "age": 20}))?;
        let out = c.aggregate(pipeline.clone()).to_vec()?;
        assert_eq!(out[1], json!({"_id": "Rome", "n": 2, "avg_age": 30.0}));
        let iterated: Vec<Value> = c
            .aggregate(pipeline.clone())
            .into_iter()
            .collect::<Result<_, _>>()?;
        assert_eq!(iterated, out);
        let typed = tx.typed::<Person>()?;
        assert_eq!(
            typed.aggregate(json!([{"$count": "n"}])).to_vec()?,
            vec![json!({"n": 4})]
        );
        Err::<(), _>(Error::Aborted("look, do not keep".into()))
    })
    .unwrap_err();
    assert_eq!(
        people_coll
            .aggregate(json!([{"$count": "n"}]))
            .to_vec()
            .unwrap(),
        vec![json!({"n": 3})]
    );
}

#[test]
fn async_entry_point() {
    let f = fx();
    f.db.typed::<Person>()
        .unwrap()
        .insert_many(&people())
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let adb = collection_store::AsyncDatabase::from(f.db.clone());
    rt.block_on(async {
        let c = adb.collection("people").await.unwrap();
        let pipeline: Value = serde_json::from_str(BY_CITY).unwrap();
        let out = c.aggregate(pipeline.clone()).to_vec().await.unwrap();
        assert_eq!(out[0], json!({"_id": "Oslo", "n": 2, "avg_age": 40.0}));
        let typed = c
            .aggregate(pipeline.clone())
            .memory_limit(1 << 20)
            .to_vec_as::<CityCount>()
            .await
            .unwrap();
        assert_eq!(typed.len(), 2);
        let e = c.aggregate(pipeline).explain().await.unwrap();
        assert_eq!(e.stages[0].stage, "$group");
        let bad = c
            .aggregate(json!([{"$nope": 1}]))
            .to_vec()
            .await
            .unwrap_err();
        assert!(matches!(bad, Error::InvalidPipeline(_)));
    });
}

#[test]
fn iteration_streams_and_stops_early() {
    let f = fx();
    let c = f.db.collection("big").unwrap();
    let docs: Vec<Value> = (0..5000).map(|i| json!({"_id": i, "v": i % 7})).collect();
    c.insert_many(docs).unwrap();
    // Streaming: documents arrive in batches from the reader thread.
    let mut it = c
        .aggregate(json!([{"$match": {"v": 3}}, {"$project": {"w": {"$multiply": ["$v", 2]}}}]))
        .into_iter();
    let first: Vec<Value> = it.by_ref().take(3).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        first,
        vec![
            json!({"_id": 3, "w": 6}),
            json!({"_id": 10, "w": 6}),
            json!({"_id": 17, "w": 6})
        ]
    );
    let rest = it.count();
    assert_eq!(rest, (0..5000).filter(|i| i % 7 == 3).count() - 3);
    // Dropping an iterator part way stops its reader; a new one still works.
    for _ in 0..20 {
        let mut it = c.aggregate(json!([{"$project": {"v": 1}}])).into_iter();
        assert!(it.next().unwrap().is_ok());
        drop(it);
    }
    // Errors surface through the iterator (here while parsing).
    let mut it = c.aggregate(json!([{"$nope": 1}])).into_iter();
    assert!(matches!(it.next(), Some(Err(Error::InvalidPipeline(_)))));
    assert!(it.next().is_none());
    // ... and while running (a data-dependent error in document 2).
    let results: Vec<_> = c
        .aggregate(json!([{"$project": {"r": {"$divide": [1, {"$subtract": ["$_id", 2]}]}}}]))
        .into_iter()
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    assert!(
        matches!(results.last(), Some(Err(Error::TypeMismatch { .. }))),
        "{:?}",
        results.last()
    );
    // Iterating the same pipeline gives what to_vec gives.
    let p = json!([{"$match": {"v": {"$gte": 5}}}, {"$group": {"_id": "$v", "n": {"$sum": 1}}}]);
    let a = c.aggregate(p.clone()).to_vec().unwrap();
    let b: Vec<Value> = c
        .aggregate(p)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(a, b);
}
