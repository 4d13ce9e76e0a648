//! Where exports go: a ConfigMap owned by the PostureReport (garbage-collected with it), and
//! object storage (`s3://bucket/prefix`, `file:///path`) through the object_store crate.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
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

    /// Where this file went, with its digest and size.
    fn artifact(&self, location: String, generated_at: Timestamp) -> Artifact {
        Artifact {
            format: self.format,
            location,
            sha256: hex::encode(Sha256::digest(&self.bytes)),
            bytes: self.bytes.len() as u64,
            generated_at,
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
    #[error("object store {url}: {reason}")]
    ObjectStore { url: String, reason: String },
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
        .map(|f| {
            f.artifact(
                format!("configmap://{namespace}/{name}/{}", f.key()),
                generated_at,
            )
        })
        .collect())
}

/// Credentials and endpoint of an `s3://` destination, from a Secret's keys `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, and optionally `AWS_REGION` (default us-east-1) and `AWS_ENDPOINT_URL`
/// (an S3-compatible server).
pub type Credentials = BTreeMap<String, String>;

fn object_store_for(
    url: &str,
    credentials: &Credentials,
) -> Result<(Box<dyn ObjectStore>, String), String> {
    if let Some(path) = url.strip_prefix("file://") {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let store = LocalFileSystem::new_with_prefix(path).map_err(|e| e.to_string())?;
        return Ok((Box::new(store), String::new()));
    }
    let rest = url
        .strip_prefix("s3://")
        .ok_or("use s3://bucket/prefix or file:///path")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let key = |name: &str| credentials.get(name).cloned();
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(key("AWS_REGION").unwrap_or_else(|| "us-east-1".into()));
    if let (Some(id), Some(secret)) = (key("AWS_ACCESS_KEY_ID"), key("AWS_SECRET_ACCESS_KEY")) {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret);
    }
    if let Some(endpoint) = key("AWS_ENDPOINT_URL") {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint);
    }
    let store = builder.build().map_err(|e| e.to_string())?;
    Ok((Box::new(store), prefix.trim_matches('/').to_string()))
}

/// Puts every file under `<prefix>/<run instant>/posture.<ext>`. A put is atomic under its final
/// name (S3 semantics; a local file is written aside and renamed), so no reader sees half of one.
pub async fn publish_object_store(
    url: &str,
    credentials: &Credentials,
    files: &[Rendered],
    generated_at: Timestamp,
) -> Result<Vec<Artifact>, SinkError> {
    let fail = |reason: String| SinkError::ObjectStore {
        url: url.into(),
        reason,
    };
    let (store, prefix) = object_store_for(url, credentials).map_err(fail)?;
    let run = generated_at.strftime("%Y%m%dT%H%M%SZ").to_string();
    let mut artifacts = Vec::new();
    for file in files {
        let key = [prefix.as_str(), run.as_str(), file.key()]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        store
            .put(
                &ObjectPath::from(key.as_str()),
                PutPayload::from(file.bytes.clone()),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        let location = format!("{}/{run}/{}", url.trim_end_matches('/'), file.key());
        artifacts.push(file.artifact(location, generated_at));
    }
    Ok(artifacts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_urls_write_whole_files_with_their_digest() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/exports", dir.path().display());
        let files = [Rendered {
            format: ExportFormat::Csv,
            bytes: b"id\nCC6.6\n".to_vec(),
        }];
        let at: Timestamp = "2026-12-01T06:00:00Z".parse().unwrap();
        let artifacts = publish_object_store(&url, &Credentials::new(), &files, at)
            .await
            .unwrap();
        let written = dir.path().join("exports/20261201T060000Z/posture.csv");
        assert_eq!(std::fs::read(&written).unwrap(), b"id\nCC6.6\n");
        assert_eq!(
            artifacts[0].location,
            format!("{url}/20261201T060000Z/posture.csv")
        );
        assert_eq!(
            artifacts[0].sha256,
            hex::encode(Sha256::digest(b"id\nCC6.6\n"))
        );
        let err = publish_object_store("ftp://x", &Credentials::new(), &files, at)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("use s3://bucket/prefix"), "{err}");
    }

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
