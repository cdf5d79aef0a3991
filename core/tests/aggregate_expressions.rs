//! Aggregation expression operators, checked against the examples of the
//! MongoDB manual (https://www.mongodb.com/docs/manual/reference/operator/aggregation/).
//! Each case names the manual page and example it reproduces; where the
//! manual's example needs something collection-store does not have (Olson time
//! zones, Decimal128, `NumberLong` for small values), the case says what it
//! changed. Results are compared as JSON, so number types matter: `10.0` (a
//! double, what MongoDB returns for `$divide`, `$avg`, `$ceil` of a double)
//! is not `10`.
//!
//! Null, missing and type-error behaviour per operator follows the examples;
//! `null_and_missing_rules` and `type_errors_are_typed` collect the cases the
//! manual states in prose.

use collection_store::{Database, Error};
use serde_json::{json, Value};

/// A database in a temporary directory (`db` first: it closes before the directory goes).
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

/// `docs` through `[{$project: projection}]`.
fn project(docs: Vec<Value>, projection: Value) -> Vec<Value> {
    let f = fx();
    f.load("c", docs);
    f.run("c", json!([{ "$project": projection }]))
}

/// The value of `expr` evaluated on `{_id: 1}`; `None` when it is missing.
fn eval(expr: Value) -> Option<Value> {
    let out = project(vec![json!({"_id": 1})], json!({"_id": 0, "r": expr}));
    assert_eq!(out.len(), 1);
    out[0].get("r").cloned()
}

fn date(s: &str) -> Value {
    json!({ "$date": s })
}

// ---------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------

fn add_sales() -> Vec<Value> {
    vec![
        json!({"_id": 1, "item": "abc", "price": 10, "fee": 2, "date": date("2014-03-01T08:00:00Z")}),
        json!({"_id": 2, "item": "jkl", "price": 20, "fee": 1, "date": date("2014-03-01T09:00:00Z")}),
        json!({"_id": 3, "item": "xyz", "price": 5, "fee": 0, "date": date("2014-03-15T09:00:00Z")}),
    ]
}

#[test]
fn add_numbers_and_dates() {
    // Manual, $add: "Add Numbers".
    assert_eq!(
        project(
            add_sales(),
            json!({"item": 1, "total": {"$add": ["$price", "$fee"]}})
        ),
        vec![
            json!({"_id": 1, "item": "abc", "total": 12}),
            json!({"_id": 2, "item": "jkl", "total": 21}),
            json!({"_id": 3, "item": "xyz", "total": 5}),
        ]
    );
    // Manual, $add: "Perform Addition on a Date" (3 days in milliseconds).
    assert_eq!(
        project(
            add_sales(),
            json!({"item": 1, "billing_date": {"$add": ["$date", 3 * 24 * 60 * 60000]}})
        ),
        vec![
            json!({"_id": 1, "item": "abc", "billing_date": date("2014-03-04T08:00:00Z")}),
            json!({"_id": 2, "item": "jkl", "billing_date": date("2014-03-04T09:00:00Z")}),
            json!({"_id": 3, "item": "xyz", "billing_date": date("2014-03-18T09:00:00Z")}),
        ]
    );
}

#[test]
fn subtract_numbers_and_dates() {
    let sales = vec![
        json!({"_id": 1, "item": "abc", "price": 10, "fee": 2, "discount": 5, "date": date("2014-03-01T08:00:00Z")}),
        json!({"_id": 2, "item": "jkl", "price": 20, "fee": 1, "discount": 2, "date": date("2014-03-01T09:00:00Z")}),
    ];
    // Manual, $subtract: "Subtract Numbers".
    assert_eq!(
        project(
            sales.clone(),
            json!({"item": 1, "total": {"$subtract": [{"$add": ["$price", "$fee"]}, "$discount"]}})
        ),
        vec![
            json!({"_id": 1, "item": "abc", "total": 7}),
            json!({"_id": 2, "item": "jkl", "total": 19}),
        ]
    );
    // Manual, $subtract: "Subtract Milliseconds from a Date" (5 minutes).
    assert_eq!(
        project(
            sales.clone(),
            json!({"item": 1, "dateDifference": {"$subtract": ["$date", 5 * 60 * 1000]}})
        ),
        vec![
            json!({"_id": 1, "item": "abc", "dateDifference": date("2014-03-01T07:55:00Z")}),
            json!({"_id": 2, "item": "jkl", "dateDifference": date("2014-03-01T08:55:00Z")}),
        ]
    );
    // Manual, $subtract: "Subtract Two Dates" gives milliseconds (against a fixed date here, not $$NOW).
    assert_eq!(
        project(
            sales,
            json!({"_id": 0, "ms": {"$subtract": [{"$literal": date("2014-03-02T08:00:00Z")}, "$date"]}})
        ),
        vec![json!({"ms": 86_400_000}), json!({"ms": 82_800_000})]
    );
}

#[test]
fn multiply_divide_mod() {
    // Manual, $multiply: "Multiply Using Field Paths".
    let sales = vec![
        json!({"_id": 1, "item": "abc", "price": 10, "quantity": 2}),
        json!({"_id": 2, "item": "jkl", "price": 20, "quantity": 1}),
        json!({"_id": 3, "item": "xyz", "price": 5, "quantity": 10}),
    ];
    let out = project(
        sales,
        json!({"_id": 0, "total": {"$multiply": ["$price", "$quantity"]}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"total": 20}),
            json!({"total": 20}),
            json!({"total": 50})
        ]
    );
    // Manual, $divide: "Divide Using Field Paths" (always a double).
    let planning = vec![
        json!({"_id": 1, "name": "A", "hours": 80, "resources": 7}),
        json!({"_id": 2, "name": "B", "hours": 40, "resources": 4}),
    ];
    assert_eq!(
        project(
            planning,
            json!({"name": 1, "workdays": {"$divide": ["$hours", 8]}})
        ),
        vec![
            json!({"_id": 1, "name": "A", "workdays": 10.0}),
            json!({"_id": 2, "name": "B", "workdays": 5.0}),
        ]
    );
    // Manual, $mod: "Example".
    let tasks = vec![
        json!({"_id": 1, "project": "A", "hours": 80, "tasks": 7}),
        json!({"_id": 2, "project": "B", "hours": 40, "tasks": 4}),
    ];
    assert_eq!(
        project(tasks, json!({"remainder": {"$mod": ["$hours", "$tasks"]}})),
        vec![
            json!({"_id": 1, "remainder": 3}),
            json!({"_id": 2, "remainder": 0})
        ]
    );
    // Manual, $mod: "Negative Dividend" — the sign follows the dividend.
    assert_eq!(eval(json!({"$mod": [-5, 3]})), Some(json!(-2)));
    assert_eq!(eval(json!({"$mod": [5.5, 2]})), Some(json!(1.5)));
}

#[test]
fn abs_ceil_floor_round_trunc() {
    // Manual, $abs: "Example" (temperature changes).
    let temps = vec![
        json!({"_id": 1, "startTemp": 50, "endTemp": 60}),
        json!({"_id": 2, "startTemp": 40, "endTemp": 40}),
        json!({"_id": 3, "startTemp": 90, "endTemp": 70}),
        json!({"_id": 4, "startTemp": 60, "endTemp": 70}),
    ];
    let out = project(
        temps,
        json!({"_id": 0, "delta": {"$abs": {"$subtract": ["$startTemp", "$endTemp"]}}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"delta": 10}),
            json!({"delta": 0}),
            json!({"delta": 20}),
            json!({"delta": 10})
        ]
    );
    // Manual, $ceil and $floor: "Example".
    let samples = || {
        vec![
            json!({"_id": 1, "value": 9.25}),
            json!({"_id": 2, "value": 8.73}),
            json!({"_id": 3, "value": 4.32}),
            json!({"_id": 4, "value": -5.34}),
        ]
    };
    let out = project(
        samples(),
        json!({"_id": 0, "c": {"$ceil": "$value"}, "f": {"$floor": "$value"}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"c": 10.0, "f": 9.0}),
            json!({"c": 9.0, "f": 8.0}),
            json!({"c": 5.0, "f": 4.0}),
            json!({"c": -5.0, "f": -6.0}),
        ]
    );
    // Manual, $round and $trunc: "Example" (one decimal place; $round rounds half to even).
    let values = vec![
        json!({"_id": 1, "value": 19.25}),
        json!({"_id": 2, "value": 28.73}),
        json!({"_id": 3, "value": 34.32}),
        json!({"_id": 4, "value": -45.39}),
    ];
    let out = project(
        values,
        json!({"_id": 0, "r": {"$round": ["$value", 1]}, "t": {"$trunc": ["$value", 1]}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"r": 19.2, "t": 19.2}),
            json!({"r": 28.7, "t": 28.7}),
            json!({"r": 34.3, "t": 34.3}),
            json!({"r": -45.4, "t": -45.3}),
        ]
    );
    // Manual, $round: "Behavior" — half to even, negative places, integers stay integers.
    assert_eq!(eval(json!({"$round": [10.5, 0]})), Some(json!(10.0)));
    assert_eq!(eval(json!({"$round": [11.5, 0]})), Some(json!(12.0)));
    assert_eq!(eval(json!({"$round": [1234, -2]})), Some(json!(1200)));
    assert_eq!(eval(json!({"$round": [1250, -2]})), Some(json!(1200)));
    assert_eq!(eval(json!({"$trunc": [1299, -2]})), Some(json!(1200)));
    assert_eq!(eval(json!({"$round": [null, 0]})), Some(json!(null)));
}

