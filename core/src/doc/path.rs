//! Dotted field paths (`"items.sku"`, `"tags.0"`).

use std::fmt;

/// A parsed dotted path. Each part is a field name or, where the value is an
/// array, a decimal array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    dotted: String,
    parts: Vec<String>,
}

impl FieldPath {
    /// Parses a dotted path; every part must be non-empty and free of NUL bytes.
    pub fn parse(dotted: &str) -> Result<FieldPath, String> {
        if dotted.is_empty() {
            return Err("a field path cannot be empty".into());
        }
        if dotted.contains('\0') {
            return Err(format!("field path {dotted:?} contains a NUL byte"));
        }
        let parts: Vec<String> = dotted.split('.').map(str::to_owned).collect();
        if parts.iter().any(String::is_empty) {
            return Err(format!(
                "field path '{dotted}' has an empty part (leading, trailing or doubled '.')"
            ));
        }
        Ok(FieldPath {
            dotted: dotted.to_owned(),
            parts,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.dotted
    }

    /// The parts between the dots.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// True when `self` equals `other` or one is a prefix of the other
    /// (`a` and `a.b` overlap; `a` and `ab` do not).
    pub fn overlaps(&self, other: &FieldPath) -> bool {
        let n = self.parts.len().min(other.parts.len());
        self.parts[..n] == other.parts[..n]
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dotted)
    }
}

/// Parses a path part as an array index (`"0"`, `"12"`; no sign, no leading `+`).
pub fn array_index(part: &str) -> Option<usize> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}
