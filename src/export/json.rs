//! The JSON export: documented by the JSON Schema in `schemas/posture-export.v1.json`.

use ed25519_dalek::{Signer, SigningKey};

use super::{ExportSignature, PostureExport};

/// What an export's signature covers: these 24 bytes, then the export rendered without its
/// `signature` member.
pub const SIGNATURE_DOMAIN: &[u8] = b"soc2-operator/export/v1\n";

/// Pretty-printed JSON (two-space indent, keys in schema order, a final newline), signed with
/// `key` when given; byte-identical for the same export and key.
pub fn render(export: &PostureExport, key: Option<&SigningKey>) -> String {
    let unsigned = PostureExport {
        signature: None,
        ..export.clone()
    };
    let text = pretty(&unsigned);
    let Some(key) = key else { return text };
    let signature = key.sign(&signed_message(&text));
    pretty(&PostureExport {
        signature: Some(ExportSignature {
            algorithm: "Ed25519".into(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            value: hex::encode(signature.to_bytes()),
        }),
        ..unsigned
    })
}

/// The bytes an export's signature covers, given its unsigned rendering.
pub fn signed_message(unsigned: &str) -> Vec<u8> {
    [SIGNATURE_DOMAIN, unsigned.as_bytes()].concat()
}

pub(super) fn pretty(export: &PostureExport) -> String {
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