#[test]
fn sqrt_pow_exp_ln_log() {
    // Manual, $sqrt: "Example" (distance between points).
    let points = vec![
        json!({"_id": 1, "p1": {"x": 5, "y": 8}, "p2": {"x": 0, "y": 5}}),
        json!({"_id": 2, "p1": {"x": -3, "y": 7}, "p2": {"x": 4, "y": 0}}),
    ];
    let out = project(
        points,
        json!({"_id": 0, "distance": {"$sqrt": {"$add": [
            {"$pow": [{"$subtract": ["$p2.y", "$p1.y"]}, 2]},
            {"$pow": [{"$subtract": ["$p2.x", "$p1.x"]}, 2]}
        ]}}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"distance": 5.830951894845301}),
            json!({"distance": 9.899494936611665})
        ]
    );
    // Manual, $pow: "Example" (variance of quiz scores as the square of $stdDevPop).
    let quizzes = vec![
        json!({"_id": 1, "scores": [{"name": "dave123", "score": 85}, {"name": "dave2", "score": 90}, {"name": "ahn", "score": 71}]}),
        json!({"_id": 2, "scores": [{"name": "li", "quiz": 2, "score": 96}, {"name": "annT", "score": 77}, {"name": "ty", "score": 82}]}),
    ];
    let out = project(
        quizzes,
        json!({"variance": {"$pow": [{"$stdDevPop": "$scores.score"}, 2]}}),
    );
    for (doc, id) in out.iter().zip([1, 2]) {
        assert_eq!(doc["_id"], json!(id));
        let v = doc["variance"].as_f64().unwrap();
        assert!((v - 64.66666666666667).abs() < 1e-9, "{doc}");
    }
    // Manual, $exp: "Example" (effective interest rate).
    let accounts = vec![
        json!({"_id": 1, "interestRate": 0.08, "presentValue": 10000}),
        json!({"_id": 2, "interestRate": 0.0825, "presentValue": 250000}),
        json!({"_id": 3, "interestRate": 0.0425, "presentValue": 1000}),
    ];
    let out = project(
        accounts,
        json!({"_id": 0, "effectiveRate": {"$subtract": [{"$exp": "$interestRate"}, 1]}}),
    );
    let want = [
        0.08328706767495864,
        0.08599867343905654,
        0.04341605637367807,
    ];
    for (doc, w) in out.iter().zip(want) {
        assert!(
            (doc["effectiveRate"].as_f64().unwrap() - w).abs() < 1e-15,
            "{doc}"
        );
    }
    // Manual, $ln: "Example" (sales over years).
    let sales = vec![
        json!({"_id": 1, "year": "2000", "sales": 8700000}),
        json!({"_id": 2, "year": "2005", "sales": 5000000}),
        json!({"_id": 3, "year": "2010", "sales": 6250000}),
    ];
    let out = project(
        sales,
        json!({"_id": 0, "x": "$year", "y": {"$ln": "$sales"}}),
    );
    let want = [15.978833583624812, 15.424948470398375, 15.648092021712584];
    for (doc, w) in out.iter().zip(want) {
        assert!((doc["y"].as_f64().unwrap() - w).abs() < 1e-12, "{doc}");
    }
    // Manual, $log: "Example" (bits needed to represent integers).
    let ints = vec![
        json!({"_id": 1, "int": 5}),
        json!({"_id": 2, "int": 2}),
        json!({"_id": 3, "int": 23}),
        json!({"_id": 4, "int": 10}),
    ];
    let out = project(
        ints,
        json!({"_id": 0, "bitsNeeded": {"$floor": {"$add": [1, {"$log": ["$int", 2]}]}}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"bitsNeeded": 3.0}),
            json!({"bitsNeeded": 2.0}),
            json!({"bitsNeeded": 5.0}),
            json!({"bitsNeeded": 4.0}),
        ]
    );
    // Manual, $log10: "Example" (pH values).
    let samples = vec![
        json!({"_id": 1, "H3O": 0.0025}),
        json!({"_id": 2, "H3O": 0.001}),
        json!({"_id": 3, "H3O": 0.02}),
    ];
    let out = project(
        samples,
        json!({"_id": 0, "pH": {"$multiply": [-1, {"$log10": "$H3O"}]}}),
    );
    let want = [2.6020599913279625, 3.0, 1.6989700043360187];
    for (doc, w) in out.iter().zip(want) {
        assert!((doc["pH"].as_f64().unwrap() - w).abs() < 1e-12, "{doc}");
    }
    // Manual, $pow: integer results stay integers; $sqrt/$ln of negatives are errors.
    assert_eq!(eval(json!({"$pow": [5, 0]})), Some(json!(1)));
    assert_eq!(eval(json!({"$pow": [2, -2]})), Some(json!(0.25)));
}

#[test]
fn integer_overflow_widens_to_double() {
    // Manual, $add/$multiply: int + int stays int, an overflow of 64 bits is a double.
    assert_eq!(
        eval(json!({"$add": [i64::MAX, 1]})),
        Some(json!(9.223372036854776e18))
    );
    assert_eq!(
        eval(json!({"$multiply": [4294967296i64, 4294967296i64]})),
        Some(json!(1.8446744073709552e19))
    );
    assert_eq!(
        eval(json!({"$add": [2147483647, 1]})),
        Some(json!(2147483648i64))
    );
    assert_eq!(eval(json!({"$add": [1, 2.5]})), Some(json!(3.5)));
}

// ---------------------------------------------------------------------------
// Comparison and boolean
// ---------------------------------------------------------------------------

fn inventory_qty() -> Vec<Value> {
    vec![
        json!({"_id": 1, "item": "abc1", "description": "product 1", "qty": 300}),
        json!({"_id": 2, "item": "abc2", "description": "product 2", "qty": 200}),
        json!({"_id": 3, "item": "xyz1", "description": "product 3", "qty": 250}),
        json!({"_id": 4, "item": "VWZ1", "description": "product 4", "qty": 300}),
        json!({"_id": 5, "item": "VWZ2", "description": "product 5", "qty": 180}),
    ]
}

fn column(docs: &[Value], field: &str) -> Vec<Value> {
    docs.iter().map(|d| d[field].clone()).collect()
}

#[test]
fn comparison_operators() {
    // Manual, $cmp $eq $gt $gte $lt $lte $ne: "Example" (qty against 250 for each).
    let out = project(
        inventory_qty(),
        json!({"_id": 0, "item": 1, "qty": 1,
               "cmp": {"$cmp": ["$qty", 250]}, "eq": {"$eq": ["$qty", 250]},
               "gt": {"$gt": ["$qty", 250]}, "gte": {"$gte": ["$qty", 250]},
               "lt": {"$lt": ["$qty", 250]}, "lte": {"$lte": ["$qty", 250]},
               "ne": {"$ne": ["$qty", 250]}}),
    );
    assert_eq!(
        column(&out, "cmp"),
        vec![json!(1), json!(-1), json!(0), json!(1), json!(-1)]
    );
    let b = |v: [bool; 5]| v.iter().map(|x| json!(x)).collect::<Vec<_>>();
    assert_eq!(column(&out, "eq"), b([false, false, true, false, false]));
    assert_eq!(column(&out, "gt"), b([true, false, false, true, false]));
    assert_eq!(column(&out, "gte"), b([true, false, true, true, false]));
    assert_eq!(column(&out, "lt"), b([false, true, false, false, true]));
    assert_eq!(column(&out, "lte"), b([false, true, true, false, true]));
    assert_eq!(column(&out, "ne"), b([true, true, false, true, true]));
    assert_eq!(
        out[0],
        json!({"item": "abc1", "qty": 300, "cmp": 1, "eq": false, "gt": true, "gte": true, "lt": false, "lte": false, "ne": true})
    );
}

#[test]
fn comparisons_are_not_type_bracketed() {
    // Manual, "Comparison/Sort Order": expressions compare values of different
    // types in the BSON order (numbers < strings < objects < arrays < booleans),
    // and a missing field is less than null.
    assert_eq!(eval(json!({"$lt": [5, "a"]})), Some(json!(true)));
    assert_eq!(eval(json!({"$gt": [true, {"a": 1}]})), Some(json!(true)));
    assert_eq!(eval(json!({"$eq": [1, 1.0]})), Some(json!(true)));
    assert_eq!(eval(json!({"$eq": ["$missing", null]})), Some(json!(false)));
    assert_eq!(eval(json!({"$lt": ["$missing", null]})), Some(json!(true)));
    assert_eq!(
        eval(json!({"$eq": ["$missing", "$alsoMissing"]})),
        Some(json!(true))
    );
    assert_eq!(eval(json!({"$cmp": [[1, 2], [1, 3]]})), Some(json!(-1)));
}

#[test]
fn boolean_operators() {
    // Manual, $and / $or / $not: "Example" on the inventory collection.
    let out = project(
        inventory_qty(),
        json!({"_id": 0,
               "and": {"$and": [{"$gt": ["$qty", 100]}, {"$lt": ["$qty", 250]}]},
               "or": {"$or": [{"$gt": ["$qty", 250]}, {"$lt": ["$qty", 200]}]},
               "not": {"$not": [{"$gt": ["$qty", 250]}]}}),
    );
    let b = |v: [bool; 5]| v.iter().map(|x| json!(x)).collect::<Vec<_>>();
    assert_eq!(column(&out, "and"), b([false, true, false, false, true]));
    assert_eq!(column(&out, "or"), b([true, false, false, true, true]));
    assert_eq!(column(&out, "not"), b([false, true, true, false, true]));
    // Manual, $and: "Behavior" table.
    assert_eq!(eval(json!({"$and": [1, "green"]})), Some(json!(true)));
    assert_eq!(eval(json!({"$and": []})), Some(json!(true)));
    assert_eq!(
        eval(json!({"$and": [[null], [false], [0]]})),
        Some(json!(true))
    );
    assert_eq!(eval(json!({"$and": [null, true]})), Some(json!(false)));
    assert_eq!(eval(json!({"$and": [0, true]})), Some(json!(false)));
    // Manual, $or: "Behavior" table.
    assert_eq!(eval(json!({"$or": [true, false]})), Some(json!(true)));
    assert_eq!(eval(json!({"$or": [[false], false]})), Some(json!(true)));
    assert_eq!(
        eval(json!({"$or": [null, 0, "$missing"]})),
        Some(json!(false))
    );
    // Manual, $not: "Behavior" table.
    assert_eq!(eval(json!({"$not": [true]})), Some(json!(false)));
    assert_eq!(eval(json!({"$not": [[false]]})), Some(json!(false)));
    assert_eq!(eval(json!({"$not": [false]})), Some(json!(true)));
    assert_eq!(eval(json!({"$not": [null]})), Some(json!(true)));
    assert_eq!(eval(json!({"$not": [0]})), Some(json!(true)));
}

// ---------------------------------------------------------------------------
// Conditionals
// ---------------------------------------------------------------------------

