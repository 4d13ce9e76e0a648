//! Where exports go: a ConfigMap owned by the PostureReport (garbage-collected with it).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::crd::{Artifact, ExportFormat, FIELD_MANAGER, PostureReport};

/// What a ConfigMap may hold: Kubernetes caps an object at 1 MiB; keep room for its metadata.
pub const CONFIGMAP_LIMIT: usize = 1024 * 1024 - 16 * 1024;

/// One rendered export.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub format: ExportFormat,
    pub bytes: Vec<u8>,
}

impl Rendered {
    pub fn key(&self) -> &'static str {
        match self.format {
            ExportFormat::Pdf => "posture.pdf",
            ExportFormat::Csv => "posture.csv",
            ExportFormat::Json => "posture.json",
        }
    }

    fn binary(&self) -> bool {
        self.format == ExportFormat::Pdf
    }

    /// Bytes it takes in a ConfigMap (binaryData is base64).
    fn stored_size(&self) -> usize {
        if self.binary() {
            self.bytes.len().div_ceil(3) * 4
        } else {
            self.bytes.len()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(
        "the exports take {bytes} bytes, more than a ConfigMap holds ({CONFIGMAP_LIMIT}); publish to object storage instead"
    )]
    TooLarge { bytes: usize },
    #[error("writing ConfigMap {name}: {source}")]
    Kube { name: String, source: kube::Error },
}

/// Checks the size before any write, so an oversized export is a condition, not a failing loop.
pub fn fits_in_configmap(files: &[Rendered]) -> Result<(), SinkError> {
    let bytes: usize = files.iter().map(|f| f.stored_size() + f.key().len()).sum();
    if bytes > CONFIGMAP_LIMIT {
        Err(SinkError::TooLarge { bytes })
    } else {
        Ok(())
    }
}

/// Writes every file into the ConfigMap `name` (one server-side apply: readers see all the new
/// files or none) owned by `report`, and returns where each went.
pub async fn publish_configmap(
    client: &kube::Client,
    report: &PostureReport,
    name: &str,
    files: &[Rendered],
    generated_at: Timestamp,
) -> Result<Vec<Artifact>, SinkError> {
    fits_in_configmap(files)?;
    let namespace = report.namespace().unwrap_or_else(|| "default".into());
    let mut data = BTreeMap::new();
    let mut binary_data = BTreeMap::new();
    for file in files {
        if file.binary() {
            binary_data.insert(file.key().to_string(), ByteString(file.bytes.clone()));
        } else {
            data.insert(
                file.key().to_string(),
                String::from_utf8_lossy(&file.bytes).into_owned(),
            );
        }
    }
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                FIELD_MANAGER.to_string(),
            )])),
            annotations: Some(BTreeMap::from([(
                "compliance.behavry.io/generated-at".to_string(),
                generated_at.to_string(),
            )])),
            owner_references: report.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        data: Some(data),
        binary_data: Some(binary_data),
        ..Default::default()
    };
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let mut patch = serde_json::to_value(&config_map).expect("a ConfigMap serialises");
    patch["apiVersion"] = "v1".into();
    patch["kind"] = "ConfigMap".into();
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| SinkError::Kube {
        name: name.into(),
        source,
    })?;
    Ok(files
        .iter()
        .map(|f| Artifact {
            format: f.format,
            location: format!("configmap://{namespace}/{name}/{}", f.key()),
            sha256: hex::encode(Sha256::digest(&f.bytes)),
            bytes: f.bytes.len() as u64,
            generated_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_limit_counts_base64() {
        let pdf = |n| Rendered {
            format: ExportFormat::Pdf,
            bytes: vec![0; n],
        };
        assert!(fits_in_configmap(&[pdf(700_000)]).is_ok());
        let err = fits_in_configmap(&[pdf(800_000)]).unwrap_err();
        assert!(
            err.to_string().contains("more than a ConfigMap holds"),
            "{err}"
        );
    }
}
