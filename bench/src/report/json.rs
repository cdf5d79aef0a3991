//! The JSON rendering: every raw figure, check and machine fact.

use super::Report;

/// The report as pretty-printed JSON.
pub fn render(report: &Report) -> serde_json::Result<String> {
    serde_json::to_string_pretty(report)
}