#[test]
fn cond_ifnull_switch() {
    // Manual, $cond: "Example" (object and array forms).
    let inventory = vec![
        json!({"_id": 1, "item": "abc1", "qty": 300}),
        json!({"_id": 2, "item": "abc2", "qty": 200}),
        json!({"_id": 3, "item": "xyz1", "qty": 250}),
    ];
    let want = vec![
        json!({"_id": 1, "item": "abc1", "discount": 30}),
        json!({"_id": 2, "item": "abc2", "discount": 20}),
        json!({"_id": 3, "item": "xyz1", "discount": 30}),
    ];
    assert_eq!(
        project(
            inventory.clone(),
            json!({"item": 1, "discount": {"$cond": {"if": {"$gte": ["$qty", 250]}, "then": 30, "else": 20}}})
        ),
        want
    );
    assert_eq!(
        project(
            inventory,
            json!({"item": 1, "discount": {"$cond": [{"$gte": ["$qty", 250]}, 30, 20]}})
        ),
        want
    );
    // Manual, $ifNull: "Single Input Expression" and "Multiple Input Expressions".
    let inventory = vec![
        json!({"_id": 1, "item": "buggy", "description": "toy car", "quantity": 300}),
        json!({"_id": 2, "item": "bicycle", "description": null, "quantity": 200}),
        json!({"_id": 3, "item": "flag"}),
    ];
    assert_eq!(
        project(
            inventory.clone(),
            json!({"item": 1, "description": {"$ifNull": ["$description", "Unspecified"]}})
        ),
        vec![
            json!({"_id": 1, "item": "buggy", "description": "toy car"}),
            json!({"_id": 2, "item": "bicycle", "description": "Unspecified"}),
            json!({"_id": 3, "item": "flag", "description": "Unspecified"}),
        ]
    );
    assert_eq!(
        project(
            inventory,
            json!({"item": 1, "value": {"$ifNull": ["$description", "$quantity", "Unspecified"]}})
        ),
        vec![
            json!({"_id": 1, "item": "buggy", "value": "toy car"}),
            json!({"_id": 2, "item": "bicycle", "value": 200}),
            json!({"_id": 3, "item": "flag", "value": "Unspecified"}),
        ]
    );
    // Manual, $switch: "Example" (grade summaries).
    let grades = vec![
        json!({"_id": 1, "name": "Susan Wilkes", "scores": [87, 86, 78]}),
        json!({"_id": 2, "name": "Bob Hanna", "scores": [71, 64, 81]}),
        json!({"_id": 3, "name": "James Torrelio", "scores": [91, 84, 97]}),
    ];
    let out = project(
        grades,
        json!({"name": 1, "summary": {"$switch": {
            "branches": [
                {"case": {"$gte": [{"$avg": "$scores"}, 90]}, "then": "Doing great!"},
                {"case": {"$and": [{"$gte": [{"$avg": "$scores"}, 80]}, {"$lt": [{"$avg": "$scores"}, 90]}]}, "then": "Doing pretty well."},
                {"case": {"$lt": [{"$avg": "$scores"}, 80]}, "then": "Needs improvement."}
            ],
            "default": "No scores found."
        }}}),
    );
    assert_eq!(
        column(&out, "summary"),
        vec![
            json!("Doing pretty well."),
            json!("Needs improvement."),
            json!("Doing great!")
        ]
    );
    // Manual, $switch: no matching branch and no default is an error.
    let f = fx();
    f.load("c", vec![json!({"_id": 1})]);
    let e = f.error(
        "c",
        json!([{"$project": {"r": {"$switch": {"branches": [{"case": false, "then": 1}]}}}}]),
    );
    assert!(
        matches!(&e, Error::TypeMismatch { operator, .. } if operator == "$switch"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------

fn quarters() -> Vec<Value> {
    vec![
        json!({"_id": 1, "item": "ABC1", "quarter": "13Q1", "description": "product 1"}),
        json!({"_id": 2, "item": "ABC2", "quarter": "13Q4", "description": "product 2"}),
        json!({"_id": 3, "item": "XYZ1", "quarter": "14Q2", "description": null}),
    ]
}

#[test]
fn concat_and_substrings() {
    // Manual, $concat: "Example" (a null operand gives null).
    assert_eq!(
        project(
            quarters(),
            json!({"itemDescription": {"$concat": ["$item", " - ", "$description"]}})
        ),
        vec![
            json!({"_id": 1, "itemDescription": "ABC1 - product 1"}),
            json!({"_id": 2, "itemDescription": "ABC2 - product 2"}),
            json!({"_id": 3, "itemDescription": null}),
        ]
    );
    // Manual, $substrBytes (and its alias $substr): "Single-Byte Character Set".
    for op in ["$substrBytes", "$substr"] {
        let out = project(
            quarters(),
            json!({"item": 1,
                   "yearSubstring": {op: ["$quarter", 0, 2]},
                   "quarterSubtring": {op: ["$quarter", 2, {"$subtract": [{"$strLenBytes": "$quarter"}, 2]}]}}),
        );
        assert_eq!(
            out,
            vec![
                json!({"_id": 1, "item": "ABC1", "yearSubstring": "13", "quarterSubtring": "Q1"}),
                json!({"_id": 2, "item": "ABC2", "yearSubstring": "13", "quarterSubtring": "Q4"}),
                json!({"_id": 3, "item": "XYZ1", "yearSubstring": "14", "quarterSubtring": "Q2"}),
            ],
            "{op}"
        );
    }
    // Manual, $substrCP: "Single-Byte Character Set" and "Single-Byte and UTF-8 Character Set".
    let out = project(
        quarters(),
        json!({"_id": 0, "y": {"$substrCP": ["$quarter", 0, 2]},
               "q": {"$substrCP": ["$quarter", 2, {"$subtract": [{"$strLenCP": "$quarter"}, 2]}]}}),
    );
    assert_eq!(out[2], json!({"y": "14", "q": "Q2"}));
    let food = vec![
        json!({"_id": 1, "name": "jalapeño"}),
        json!({"_id": 2, "name": "寿司sushi"}),
    ];
    assert_eq!(
        project(food, json!({"_id": 0, "s": {"$substrCP": ["$name", 1, 4]}})),
        vec![json!({"s": "alap"}), json!({"s": "司sus"})]
    );
    // Manual, $substrBytes: an index in the middle of a UTF-8 character is an error.
    let f = fx();
    f.load("c", vec![json!({"_id": 1, "s": "寿司"})]);
    let e = f.error(
        "c",
        json!([{"$project": {"r": {"$substrBytes": ["$s", 1, 2]}}}]),
    );
    assert!(matches!(&e, Error::TypeMismatch { .. }), "{e}");
}

#[test]
fn string_lengths() {
    // Manual, $strLenBytes and $strLenCP: "Single-Byte and Multibyte Character Set".
    let food = vec![
        json!({"_id": 1, "name": "apple"}),
        json!({"_id": 2, "name": "banana"}),
        json!({"_id": 3, "name": "éclair"}),
        json!({"_id": 4, "name": "hamburger"}),
        json!({"_id": 5, "name": "jalapeño"}),
        json!({"_id": 6, "name": "pizza"}),
        json!({"_id": 7, "name": "tacos"}),
        json!({"_id": 8, "name": "寿司sushi"}),
    ];
    let out = project(
        food,
        json!({"_id": 0, "b": {"$strLenBytes": "$name"}, "cp": {"$strLenCP": "$name"}}),
    );
    assert_eq!(
        column(&out, "b"),
        [5, 6, 7, 9, 9, 5, 5, 11].map(|n| json!(n)).to_vec()
    );
    assert_eq!(
        column(&out, "cp"),
        [5, 6, 6, 9, 8, 5, 5, 7].map(|n| json!(n)).to_vec()
    );
}

#[test]
fn case_conversion_and_strcasecmp() {
    let inventory = vec![
        json!({"_id": 1, "item": "ABC1", "quarter": "13Q1", "description": "PRODUCT 1"}),
        json!({"_id": 2, "item": "abc2", "quarter": "13Q4", "description": "Product 2"}),
        json!({"_id": 3, "item": "xyz1", "quarter": "14Q2", "description": null}),
    ];
    // Manual, $toLower: "Example" (null becomes the empty string).
    assert_eq!(
        project(
            inventory.clone(),
            json!({"item": {"$toLower": "$item"}, "description": {"$toLower": "$description"}})
        ),
        vec![
            json!({"_id": 1, "item": "abc1", "description": "product 1"}),
            json!({"_id": 2, "item": "abc2", "description": "product 2"}),
            json!({"_id": 3, "item": "xyz1", "description": ""}),
        ]
    );
    // Manual, $toUpper: "Example".
    assert_eq!(
        project(
            inventory.clone(),
            json!({"item": {"$toUpper": "$item"}, "description": {"$toUpper": "$description"}})
        ),
        vec![
            json!({"_id": 1, "item": "ABC1", "description": "PRODUCT 1"}),
            json!({"_id": 2, "item": "ABC2", "description": "PRODUCT 2"}),
            json!({"_id": 3, "item": "XYZ1", "description": ""}),
        ]
    );
    // Manual, $strcasecmp: "Example".
    let out = project(
        inventory,
        json!({"_id": 0, "r": {"$strcasecmp": ["$quarter", "13q4"]}}),
    );
    assert_eq!(column(&out, "r"), vec![json!(-1), json!(0), json!(1)]);
}

#[test]
fn split_then_group() {
    // Manual, $split: "Example" (total quantity per state).
    let f = fx();
    f.load(
        "deliveries",
        vec![
            json!({"_id": 1, "city": "Berkeley, CA", "qty": 648}),
            json!({"_id": 2, "city": "Bend, OR", "qty": 491}),
            json!({"_id": 3, "city": "Kensington, CA", "qty": 233}),
            json!({"_id": 4, "city": "Eugene, OR", "qty": 842}),
            json!({"_id": 5, "city": "Reno, NV", "qty": 655}),
            json!({"_id": 6, "city": "Portland, OR", "qty": 408}),
            json!({"_id": 7, "city": "Sacramento, CA", "qty": 574}),
        ],
    );
    let out = f.run(
        "deliveries",
        json!([
            {"$project": {"city_state": {"$split": ["$city", ", "]}, "qty": 1}},
            {"$unwind": "$city_state"},
            {"$match": {"city_state": {"$regex": "[A-Z]{2}"}}},
            {"$group": {"_id": {"state": "$city_state"}, "total_qty": {"$sum": "$qty"}}},
            {"$sort": {"total_qty": -1}}
        ]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": {"state": "OR"}, "total_qty": 1741}),
            json!({"_id": {"state": "CA"}, "total_qty": 1455}),
            json!({"_id": {"state": "NV"}, "total_qty": 655}),
        ]
    );
    assert_eq!(eval(json!({"$split": [null, ","]})), Some(json!(null)));
}

#[test]
fn trims() {
    // Manual, $trim / $ltrim / $rtrim: "Example".
    let inventory = vec![
        json!({"_id": 1, "item": "ABC1", "quarter": "13Q1", "description": " product 1"}),
        json!({"_id": 2, "item": "ABC2", "quarter": "13Q4", "description": "product 2 \n"}),
        json!({"_id": 3, "item": "XYZ1", "quarter": "14Q2", "description": null}),
    ];
    let out = project(
        inventory,
        json!({"_id": 0,
               "t": {"$trim": {"input": "$description"}},
               "l": {"$ltrim": {"input": "$description"}},
               "r": {"$rtrim": {"input": "$description"}}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"t": "product 1", "l": "product 1", "r": " product 1"}),
            json!({"t": "product 2", "l": "product 2 \n", "r": "product 2"}),
            json!({"t": null, "l": null, "r": null}),
        ]
    );
    // Manual, $trim: "Behavior" (the chars option).
    assert_eq!(
        eval(json!({"$trim": {"input": "ggggoodbyeeeee", "chars": "ge"}})),
        Some(json!("oodby"))
    );
    assert_eq!(
        eval(json!({"$ltrim": {"input": " ggggoodbyeeeee", "chars": " ge"}})),
        Some(json!("oodbyeeeee"))
    );
}

#[test]
fn index_of() {
    // Manual, $indexOfBytes and $indexOfCP: "Examples".
    let inventory = vec![
        json!({"_id": 1, "item": "foo"}),
        json!({"_id": 2, "item": "fóofoo"}),
        json!({"_id": 3, "item": "the foo bar"}),
        json!({"_id": 4, "item": "hello world fóo"}),
        json!({"_id": 5, "item": null}),
        json!({"_id": 6, "amount": 3}),
    ];
    let out = project(
        inventory,
        json!({"_id": 0, "b": {"$indexOfBytes": ["$item", "foo"]}, "cp": {"$indexOfCP": ["$item", "foo"]}}),
    );
    assert_eq!(
        column(&out, "b"),
        vec![
            json!(0),
            json!(4),
            json!(4),
            json!(-1),
            json!(null),
            json!(null)
        ]
    );
    assert_eq!(
        column(&out, "cp"),
        vec![
            json!(0),
            json!(3),
            json!(4),
            json!(-1),
            json!(null),
            json!(null)
        ]
    );
    // Manual, $indexOfCP: "Behavior" (start and end indexes).
    assert_eq!(
        eval(json!({"$indexOfCP": ["cafeteria", "e", 5]})),
        Some(json!(5))
    );
    assert_eq!(
        eval(json!({"$indexOfCP": ["cafétéria", "é", 4]})),
        Some(json!(5))
    );
    assert_eq!(
        eval(json!({"$indexOfCP": ["cafétéria", "e", 2, 4]})),
        Some(json!(-1))
    );
    assert_eq!(
        eval(json!({"$indexOfBytes": ["foo.bar.fi", ".", 5]})),
        Some(json!(7))
    );
}

fn products() -> Vec<Value> {
    vec![
        json!({"_id": 1, "description": "Single LINE description."}),
        json!({"_id": 2, "description": "First lines\nsecond line"}),
        json!({"_id": 3, "description": "Many spaces before     line"}),
        json!({"_id": 4, "description": "Multiple\nline descriptions"}),
        json!({"_id": 5, "description": "anchors, links and hyperlinks"}),
        json!({"_id": 6, "description": "métier work vocation"}),
    ]
}

#[test]
fn regex_operators() {
    let f = fx();
    f.load("products", products());
    // Manual, $regexMatch: "$regexMatch and Its Options" (no options, then "i").
    let out = f.run(
        "products",
        json!([{"$project": {"_id": 0,
            "plain": {"$regexMatch": {"input": "$description", "regex": "line"}},
            "i": {"$regexMatch": {"input": "$description", "regex": "line", "options": "i"}},
            "lit": {"$regexMatch": {"input": "$description", "regex": {"$regularExpression": {"pattern": "line", "options": "i"}}}}}}]),
    );
    let b = |v: [bool; 6]| v.iter().map(|x| json!(x)).collect::<Vec<_>>();
    assert_eq!(
        column(&out, "plain"),
        b([false, true, true, true, false, false])
    );
    assert_eq!(column(&out, "i"), b([true, true, true, true, false, false]));
    assert_eq!(
        column(&out, "lit"),
        b([true, true, true, true, false, false])
    );
    // Manual, $regexFind: "$regexFind and Its Options" (idx counts code points).
    let out = f.run(
        "products",
        json!([{"$addFields": {"returnObject": {"$regexFind": {"input": "$description", "regex": "line"}}}},
               {"$project": {"_id": 0, "returnObject": 1}}]),
    );
    assert_eq!(
        column(&out, "returnObject"),
        vec![
            json!(null),
            json!({"match": "line", "idx": 6, "captures": []}),
            json!({"match": "line", "idx": 23, "captures": []}),
            json!({"match": "line", "idx": 9, "captures": []}),
            json!(null),
            json!(null),
        ]
    );
    // Manual, $regexFindAll: "Use Captures" (a group that does not take part is null).
    assert_eq!(
        eval(json!({"$regexFindAll": {"input": "cat dog", "regex": "(c)?(a|o)"}})),
        Some(json!([
            {"match": "ca", "idx": 0, "captures": ["c", "a"]},
            {"match": "o", "idx": 5, "captures": [null, "o"]}
        ]))
    );
    // A regex that does not compile is refused before the pipeline runs.
    let e = f.error(
        "products",
        json!([{"$project": {"r": {"$regexMatch": {"input": "$description", "regex": "("}}}}]),
    );
    assert!(
        matches!(&e, Error::InvalidPipeline(m) if m.contains("stage 1 ($project)")),
        "{e}"
    );
}

#[test]
fn replace_one_and_all() {
    // Manual, $replaceOne and $replaceAll: "Example".
    let inventory = vec![
        json!({"_id": 1, "item": "blue paint"}),
        json!({"_id": 2, "item": "blue and green paint"}),
        json!({"_id": 3, "item": "blue paint with blue paintbrush"}),
        json!({"_id": 4, "item": "blue paint with green paintbrush"}),
    ];
    let out = project(
        inventory,
        json!({"_id": 0,
               "one": {"$replaceOne": {"input": "$item", "find": "blue paint", "replacement": "red paint"}},
               "all": {"$replaceAll": {"input": "$item", "find": "blue paint", "replacement": "red paint"}}}),
    );
    assert_eq!(
        column(&out, "one"),
        vec![
            json!("red paint"),
            json!("blue and green paint"),
            json!("red paint with blue paintbrush"),
            json!("red paint with green paintbrush")
        ]
    );
    assert_eq!(
        column(&out, "all"),
        vec![
            json!("red paint"),
            json!("blue and green paint"),
            json!("red paint with red paintbrush"),
            json!("red paint with green paintbrush")
        ]
    );
    assert_eq!(
        eval(json!({"$replaceAll": {"input": null, "find": "a", "replacement": "b"}})),
        Some(json!(null))
    );
}

// ---------------------------------------------------------------------------
// Arrays
// ---------------------------------------------------------------------------

#[test]
fn size_and_is_array() {
    // Manual, $size: "Example" (guarded by $isArray).
    let inventory = vec![
        json!({"_id": 1, "item": "ABC1", "description": "product 1", "colors": ["blue", "black", "red"]}),
        json!({"_id": 2, "item": "ABC2", "description": "product 2", "colors": ["purple"]}),
        json!({"_id": 3, "item": "XYZ1", "description": "product 3", "colors": []}),
        json!({"_id": 4, "item": "ZZZ1", "description": "product 4 - missing colors"}),
    ];
    let out = project(
        inventory,
        json!({"item": 1, "numberOfColors": {"$cond": {"if": {"$isArray": "$colors"}, "then": {"$size": "$colors"}, "else": "NA"}}}),
    );
    assert_eq!(
        column(&out, "numberOfColors"),
        vec![json!(3), json!(1), json!(0), json!("NA")]
    );
    // Manual, $size: "Behavior" — the argument must be an array.
    let f = fx();
    f.load("c", vec![json!({"_id": 1})]);
    let e = f.error("c", json!([{"$project": {"n": {"$size": "$colors"}}}]));
    assert!(
        matches!(&e, Error::TypeMismatch { operator, path, message } if operator == "$size" && path == "n" && message.contains("missing")),
        "{e}"
    );
    // Manual, $isArray: "Behavior" (the argument list form).
    assert_eq!(eval(json!({"$isArray": ["hello"]})), Some(json!(false)));
    assert_eq!(
        eval(json!({"$isArray": [["hello", "world"]]})),
        Some(json!(true))
    );
}

fn favorites() -> Vec<Value> {
    vec![
        json!({"_id": 1, "name": "dave123", "favorites": ["chocolate", "cake", "butter", "apples"]}),
        json!({"_id": 2, "name": "li", "favorites": ["apples", "pudding", "pie"]}),
        json!({"_id": 3, "name": "ahn", "favorites": ["pears", "pecans", "chocolate", "cherries"]}),
        json!({"_id": 4, "name": "ty", "favorites": ["ice cream"]}),
    ]
}

#[test]
fn element_access_and_slices() {
    // Manual, $arrayElemAt: "Example" (first and last favorites).
    let out = project(
        favorites(),
        json!({"_id": 0, "first": {"$arrayElemAt": ["$favorites", 0]}, "last": {"$arrayElemAt": ["$favorites", -1]}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"first": "chocolate", "last": "apples"}),
            json!({"first": "apples", "last": "pie"}),
            json!({"first": "pears", "last": "cherries"}),
            json!({"first": "ice cream", "last": "ice cream"}),
        ]
    );
    // Manual, $arrayElemAt: "Behavior" — out of bounds is missing.
    assert_eq!(eval(json!({"$arrayElemAt": [[1, 2, 3], 15]})), None);
    assert_eq!(
        eval(json!({"$arrayElemAt": [[1, 2, 3], -2]})),
        Some(json!(2))
    );
    // Manual, $slice: "Example" (three favorites).
    let out = project(
        favorites(),
        json!({"_id": 0, "threeFavorites": {"$slice": ["$favorites", 3]}}),
    );
    assert_eq!(
        out[0],
        json!({"threeFavorites": ["chocolate", "cake", "butter"]})
    );
    assert_eq!(out[3], json!({"threeFavorites": ["ice cream"]}));
    // Manual, $slice: "Behavior" table.
    assert_eq!(eval(json!({"$slice": [[1, 2, 3], 1, 1]})), Some(json!([2])));
    assert_eq!(
        eval(json!({"$slice": [[1, 2, 3], -2]})),
        Some(json!([2, 3]))
    );
    assert_eq!(eval(json!({"$slice": [[1, 2, 3], 15, 2]})), Some(json!([])));
    assert_eq!(
        eval(json!({"$slice": [[1, 2, 3], -15, 2]})),
        Some(json!([1, 2]))
    );
    // Manual, $first / $last (array operators): "Behavior" tables.
    assert_eq!(eval(json!({"$first": [1, 2, 3]})), Some(json!(1)));
    assert_eq!(eval(json!({"$first": [[]]})), Some(json!([])));
    assert_eq!(eval(json!({"$first": [null, []]})), Some(json!(null)));
    assert_eq!(eval(json!({"$first": []})), None);
    assert_eq!(eval(json!({"$first": null})), Some(json!(null)));
    assert_eq!(eval(json!({"$first": "$nonexistentField"})), None);
    assert_eq!(eval(json!({"$last": [1, 2, 3]})), Some(json!(3)));
    assert_eq!(eval(json!({"$last": [null, []]})), Some(json!([])));
    assert_eq!(eval(json!({"$last": []})), None);
}

#[test]
fn filter_map_reduce() {
    // Manual, $filter: "Filter Based on Number Comparison" (and "Use the limit Field").
    let sales = vec![
        json!({"_id": 0, "items": [{"item_id": 43, "quantity": 2, "price": 10}, {"item_id": 2, "quantity": 1, "price": 240}]}),
        json!({"_id": 1, "items": [{"item_id": 23, "quantity": 3, "price": 110}, {"item_id": 103, "quantity": 4, "price": 5}, {"item_id": 38, "quantity": 1, "price": 300}]}),
        json!({"_id": 2, "items": [{"item_id": 4, "quantity": 1, "price": 23}]}),
    ];
    let out = project(
        sales.clone(),
        json!({"items": {"$filter": {"input": "$items", "as": "item", "cond": {"$gte": ["$$item.price", 100]}}}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 0, "items": [{"item_id": 2, "quantity": 1, "price": 240}]}),
            json!({"_id": 1, "items": [{"item_id": 23, "quantity": 3, "price": 110}, {"item_id": 38, "quantity": 1, "price": 300}]}),
            json!({"_id": 2, "items": []}),
        ]
    );
    let out = project(
        sales,
        json!({"_id": 0, "items": {"$filter": {"input": "$items", "cond": {"$gte": ["$$this.price", 100]}, "limit": 1}}}),
    );
    assert_eq!(
        out[1],
        json!({"items": [{"item_id": 23, "quantity": 3, "price": 110}]})
    );
    // Manual, $map: "Add to Each Element of an Array".
    let grades = vec![
        json!({"_id": 1, "quizzes": [5, 6, 7]}),
        json!({"_id": 2, "quizzes": []}),
        json!({"_id": 3, "quizzes": [3, 8, 9]}),
    ];
    assert_eq!(
        project(
            grades,
            json!({"adjustedGrades": {"$map": {"input": "$quizzes", "as": "grade", "in": {"$add": ["$$grade", 2]}}}})
        ),
        vec![
            json!({"_id": 1, "adjustedGrades": [7, 8, 9]}),
            json!({"_id": 2, "adjustedGrades": []}),
            json!({"_id": 3, "adjustedGrades": [5, 10, 11]}),
        ]
    );
    // Manual, $reduce: "Examples" table.
    assert_eq!(
        eval(
            json!({"$reduce": {"input": ["a", "b", "c"], "initialValue": "", "in": {"$concat": ["$$value", "$$this"]}}})
        ),
        Some(json!("abc"))
    );
    assert_eq!(
        eval(
            json!({"$reduce": {"input": [1, 2, 3, 4], "initialValue": {"sum": 5, "product": 2},
            "in": {"sum": {"$add": ["$$value.sum", "$$this"]}, "product": {"$multiply": ["$$value.product", "$$this"]}}}})
        ),
        Some(json!({"sum": 15, "product": 48}))
    );
    assert_eq!(
        eval(
            json!({"$reduce": {"input": [[3, 4], [5, 6]], "initialValue": [1, 2], "in": {"$concatArrays": ["$$value", "$$this"]}}})
        ),
        Some(json!([1, 2, 3, 4, 5, 6]))
    );
    // Nested variables: an inner $map sees the outer $filter's binding.
    assert_eq!(
        eval(
            json!({"$map": {"input": [1, 2], "as": "x", "in": {"$filter": {"input": [1, 2, 3], "cond": {"$gt": ["$$this", "$$x"]}}}}})
        ),
        Some(json!([[2, 3], [3]]))
    );
    assert_eq!(
        eval(json!({"$map": {"input": null, "in": 1}})),
        Some(json!(null))
    );
}

