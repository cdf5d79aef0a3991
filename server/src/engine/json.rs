//! BSON ↔ `serde_json::Value` for the engine's JSON API, with BSON-only types
//! as MongoDB Extended JSON.
//!
//! Towards the engine the conversion keeps every type the engine can store:
//! int64 values that fit in 32 bits are sent as `{"$numberLong": ..}` (the
//! engine stores them as int64), NaN and ±infinity as `{"$numberDouble": ..}`,
//! decimals as `{"$numberDecimal": ..}`; everything else uses relaxed Extended
//! JSON. Back from the engine, JSON integers become int32 when they fit and
//! int64 otherwise, because the engine's JSON output does not say which they
//! were (see the fidelity tests in `tests/fidelity.rs`).

use bson::{Bson, Document};
use serde_json::{Map, Number, Value};

/// Converts a BSON document for the engine.
pub fn doc_to_json(doc: &Document) -> Value {
    let mut map = Map::with_capacity(doc.len());
    for (k, v) in doc {
        map.insert(k.clone(), to_json(v));
    }
    Value::Object(map)
}

/// Converts a BSON value for the engine.
pub fn to_json(v: &Bson) -> Value {
    match v {
        Bson::Double(f) if f.is_finite() => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Bson::Double(f) => {
            let s = if f.is_nan() {
                "NaN"
            } else if *f > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            serde_json::json!({ "$numberDouble": s })
        }
        Bson::String(s) => Value::String(s.clone()),
        Bson::Document(d) => doc_to_json(d),
        Bson::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::Null => Value::Null,
        Bson::Int32(i) => Value::Number((*i).into()),
        Bson::Int64(i) if i32::try_from(*i).is_ok() => {
            serde_json::json!({ "$numberLong": i.to_string() })
        }
        Bson::Int64(i) => Value::Number((*i).into()),
        Bson::Decimal128(d) => serde_json::json!({ "$numberDecimal": d.to_string() }),
        other => other.clone().into_relaxed_extjson(),
    }
}

/// Converts an engine result document back to BSON.
pub fn doc_from_json(v: Value) -> Document {
    match from_json(v) {
        Bson::Document(d) => d,
        other => {
            let mut d = Document::new();
            d.insert("value", other);
            d
        }
    }
}

/// Converts an engine result value back to BSON.
pub fn from_json(v: Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(b),
        Value::Number(n) => number(&n),
        Value::String(s) => Bson::String(s),
        Value::Array(items) => Bson::Array(items.into_iter().map(from_json).collect()),
        Value::Object(map) => {
            if map.len() <= 2 && map.keys().all(|k| k.starts_with('$')) && !map.is_empty() {
                match Bson::try_from(Value::Object(map.clone())) {
                    Ok(Bson::Document(_)) | Err(_) => {}
                    Ok(b) => return b,
                }
            }
            let mut d = Document::new();
            for (k, v) in map {
                d.insert(k, from_json(v));
            }
            Bson::Document(d)
        }
    }
}

fn number(n: &Number) -> Bson {
    if let Some(i) = n.as_i64() {
        match i32::try_from(i) {
            Ok(small) => Bson::Int32(small),
            Err(_) => Bson::Int64(i),
        }
    } else if let Some(u) = n.as_u64() {
        // Only above i64::MAX: the engine keeps these exact as integral decimals.
        u.to_string()
            .parse::<bson::Decimal128>()
            .map(Bson::Decimal128)
            .unwrap_or(Bson::Double(u as f64))
    } else {
        Bson::Double(n.as_f64().unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn round_trips_the_types_json_can_carry() {
        let d = doc! {
            "i": 5, "big": 5_000_000_000i64, "f": 1.0, "neg0": -0.0, "s": "x",
            "oid": bson::oid::ObjectId::new(), "when": bson::DateTime::from_millis(1_700_000_000_000),
            "nested": {"a": [1, {"b": null}]},
            "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "ts": bson::Timestamp { time: 5, increment: 6 },
        };
        let back = doc_from_json(doc_to_json(&d));
        assert_eq!(back, d);
    }

    #[test]
    fn small_int64_is_sent_as_number_long() {
        assert_eq!(
            to_json(&Bson::Int64(7)),
            serde_json::json!({"$numberLong": "7"})
        );
        assert_eq!(
            to_json(&Bson::Double(f64::NAN)),
            serde_json::json!({"$numberDouble": "NaN"})
        );
    }
}
