//! The benchmark documents: `{_id, name, email, age 18..80, city (50 values),
//! tags 0-4 strings, score f64}`, about 130 bytes as JSON.
//!
//! Every field is a pure function of the document number, so workloads can
//! compute expected answers (a sample read, the number of documents a scan
//! must match) without keeping the data set in memory.

use serde::{Deserialize, Serialize};

/// Number of distinct `city` values.
pub const CITIES: u64 = 50;

/// One benchmark document, as stored by every engine (JSON, BSON or a typed
/// struct, depending on the engine).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Primary key.
    #[serde(rename = "_id")]
    pub id: i64,
    /// A display name.
    pub name: String,
    /// Unique across the data set (unique index).
    pub email: String,
    /// 18..=80 (non-unique index).
    pub age: i32,
    /// One of [`CITIES`] values, `city00`..`city49` (not indexed).
    pub city: String,
    /// Zero to four short strings.
    pub tags: Vec<String>,
    /// 0.00..999.99 (not indexed).
    pub score: f64,
}

/// SplitMix64: a fast, well-mixed hash of a counter.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A small deterministic random number generator (SplitMix64 stream).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }
    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The email of document `i` (the unique-index key).
pub fn email(i: i64) -> String {
    format!("user{i}@example.com")
}

/// The smallest age the generator gives.
pub const MIN_AGE: i32 = 18;

/// The largest age the generator gives.
pub const MAX_AGE: i32 = 80;

/// The age of document `i`, in `MIN_AGE..=MAX_AGE`.
pub fn age(i: i64) -> i32 {
    MIN_AGE + (mix(i as u64) % (MAX_AGE - MIN_AGE + 1) as u64) as i32
}

/// The city of document `i`.
pub fn city(i: i64) -> String {
    format!("city{:02}", (mix(i as u64) >> 8) % CITIES)
}

/// The score of document `i`.
pub fn score(i: i64) -> f64 {
    ((mix(i as u64) >> 32) % 100_000) as f64 / 100.0
}

/// Document number `i`.
pub fn user(i: i64) -> User {
    let h = mix(i as u64);
    let tags = (0..(h >> 16) % 5)
        .map(|k| format!("tag{}", ((h >> 20) + k) % 20))
        .collect();
    User {
        id: i,
        name: format!("user {i}"),
        email: email(i),
        age: age(i),
        city: city(i),
        tags,
        score: score(i),
    }
}

/// One order of the aggregation benchmark: `{_id, user, amount}`, `user`
/// being the `_id` of one of the benchmark users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Primary key.
    #[serde(rename = "_id")]
    pub id: i64,
    /// The user who ordered (a `User` `_id` in `0..users`).
    pub user: i64,
    /// 0.00..999.99.
    pub amount: f64,
}

/// Order number `j` among orders of `users` users.
pub fn order(j: i64, users: u64) -> Order {
    let h = mix((j as u64) ^ 0x5DEE_CE66_D1CE_4E5B);
    Order {
        id: j,
        user: (h % users.max(1)) as i64,
        amount: ((h >> 24) % 100_000) as f64 / 100.0,
    }
}

/// The unindexed filter of workload W6: `{city: CITY, score: {$gt: MIN}}`.
pub const SCAN_CITY: &str = "city07";
/// Lower bound (exclusive) on `score` in workload W6.
pub const SCAN_MIN_SCORE: f64 = 500.0;

/// How many of documents `0..n` match the W6 filter.
pub fn scan_matches(n: u64) -> u64 {
    (0..n as i64)
        .filter(|&i| city(i) == SCAN_CITY && score(i) > SCAN_MIN_SCORE)
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_deterministic_and_in_range() {
        for i in 0..10_000 {
            let u = user(i);
            assert_eq!(u, user(i));
            assert!((18..=80).contains(&u.age));
            assert!(u.tags.len() <= 4);
            assert!((0.0..1000.0).contains(&u.score));
        }
        let json = serde_json::to_string(&user(123_456)).unwrap();
        assert!((90..200).contains(&json.len()), "{json}");
    }

    #[test]
    fn scan_filter_is_selective_but_not_empty() {
        let m = scan_matches(100_000);
        assert!(m > 500 && m < 2_000, "{m}");
    }
}