#[test]
fn membership_concat_reverse_range_index() {
    // Manual, $in: "Example" (does the store have bananas?).
    let fruit = vec![
        json!({"_id": 1, "location": "24th Street", "in_stock": ["apples", "oranges", "bananas"]}),
        json!({"_id": 2, "location": "36th Street", "in_stock": ["bananas", "pears", "grapes"]}),
        json!({"_id": 3, "location": "82nd Street", "in_stock": ["cantaloupes", "watermelons", "apples"]}),
    ];
    let out = project(
        fruit,
        json!({"store location": "$location", "has bananas": {"$in": ["bananas", "$in_stock"]}}),
    );
    assert_eq!(
        out[0],
        json!({"_id": 1, "store location": "24th Street", "has bananas": true})
    );
    assert_eq!(
        column(&out, "has bananas"),
        vec![json!(true), json!(true), json!(false)]
    );
    // Manual, $concatArrays: "Example" (a missing array gives null).
    let warehouses = vec![
        json!({"_id": 1, "instock": ["chocolate"], "ordered": ["butter", "apples"]}),
        json!({"_id": 2, "instock": ["apples", "pudding", "pie"]}),
        json!({"_id": 3, "instock": ["pears", "pecans"], "ordered": ["cherries"]}),
        json!({"_id": 4, "instock": ["ice cream"], "ordered": []}),
    ];
    assert_eq!(
        column(
            &project(
                warehouses.clone(),
                json!({"items": {"$concatArrays": ["$instock", "$ordered"]}})
            ),
            "items"
        ),
        vec![
            json!(["chocolate", "butter", "apples"]),
            json!(null),
            json!(["pears", "pecans", "cherries"]),
            json!(["ice cream"])
        ]
    );
    // Manual, $isArray: "Example".
    let out = project(
        warehouses,
        json!({"items": {"$cond": {"if": {"$and": [{"$isArray": "$instock"}, {"$isArray": "$ordered"}]},
            "then": {"$concatArrays": ["$instock", "$ordered"]}, "else": "One or more fields is not an array."}}}),
    );
    assert_eq!(
        out[1]["items"],
        json!("One or more fields is not an array.")
    );
    // Manual, $reverseArray: "Example".
    let users = vec![
        json!({"_id": 1, "name": "dave123", "favorites": ["chocolate", "cake", "butter", "apples"]}),
        json!({"_id": 2, "name": "li", "favorites": ["apples", "pudding", "pie"]}),
        json!({"_id": 3, "name": "ahn", "favorites": []}),
        json!({"_id": 4, "name": "ty"}),
    ];
    assert_eq!(
        column(
            &project(
                users,
                json!({"reverseFavorites": {"$reverseArray": "$favorites"}})
            ),
            "reverseFavorites"
        ),
        vec![
            json!(["apples", "butter", "cake", "chocolate"]),
            json!(["pie", "pudding", "apples"]),
            json!([]),
            json!(null)
        ]
    );
    // Manual, $range: "Example" (rest stops every 25 miles).
    let distances = vec![
        json!({"_id": 0, "city": "San Jose", "distance": 42}),
        json!({"_id": 1, "city": "Sacramento", "distance": 88}),
        json!({"_id": 2, "city": "Reno", "distance": 218}),
        json!({"_id": 3, "city": "Los Angeles", "distance": 383}),
    ];
    let out = project(
        distances,
        json!({"_id": 0, "city": 1, "Rest stops": {"$range": [0, "$distance", 25]}}),
    );
    assert_eq!(out[0], json!({"city": "San Jose", "Rest stops": [0, 25]}));
    assert_eq!(
        out[1],
        json!({"city": "Sacramento", "Rest stops": [0, 25, 50, 75]})
    );
    assert_eq!(
        out[2]["Rest stops"],
        json!([0, 25, 50, 75, 100, 125, 150, 175, 200])
    );
    assert_eq!(out[3]["Rest stops"].as_array().unwrap().len(), 16);
    // Manual, $indexOfArray: "Example".
    let inventory = vec![
        json!({"_id": 0, "items": ["one", "two", "three"]}),
        json!({"_id": 1, "items": [1, 2, 3]}),
        json!({"_id": 2, "items": [1, 2, 3, 2]}),
        json!({"_id": 3, "items": [null, null, 2]}),
        json!({"_id": 4, "items": null}),
        json!({"_id": 5, "amount": 3}),
    ];
    assert_eq!(
        column(
            &project(
                inventory,
                json!({"index": {"$indexOfArray": ["$items", 2]}})
            ),
            "index"
        ),
        vec![
            json!(-1),
            json!(1),
            json!(1),
            json!(2),
            json!(null),
            json!(null)
        ]
    );
}

