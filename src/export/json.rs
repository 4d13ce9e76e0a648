//! The JSON export: documented by the JSON Schema in `schemas/posture-export.v1.json`.

use super::PostureExport;

/// Pretty-printed JSON; byte-identical for the same export.
pub fn render(export: &PostureExport) -> String {
    let mut out = serde_json::to_string_pretty(export).expect("the export always serialises");
    out.push('\n');
    out
}

/// The JSON Schema every export validates against (generated from the Rust types).
pub fn schema() -> String {
    let mut schema = schemars::schema_for!(PostureExport);
    schema.insert(
        "$id".into(),
        "https://compliance.behavry.io/schemas/posture-export.v1.json".into(),
    );
    let mut out = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_published_schema_matches_the_types() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/posture-export.v1.json"
        );
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == super::schema(),
            "schemas/posture-export.v1.json is stale: run `cargo run -- export-schema > schemas/posture-export.v1.json`"
        );
    }
}