#[test]
fn all_and_any_element_true() {
    // Manual, $allElementsTrue and $anyElementTrue: "Example" (survey responses).
    let survey = vec![
        json!({"_id": 1, "responses": [true]}),
        json!({"_id": 2, "responses": [true, false]}),
        json!({"_id": 3, "responses": []}),
        json!({"_id": 4, "responses": [1, true, "seven"]}),
        json!({"_id": 5, "responses": [0]}),
        json!({"_id": 6, "responses": [[]]}),
        json!({"_id": 7, "responses": [[0]]}),
        json!({"_id": 8, "responses": [[false]]}),
        json!({"_id": 9, "responses": [null]}),
    ];
    let out = project(
        survey,
        json!({"_id": 0, "all": {"$allElementsTrue": ["$responses"]}, "any": {"$anyElementTrue": ["$responses"]}}),
    );
    let b = |v: [bool; 9]| v.iter().map(|x| json!(x)).collect::<Vec<_>>();
    assert_eq!(
        column(&out, "all"),
        b([true, false, true, true, false, true, true, true, false])
    );
    assert_eq!(
        column(&out, "any"),
        b([true, true, false, true, false, true, true, true, false])
    );
}

// ---------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------

#[test]
fn merge_objects_with_lookup() {
    // Manual, $mergeObjects: "$mergeObjects" example with $lookup and $replaceRoot.
    let f = fx();
    f.load(
        "orders",
        vec![
            json!({"_id": 1, "item": "abc", "price": 12, "ordered": 2}),
            json!({"_id": 2, "item": "jkl", "price": 20, "ordered": 1}),
        ],
    );
    f.load(
        "items",
        vec![
            json!({"_id": 1, "item": "abc", "description": "product 1", "instock": 120}),
            json!({"_id": 2, "item": "def", "description": "product 2", "instock": 80}),
            json!({"_id": 3, "item": "jkl", "description": "product 3", "instock": 60}),
        ],
    );
    let out = f.run(
        "orders",
        json!([
            {"$lookup": {"from": "items", "localField": "item", "foreignField": "item", "as": "fromItems"}},
            {"$replaceRoot": {"newRoot": {"$mergeObjects": [{"$arrayElemAt": ["$fromItems", 0]}, "$$ROOT"]}}},
            {"$project": {"fromItems": 0}}
        ]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "item": "abc", "description": "product 1", "instock": 120, "price": 12, "ordered": 2}),
            json!({"_id": 2, "item": "jkl", "description": "product 3", "instock": 60, "price": 20, "ordered": 1}),
        ]
    );
    assert_eq!(
        eval(json!({"$mergeObjects": [null, {"a": 1}, {"a": 2, "b": 3}]})),
        Some(json!({"a": 2, "b": 3}))
    );
}

#[test]
fn object_to_array_and_back() {
    // Manual, $objectToArray: "Example".
    let inventory = vec![
        json!({"_id": 1, "item": "ABC1", "dimensions": {"l": 25, "w": 10, "uom": "cm"}}),
        json!({"_id": 2, "item": "ABC2", "dimensions": {"l": 50, "w": 25, "uom": "cm"}}),
    ];
    assert_eq!(
        project(
            inventory,
            json!({"item": 1, "dimensions": {"$objectToArray": "$dimensions"}})
        )[0],
        json!({"_id": 1, "item": "ABC1", "dimensions": [{"k": "l", "v": 25}, {"k": "w", "v": 10}, {"k": "uom", "v": "cm"}]})
    );
    // Manual, $arrayToObject: "Example" (both input forms; a repeated key keeps the last value).
    let inventory = vec![
        json!({"_id": 1, "item": "ABC1", "dimensions": [{"k": "l", "v": 25}, {"k": "w", "v": 10}, {"k": "uom", "v": "cm"}]}),
        json!({"_id": 2, "item": "ABC2", "dimensions": [["l", 50], ["w", 25], ["uom", "cm"]]}),
        json!({"_id": 3, "item": "ABC3", "dimensions": [["l", 50], ["l", 25], ["uom", "cm"]]}),
    ];
    assert_eq!(
        column(
            &project(
                inventory,
                json!({"item": 1, "dimensions": {"$arrayToObject": "$dimensions"}})
            ),
            "dimensions"
        ),
        vec![
            json!({"l": 25, "w": 10, "uom": "cm"}),
            json!({"l": 50, "w": 25, "uom": "cm"}),
            json!({"l": 25, "uom": "cm"}),
        ]
    );
    // Manual, $getField: "Query Fields that Contain Periods".
    let f = fx();
    let c = f.db.collection("c").unwrap();
    // Field names with '.' cannot be stored, so the example's document is built in the pipeline.
    c.insert_many(vec![json!({"_id": 1})]).unwrap();
    let out = c
        .aggregate(json!([
            {"$replaceWith": {"$arrayToObject": [[["item", "sweatshirt"], ["price.usd", 45.99], ["qty", 300]]]}},
            {"$project": {"_id": 0, "usd": {"$getField": "price.usd"}}}
        ]))
        .to_vec()
        .unwrap();
    assert_eq!(out, vec![json!({"usd": 45.99})]);
}

// ---------------------------------------------------------------------------
// Types and conversion
// ---------------------------------------------------------------------------

#[test]
fn type_names() {
    // Manual, $type (aggregation): "Example". The manual's NumberLong(71) is
    // 5000000000 here: integers that fit 32 bits read back as "int".
    let coll = vec![
        json!({"_id": 0, "a": 8}),
        json!({"_id": 1, "a": [41.63, 88.19]}),
        json!({"_id": 2, "a": {"a": "apple", "b": "banana", "c": "carrot"}}),
        json!({"_id": 3, "a": "caribou"}),
        json!({"_id": 4, "a": 5000000000i64}),
        json!({"_id": 5}),
        json!({"_id": 6, "a": null}),
        json!({"_id": 7, "a": 1.5}),
        json!({"_id": 8, "a": {"$date": "2020-01-01T00:00:00Z"}}),
        json!({"_id": 9, "a": true}),
        json!({"_id": 10, "a": {"$oid": "5ab9cbe531c2ab715d42129e"}}),
    ];
    assert_eq!(
        column(&project(coll, json!({"a": {"$type": "$a"}})), "a"),
        [
            "int", "array", "object", "string", "long", "missing", "null", "double", "date",
            "bool", "objectId"
        ]
        .map(|s| json!(s))
        .to_vec()
    );
    assert_eq!(eval(json!({"$isNumber": 1.5})), Some(json!(true)));
    assert_eq!(eval(json!({"$isNumber": "1.5"})), Some(json!(false)));
}

#[test]
fn to_bool_to_string_to_long() {
    // Manual, $toBool: "Example" (orders not shipped).
    let f = fx();
    f.load(
        "orders",
        vec![
            json!({"_id": 1, "item": "apple", "qty": 5, "shipped": true}),
            json!({"_id": 2, "item": "pie", "qty": 10, "shipped": 0}),
            json!({"_id": 3, "item": "ice cream", "shipped": 1}),
            json!({"_id": 4, "item": "almonds", "qty": 2, "shipped": "true"}),
            json!({"_id": 5, "item": "pecans", "shipped": "false"}),
            json!({"_id": 6, "item": "nougat", "shipped": ""}),
        ],
    );
    let out = f.run(
        "orders",
        json!([
            {"$addFields": {"convertedShippedFlag": {"$switch": {
                "branches": [
                    {"case": {"$eq": ["$shipped", "false"]}, "then": false},
                    {"case": {"$eq": ["$shipped", ""]}, "then": false}
                ],
                "default": {"$toBool": "$shipped"}}}}},
            {"$match": {"convertedShippedFlag": false}}
        ]),
    );
    assert_eq!(column(&out, "_id"), vec![json!(2), json!(5), json!(6)]);
    // Manual, $toString: "Example" (zip codes sorted as strings).
    let f = fx();
    f.load(
        "orders",
        vec![
            json!({"_id": 1, "item": "apple", "qty": 5, "zipcode": 12345}),
            json!({"_id": 2, "item": "pie", "qty": 10, "zipcode": 11111}),
            json!({"_id": 3, "item": "ice cream", "zipcode": "12345"}),
            json!({"_id": 4, "item": "almonds", "qty": 2, "zipcode": "12345-0030"}),
        ],
    );
    let out = f.run(
        "orders",
        json!([{"$addFields": {"convertedZipCode": {"$toString": "$zipcode"}}}, {"$sort": {"convertedZipCode": -1}}]),
    );
    assert_eq!(
        column(&out, "_id"),
        vec![json!(4), json!(1), json!(3), json!(2)]
    );
    assert_eq!(out[1]["convertedZipCode"], json!("12345"));
    // Manual, $toLong: "Example" (quantities given as numbers and strings).
    let f = fx();
    f.load(
        "orders",
        vec![
            json!({"_id": 1, "item": "apple", "qty": 5}),
            json!({"_id": 2, "item": "pie", "qty": "100"}),
            json!({"_id": 3, "item": "ice cream", "qty": {"$numberLong": "500"}}),
            json!({"_id": 4, "item": "almonds", "qty": "50"}),
        ],
    );
    let out = f.run(
        "orders",
        json!([{"$addFields": {"convertedQty": {"$toLong": "$qty"}}}, {"$sort": {"convertedQty": -1}}]),
    );
    assert_eq!(
        column(&out, "_id"),
        vec![json!(3), json!(2), json!(4), json!(1)]
    );
    assert_eq!(
        column(&out, "convertedQty"),
        vec![json!(500), json!(100), json!(50), json!(5)]
    );
}

#[test]
fn to_int_double_date_object_id() {
    // Manual, $toInt: "Example" (string quantities; the manual's $toDecimal
    // price is $toDouble here, as Decimal128 arithmetic is not supported).
    let orders = vec![
        json!({"_id": 1, "item": "apple", "qty": "5", "price": 10}),
        json!({"_id": 2, "item": "pie", "qty": "10", "price": 20.0}),
        json!({"_id": 3, "item": "ice cream", "qty": "2", "price": 4.99}),
        json!({"_id": 4, "item": "almonds", "qty": "5", "price": 5}),
    ];
    let out = project(
        orders,
        json!({"_id": 0, "total": {"$multiply": [{"$toDouble": "$price"}, {"$toInt": "$qty"}]}}),
    );
    assert_eq!(
        column(&out, "total"),
        vec![json!(50.0), json!(200.0), json!(9.98), json!(25.0)]
    );
    // Manual, $toDouble: "Example" (temperatures from strings).
    let weather = vec![
        json!({"_id": 1, "date": date("2018-06-01T00:00:00Z"), "temp": "26.1C"}),
        json!({"_id": 2, "date": date("2018-06-02T00:00:00Z"), "temp": "25.1C"}),
        json!({"_id": 3, "date": date("2018-06-03T00:00:00Z"), "temp": "25.4C"}),
    ];
    let out = project(
        weather,
        json!({"_id": 0, "degrees": {"$toDouble": {"$substrBytes": ["$temp", 0, 4]}}}),
    );
    assert_eq!(
        column(&out, "degrees"),
        vec![json!(26.1), json!(25.1), json!(25.4)]
    );
    // Manual, $toDate: "Example" (dates and date strings, one with an offset).
    let f = fx();
    f.load(
        "orders",
        vec![
            json!({"_id": 1, "item": "apple", "qty": 5, "order_date": date("2018-03-10T00:00:00Z")}),
            json!({"_id": 2, "item": "pie", "qty": 10, "order_date": date("2018-03-12T00:00:00Z")}),
            json!({"_id": 3, "item": "ice cream", "qty": 2, "price": "4.99", "order_date": "2018-03-05"}),
            json!({"_id": 4, "item": "almonds", "qty": 5, "price": 5, "order_date": "2018-03-05 +10:00"}),
        ],
    );
    let out = f.run(
        "orders",
        json!([{"$addFields": {"convertedDate": {"$toDate": "$order_date"}}}, {"$sort": {"convertedDate": 1}},
               {"$project": {"convertedDate": 1}}]),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 4, "convertedDate": date("2018-03-04T14:00:00Z")}),
            json!({"_id": 3, "convertedDate": date("2018-03-05T00:00:00Z")}),
            json!({"_id": 1, "convertedDate": date("2018-03-10T00:00:00Z")}),
            json!({"_id": 2, "convertedDate": date("2018-03-12T00:00:00Z")}),
        ]
    );
    // Manual, $toObjectId: "Example" (string and ObjectId ids sorted as ObjectIds).
    let f = fx();
    f.load(
        "orders",
        vec![
            json!({"_id": "5ab9cbe531c2ab715d42129e", "item": "apple", "qty": 10}),
            json!({"_id": {"$oid": "5ab9d0b831c2ab715d4212a8"}, "item": "pie", "qty": 5}),
            json!({"_id": {"$oid": "5ab9d2d331c2ab715d4212b3"}, "item": "ice cream", "qty": 20}),
            json!({"_id": "5ab9e16431c2ab715d4212b4", "item": "almonds", "qty": 50}),
        ],
    );
    let out = f.run(
        "orders",
        json!([{"$addFields": {"convertedId": {"$toObjectId": "$_id"}}}, {"$sort": {"convertedId": -1}},
               {"$project": {"_id": 0, "item": 1}}]),
    );
    assert_eq!(
        column(&out, "item"),
        vec![
            json!("almonds"),
            json!("ice cream"),
            json!("pie"),
            json!("apple")
        ]
    );
}

#[test]
fn convert_on_error_and_on_null() {
    // Manual, $convert: "Behavior" — onError replaces a failed conversion,
    // onNull a null or missing input; without them null stays null and a
    // failure is an error.
    let docs = vec![
        json!({"_id": 1, "v": "5"}),
        json!({"_id": 2, "v": "five"}),
        json!({"_id": 3, "v": null}),
        json!({"_id": 4}),
        json!({"_id": 5, "v": 5000000000i64}),
        json!({"_id": 6, "v": 2.9}),
    ];
    let out = project(
        docs.clone(),
        json!({"_id": 0, "n": {"$convert": {"input": "$v", "to": "int", "onError": "bad", "onNull": "none"}}}),
    );
    assert_eq!(
        column(&out, "n"),
        vec![
            json!(5),
            json!("bad"),
            json!("none"),
            json!("none"),
            json!("bad"),
            json!(2)
        ]
    );
    let out = project(
        docs,
        json!({"_id": 0, "n": {"$convert": {"input": "$v", "to": {"$literal": 18}, "onError": -1}}}),
    );
    assert_eq!(
        column(&out, "n"),
        vec![
            json!(5),
            json!(-1),
            json!(null),
            json!(null),
            json!(5000000000i64),
            json!(2)
        ]
    );
    assert_eq!(eval(json!({"$toString": 2.5})), Some(json!("2.5")));
    assert_eq!(eval(json!({"$toString": true})), Some(json!("true")));
    assert_eq!(
        eval(json!({"$toString": {"$literal": {"$date": "2018-03-27T16:58:51.538Z"}}})),
        Some(json!("2018-03-27T16:58:51.538Z"))
    );
    assert_eq!(
        eval(json!({"$toDouble": {"$literal": {"$date": "1970-01-01T00:00:01Z"}}})),
        Some(json!(1000.0))
    );
    // Failures without onError, and decimal targets, are refused with typed errors.
    let f = fx();
    f.load("c", vec![json!({"_id": 1, "v": "five"})]);
    let e = f.error("c", json!([{"$project": {"n": {"$toInt": "$v"}}}]));
    assert!(
        matches!(&e, Error::TypeMismatch { operator, path, .. } if operator == "$convert" && path == "n"),
        "{e}"
    );
    let e = f.error("c", json!([{"$project": {"n": {"$toDecimal": "$v"}}}]));
    assert!(
        matches!(&e, Error::InvalidPipeline(m) if m.contains("$toDecimal")),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

#[test]
fn date_parts() {
    // Manual, $year / $month / $dayOfMonth / $hour / $minute / $second /
    // $millisecond / $dayOfYear / $dayOfWeek / $week: "Example".
    let sales = vec![
        json!({"_id": 1, "item": "abc", "price": 10, "quantity": 2, "date": date("2014-01-01T08:15:39.736Z")}),
    ];
    let out = project(
        sales,
        json!({"year": {"$year": "$date"}, "month": {"$month": "$date"}, "day": {"$dayOfMonth": "$date"},
               "hour": {"$hour": "$date"}, "minutes": {"$minute": "$date"}, "seconds": {"$second": "$date"},
               "milliseconds": {"$millisecond": "$date"}, "dayOfYear": {"$dayOfYear": "$date"},
               "dayOfWeek": {"$dayOfWeek": "$date"}, "week": {"$week": "$date"}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "year": 2014, "month": 1, "day": 1, "hour": 8, "minutes": 15, "seconds": 39,
                    "milliseconds": 736, "dayOfYear": 1, "dayOfWeek": 4, "week": 0})
        ]
    );
    // Manual, $hour: "Behavior" — the {date, timezone} form with an offset.
    assert_eq!(
        eval(
            json!({"$hour": {"date": {"$literal": date("2014-01-01T08:15:39.736Z")}, "timezone": "+04:30"}})
        ),
        Some(json!(12))
    );
    // Manual, $isoWeek: "Example".
    let deliveries = vec![
        json!({"_id": 1, "date": date("2006-10-24T00:00:00Z"), "city": "Boston"}),
        json!({"_id": 2, "date": date("2011-08-18T00:00:00Z"), "city": "Detroit"}),
    ];
    assert_eq!(
        project(
            deliveries,
            json!({"_id": 0, "city": "$city", "weekNumber": {"$isoWeek": "$date"}})
        ),
        vec![
            json!({"city": "Boston", "weekNumber": 43}),
            json!({"city": "Detroit", "weekNumber": 33})
        ]
    );
    // Manual, $isoWeekYear: "Example".
    let anniversaries = vec![
        json!({"_id": 1, "date": date("2016-01-01T00:00:00Z")}),
        json!({"_id": 2, "date": date("2016-01-04T00:00:00Z")}),
        json!({"_id": 3, "date": date("2015-01-01T00:00:00Z")}),
        json!({"_id": 4, "date": date("2014-04-21T00:00:00Z")}),
    ];
    assert_eq!(
        column(
            &project(
                anniversaries,
                json!({"yearNumber": {"$isoWeekYear": "$date"}})
            ),
            "yearNumber"
        ),
        vec![json!(2015), json!(2016), json!(2015), json!(2014)]
    );
    // Manual, $isoDayOfWeek: "Example".
    let birthdays = vec![
        json!({"_id": 1, "name": "Betty", "birthday": date("1993-09-21T00:00:00Z")}),
        json!({"_id": 2, "name": "Veronica", "birthday": date("1981-11-07T00:00:00Z")}),
    ];
    assert_eq!(
        project(
            birthdays,
            json!({"_id": 0, "name": "$name", "dayOfWeek": {"$isoDayOfWeek": "$birthday"}})
        ),
        vec![
            json!({"name": "Betty", "dayOfWeek": 2}),
            json!({"name": "Veronica", "dayOfWeek": 6})
        ]
    );
    // Date operators take ObjectIds (their creation second) and give null for null/missing.
    assert_eq!(
        eval(json!({"$year": {"$literal": {"$oid": "5ab9cbe531c2ab715d42129e"}}})),
        Some(json!(2018))
    );
    assert_eq!(eval(json!({"$year": "$missing"})), Some(json!(null)));
}

#[test]
fn date_to_string_and_back() {
    // Manual, $dateToString: "Example" (the fixed-offset outputs; the
    // America/New_York ones need a time-zone database, refused below).
    let sales = vec![
        json!({"_id": 1, "item": "abc", "price": 10, "quantity": 2, "date": date("2014-01-01T08:15:39.736Z")}),
    ];
    let out = project(
        sales,
        json!({"_id": 0,
               "yearMonthDayUTC": {"$dateToString": {"format": "%Y-%m-%d", "date": "$date"}},
               "timewithOffset430": {"$dateToString": {"format": "%H:%M:%S:%L%z", "date": "$date", "timezone": "+04:30"}},
               "minutesOffset430": {"$dateToString": {"format": "%Z", "date": "$date", "timezone": "+04:30"}},
               "abbreviated_month": {"$dateToString": {"format": "%b", "date": "$date", "timezone": "+04:30"}},
               "full_month": {"$dateToString": {"format": "%B", "date": "$date", "timezone": "+04:30"}},
               "default": {"$dateToString": {"date": "$date"}}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"yearMonthDayUTC": "2014-01-01", "timewithOffset430": "12:45:39:736+0430",
                    "minutesOffset430": "+270", "abbreviated_month": "Jan", "full_month": "January",
                    "default": "2014-01-01T08:15:39.736Z"})
        ]
    );
    // Manual, $dateToString: onNull.
    assert_eq!(
        eval(json!({"$dateToString": {"date": "$missing", "onNull": "n/a"}})),
        Some(json!("n/a"))
    );
    // Manual, $dateFromString: "Behavior" examples.
    assert_eq!(
        eval(json!({"$dateFromString": {"dateString": "2017-02-08T12:10:40.787"}})),
        Some(date("2017-02-08T12:10:40.787Z"))
    );
    assert_eq!(
        eval(
            json!({"$dateFromString": {"dateString": "2017-02-08T12:10:40.787", "timezone": "+05:30"}})
        ),
        Some(date("2017-02-08T06:40:40.787Z"))
    );
    assert_eq!(
        eval(json!({"$dateFromString": {"dateString": "15-06-2018", "format": "%d-%m-%Y"}})),
        Some(date("2018-06-15T00:00:00Z"))
    );
    assert_eq!(
        eval(json!({"$dateFromString": {"dateString": "WEDNESDAY", "onError": "bad date"}})),
        Some(json!("bad date"))
    );
    assert_eq!(
        eval(
            json!({"$dateFromString": {"dateString": null, "onNull": {"$literal": date("1970-01-01T00:00:00Z")}}})
        ),
        Some(date("1970-01-01T00:00:00Z"))
    );
    // Olson names are refused at parse time with a message that says what works.
    let f = fx();
    f.load("c", vec![json!({"_id": 1})]);
    let e = f.error(
        "c",
        json!([{"$project": {"h": {"$hour": {"date": "$d", "timezone": "America/New_York"}}}}]),
    );
    assert!(
        matches!(&e, Error::InvalidPipeline(m) if m.contains("America/New_York") && m.contains("fixed offset")),
        "{e}"
    );
}

#[test]
fn date_from_and_to_parts() {
    // Manual, $dateFromParts: "Example" (calendar and ISO week forms).
    assert_eq!(
        eval(json!({"$dateFromParts": {"year": 2017, "month": 2, "day": 8, "hour": 12}})),
        Some(date("2017-02-08T12:00:00Z"))
    );
    assert_eq!(
        eval(
            json!({"$dateFromParts": {"isoWeekYear": 2017, "isoWeek": 6, "isoDayOfWeek": 3, "hour": 12}})
        ),
        Some(date("2017-02-08T12:00:00Z"))
    );
    assert_eq!(
        eval(
            json!({"$dateFromParts": {"year": 2016, "month": 12, "day": 31, "hour": 23, "minute": 46, "second": 12, "timezone": "-05:00"}})
        ),
        Some(date("2017-01-01T04:46:12Z"))
    );
    // Manual, $dateFromParts: "Value Range" — values outside the usual range carry over.
    assert_eq!(
        eval(json!({"$dateFromParts": {"year": 2017, "month": 14, "day": 1, "hour": 12}})),
        Some(date("2018-02-01T12:00:00Z"))
    );
    assert_eq!(
        eval(json!({"$dateFromParts": {"year": 2017, "month": 0, "day": 1, "hour": 12}})),
        Some(date("2016-12-01T12:00:00Z"))
    );
    // Manual, $dateToParts: "Example".
    let sales = vec![
        json!({"_id": 2, "item": "abc", "price": 10, "quantity": 2, "date": date("2017-01-01T01:29:09.123Z")}),
    ];
    let out = project(
        sales,
        json!({"_id": 0, "date": {"$dateToParts": {"date": "$date"}},
               "date_iso": {"$dateToParts": {"date": "$date", "iso8601": true}},
               "date_offset": {"$dateToParts": {"date": "$date", "timezone": "-05:00"}}}),
    );
    assert_eq!(
        out[0],
        json!({
            "date": {"year": 2017, "month": 1, "day": 1, "hour": 1, "minute": 29, "second": 9, "millisecond": 123},
            "date_iso": {"isoWeekYear": 2016, "isoWeek": 52, "isoDayOfWeek": 7, "hour": 1, "minute": 29, "second": 9, "millisecond": 123},
            "date_offset": {"year": 2016, "month": 12, "day": 31, "hour": 20, "minute": 29, "second": 9, "millisecond": 123}
        })
    );
}

#[test]
fn date_arithmetic() {
    // Manual, $dateAdd: "Add a Future Date" (3 days after purchase).
    let shipping = vec![
        json!({"_id": 1, "custId": 456, "purchaseDate": date("2020-12-31T00:00:00Z")}),
        json!({"_id": 2, "custId": 457, "purchaseDate": date("2021-02-28T00:00:00Z")}),
        json!({"_id": 3, "custId": 458, "purchaseDate": date("2021-02-26T00:00:00Z")}),
    ];
    assert_eq!(
        column(
            &project(
                shipping,
                json!({"expectedDeliveryDate": {"$dateAdd": {"startDate": "$purchaseDate", "unit": "day", "amount": 3}}})
            ),
            "expectedDeliveryDate"
        ),
        vec![
            date("2021-01-03T00:00:00Z"),
            date("2021-03-03T00:00:00Z"),
            date("2021-03-01T00:00:00Z")
        ]
    );
    // Manual, $dateAdd: "Behavior" — months end on the last day of a shorter month.
    assert_eq!(
        eval(
            json!({"$dateAdd": {"startDate": {"$literal": date("2021-01-31T12:00:00Z")}, "unit": "month", "amount": 1}})
        ),
        Some(date("2021-02-28T12:00:00Z"))
    );
    assert_eq!(
        eval(
            json!({"$dateAdd": {"startDate": {"$literal": date("2020-02-29T00:00:00Z")}, "unit": "year", "amount": 1}})
        ),
        Some(date("2021-02-28T00:00:00Z"))
    );
    // Manual, $dateSubtract: "Subtract a Fixed Amount".
    assert_eq!(
        eval(
            json!({"$dateSubtract": {"startDate": {"$literal": date("2021-01-05T00:00:00Z")}, "unit": "hour", "amount": 48}})
        ),
        Some(date("2021-01-03T00:00:00Z"))
    );
    // Manual, $dateDiff: "Elapsed Time" (days between purchase and delivery) and
    // "Use a Custom Week Start".
    let orders = vec![
        json!({"_id": 0, "custId": 456, "purchased": date("2020-12-31T00:00:00Z"), "delivered": date("2021-01-05T00:00:00Z")}),
        json!({"_id": 1, "custId": 457, "purchased": date("2021-02-28T00:00:00Z"), "delivered": date("2021-03-07T00:00:00Z")}),
        json!({"_id": 2, "custId": 458, "purchased": date("2021-02-16T00:00:00Z"), "delivered": date("2021-02-18T00:00:00Z")}),
    ];
    let out = project(
        orders,
        json!({"_id": 0,
               "days": {"$dateDiff": {"startDate": "$purchased", "endDate": "$delivered", "unit": "day"}},
               "weeks": {"$dateDiff": {"startDate": "$purchased", "endDate": "$delivered", "unit": "week", "startOfWeek": "monday"}},
               "months": {"$dateDiff": {"startDate": "$purchased", "endDate": "$delivered", "unit": "month"}}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"days": 5, "weeks": 1, "months": 1}),
            json!({"days": 7, "weeks": 1, "months": 1}),
            json!({"days": 2, "weeks": 0, "months": 0}),
        ]
    );
    // Manual, $dateTrunc: "Truncate Order Dates" (month bins of 6 from 2000-01-01).
    let sales = vec![
        json!({"_id": 0, "orderDate": date("2020-05-18T14:10:30Z")}),
        json!({"_id": 1, "orderDate": date("2021-03-20T11:30:05Z")}),
        json!({"_id": 2, "orderDate": date("2021-01-11T06:31:15Z")}),
    ];
    let out = project(
        sales,
        json!({"_id": 0, "m": {"$dateTrunc": {"date": "$orderDate", "unit": "month", "binSize": 6}},
               "d": {"$dateTrunc": {"date": "$orderDate", "unit": "day"}},
               "w": {"$dateTrunc": {"date": "$orderDate", "unit": "week", "startOfWeek": "monday"}}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"m": date("2020-01-01T00:00:00Z"), "d": date("2020-05-18T00:00:00Z"), "w": date("2020-05-18T00:00:00Z")}),
            json!({"m": date("2021-01-01T00:00:00Z"), "d": date("2021-03-20T00:00:00Z"), "w": date("2021-03-15T00:00:00Z")}),
            json!({"m": date("2021-01-01T00:00:00Z"), "d": date("2021-01-11T00:00:00Z"), "w": date("2021-01-11T00:00:00Z")}),
        ]
    );
}

// ---------------------------------------------------------------------------
// Variables, literals, expression objects
// ---------------------------------------------------------------------------

#[test]
fn variables_literals_and_objects() {
    // Manual, $let: "Example" (total with tax).
    let sales = vec![
        json!({"_id": 1, "price": 10, "tax": 0.50, "applyDiscount": true}),
        json!({"_id": 2, "price": 10, "tax": 0.25, "applyDiscount": false}),
    ];
    let out = project(
        sales,
        json!({"finalTotal": {"$let": {
            "vars": {"total": {"$add": ["$price", "$tax"]}, "discounted": {"$cond": {"if": "$applyDiscount", "then": 0.9, "else": 1}}},
            "in": {"$multiply": ["$$total", "$$discounted"]}}}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "finalTotal": 9.450000000000001}),
            json!({"_id": 2, "finalTotal": 10.25})
        ]
    );
    // Manual, $literal: "Treat $ as a Literal".
    let store_inventory = vec![
        json!({"_id": 1, "item": "napkins", "price": "$2.50"}),
        json!({"_id": 2, "item": "coffee", "price": "1"}),
        json!({"_id": 3, "item": "soap", "price": "$1"}),
    ];
    assert_eq!(
        column(
            &project(
                store_inventory,
                json!({"costsOneDollar": {"$eq": ["$price", {"$literal": "$1"}]}})
            ),
            "costsOneDollar"
        ),
        vec![json!(false), json!(false), json!(true)]
    );
    // Manual, "Expressions": $$ROOT is the whole document; $$CURRENT the same here.
    assert_eq!(
        project(
            vec![json!({"_id": 1, "a": {"b": 2}})],
            json!({"_id": 0, "root": "$$ROOT", "b": "$$CURRENT.a.b"})
        ),
        vec![json!({"root": {"_id": 1, "a": {"b": 2}}, "b": 2})]
    );
    // Field paths through arrays of documents collect the values ("Field Paths").
    assert_eq!(
        project(
            vec![json!({"_id": 1, "a": [{"b": 1}, {"c": 2}, {"b": 3}, 4, [{"b": 5}]]})],
            json!({"_id": 0, "r": "$a.b"})
        ),
        vec![json!({"r": [1, 3, [5]]})]
    );
    // Expression objects (here inside an operator; directly under $project an
    // object is a nested projection) drop missing fields; arrays hold null for them.
    assert_eq!(
        eval(json!({"$mergeObjects": [{"a": "$missing", "b": 1, "c": ["$missing"]}]})),
        Some(json!({"b": 1, "c": [null]}))
    );
    // Under $project, `1` in a nested object includes a field, an expression computes one.
    assert_eq!(
        project(
            vec![json!({"_id": 1, "r": {"b": 5, "x": 0}})],
            json!({"_id": 0, "r": {"a": "$missing", "b": 1, "c": ["$missing"]}})
        ),
        vec![json!({"r": {"b": 5, "c": [null]}})]
    );
    // $$NOW is a date, the same for the whole run.
    let now = eval(json!("$$NOW")).unwrap();
    assert!(now.get("$date").is_some(), "{now}");
}

// ---------------------------------------------------------------------------
// Accumulators as expressions
// ---------------------------------------------------------------------------

#[test]
fn accumulator_expressions() {
    // Manual, $sum / $avg / $min / $max: "Use in $project Stage" (students' quizzes, labs, exams).
    let students = vec![
        json!({"_id": 1, "quizzes": [10, 6, 7], "labs": [5, 8], "final": 80, "midterm": 75}),
        json!({"_id": 2, "quizzes": [9, 10], "labs": [8, 8], "final": 95, "midterm": 80}),
        json!({"_id": 3, "quizzes": [4, 5, 5], "labs": [6, 5], "final": 78, "midterm": 70}),
    ];
    let out = project(
        students.clone(),
        json!({"quizTotal": {"$sum": "$quizzes"}, "labTotal": {"$sum": "$labs"}, "examTotal": {"$sum": ["$final", "$midterm"]}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "quizTotal": 23, "labTotal": 13, "examTotal": 155}),
            json!({"_id": 2, "quizTotal": 19, "labTotal": 16, "examTotal": 175}),
            json!({"_id": 3, "quizTotal": 14, "labTotal": 11, "examTotal": 148}),
        ]
    );
    let out = project(
        students.clone(),
        json!({"quizAvg": {"$avg": "$quizzes"}, "labAvg": {"$avg": "$labs"}, "examAvg": {"$avg": ["$final", "$midterm"]}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "quizAvg": 7.666666666666667, "labAvg": 6.5, "examAvg": 77.5}),
            json!({"_id": 2, "quizAvg": 9.5, "labAvg": 8.0, "examAvg": 87.5}),
            json!({"_id": 3, "quizAvg": 4.666666666666667, "labAvg": 5.5, "examAvg": 74.0}),
        ]
    );
    let out = project(
        students,
        json!({"quizMax": {"$max": "$quizzes"}, "labMin": {"$min": "$labs"}, "examMax": {"$max": ["$final", "$midterm"]}}),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "quizMax": 10, "labMin": 5, "examMax": 80}),
            json!({"_id": 2, "quizMax": 10, "labMin": 8, "examMax": 95}),
            json!({"_id": 3, "quizMax": 5, "labMin": 5, "examMax": 78}),
        ]
    );
    // Manual, $sum: "Behavior" — non-numeric values are ignored; none at all gives 0.
    assert_eq!(eval(json!({"$sum": [1, "a", null, 2.5]})), Some(json!(3.5)));
    assert_eq!(eval(json!({"$sum": "$missing"})), Some(json!(0)));
    assert_eq!(eval(json!({"$avg": "$missing"})), Some(json!(null)));
    assert_eq!(eval(json!({"$min": [null, "$missing"]})), Some(json!(null)));
    assert_eq!(eval(json!({"$max": [1, "a"]})), Some(json!("a")));
    let sd = eval(json!({"$stdDevSamp": [[2, 4, 4, 4, 5, 5, 7, 9]]})).unwrap();
    assert!(
        (sd.as_f64().unwrap() - 2.138089935299395).abs() < 1e-12,
        "{sd}"
    );
}

// ---------------------------------------------------------------------------
// Null/missing rules and errors
// ---------------------------------------------------------------------------

#[test]
fn null_and_missing_rules() {
    // Manual, per operator: arithmetic, $concat, $split, $arrayElemAt,
    // $concatArrays, $dateToString give null for a null or missing input; the
    // $substr family and $toLower/$toUpper take it as "".
    for e in [
        json!({"$add": [1, "$missing"]}),
        json!({"$multiply": [null, 2]}),
        json!({"$subtract": ["$missing", 1]}),
        json!({"$divide": [null, 1]}),
        json!({"$abs": null}),
        json!({"$concat": ["a", "$missing"]}),
        json!({"$arrayElemAt": ["$missing", 0]}),
        json!({"$concatArrays": [[1], null]}),
        json!({"$dateToString": {"date": "$missing"}}),
        json!({"$toInt": "$missing"}),
        json!({"$year": null}),
        json!({"$ifNull": ["$missing", null]}),
        json!({"$objectToArray": "$missing"}),
    ] {
        assert_eq!(eval(e.clone()), Some(json!(null)), "{e}");
    }
    for e in [
        json!({"$toUpper": "$missing"}),
        json!({"$substrCP": [null, 0, 2]}),
    ] {
        assert_eq!(eval(e.clone()), Some(json!("")), "{e}");
    }
    // A missing field is missing in the output, $$REMOVE removes a field.
    assert_eq!(eval(json!("$missing")), None);
    assert_eq!(eval(json!({"$cond": [true, "$$REMOVE", 1]})), None);
    assert_eq!(eval(json!({"$ifNull": ["$missing", "$alsoMissing"]})), None);
}

#[test]
fn type_errors_are_typed() {
    let f = fx();
    f.load(
        "c",
        vec![json!({"_id": 1, "s": "text", "n": 4, "d": {"$date": "2020-01-01T00:00:00Z"}})],
    );
    // Data-dependent failures: TypeMismatch naming the operator, the output field and the stage.
    for (expr, op) in [
        (json!({"$add": ["$s", 1]}), "$add"),
        (json!({"$add": ["$d", "$d"]}), "$add"),
        (json!({"$divide": ["$n", 0]}), "$divide"),
        (json!({"$mod": ["$n", 0]}), "$mod"),
        (json!({"$sqrt": -1}), "$sqrt"),
        (json!({"$ln": 0}), "$ln"),
        (json!({"$concat": ["$s", "$n"]}), "$concat"),
        (json!({"$strLenCP": "$n"}), "$strLenCP"),
        (json!({"$in": [1, "$s"]}), "$in"),
        (json!({"$concatArrays": ["$s"]}), "$concatArrays"),
        (json!({"$filter": {"input": "$s", "cond": true}}), "$filter"),
        (json!({"$year": "$s"}), "$year"),
        (json!({"$mergeObjects": ["$s"]}), "$mergeObjects"),
        (json!({"$arrayToObject": [[1]]}), "$arrayToObject"),
        (json!({"$toObjectId": "$s"}), "$convert"),
    ] {
        let e = f.error("c", json!([{"$project": {"out": expr.clone()}}]));
        match &e {
            Error::TypeMismatch {
                operator,
                path,
                message,
            } => {
                assert_eq!(operator, op, "{expr}: {e}");
                assert_eq!(path, "out", "{expr}: {e}");
                assert!(message.contains("stage 1 ($project)"), "{expr}: {e}");
            }
            other => panic!("{expr}: expected TypeMismatch, got {other:?}"),
        }
    }
    // Malformed expressions: InvalidPipeline before anything runs.
    for (expr, needle) in [
        (json!({"$add": 1, "$sub": 2}), "exactly one field"),
        (
            json!({"$frobnicate": 1}),
            "unknown expression operator '$frobnicate'",
        ),
        (json!({"$subtract": [1]}), "exactly 2 arguments"),
        (json!("$$undefinedVar"), "undefined variable"),
        (json!("$$NOPE"), "unknown system variable"),
        (
            json!({"$let": {"vars": {"Bad": 1}, "in": 1}}),
            "not a valid variable name",
        ),
        (json!({"$cond": {"if": true, "then": 1}}), "'else'"),
        (
            json!({"$function": {"body": "x", "args": [], "lang": "js"}}),
            "never executes code",
        ),
        (json!("$a..b"), "empty part"),
        (
            json!({"$map": {"input": [], "in": "$$other"}}),
            "undefined variable",
        ),
        (
            json!({"$dateToString": {"date": "$d", "format": "%Q"}}),
            "%Q",
        ),
        (
            json!({"$dateAdd": {"startDate": "$d", "unit": "fortnight", "amount": 1}}),
            "fortnight",
        ),
        (json!({"$push": "$n"}), "accumulator"),
        (json!({"$switch": {"branches": []}}), "at least one branch"),
        (json!({"$round": [1.5, 2, 3]}), "1 to 2 arguments"),
    ] {
        let e = f.error("c", json!([{"$project": {"out": expr.clone()}}]));
        assert!(
            matches!(&e, Error::InvalidPipeline(m) if m.contains(needle) && m.starts_with("stage 1 ($project)")),
            "{expr}: {e}"
        );
    }
}
