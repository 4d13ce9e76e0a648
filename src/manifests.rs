//! Reading our resources from YAML (or JSON) files and directories, as a GitOps repository
//! holds them: multi-document files, `kind: List`, other kinds passed over.

use std::path::{Path, PathBuf};

use kube::{Resource, ResourceExt};
use serde_json::Value;

use crate::crd::{PostureReport, Soc2Requirement};
use crate::{Error, Result};

/// Resources found under the given paths, in file order.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    pub requirements: Vec<Soc2Requirement>,
    pub reports: Vec<PostureReport>,
}

/// Loads every `.yaml`, `.yml` and `.json` file under `paths` (directories recursively, sorted).
/// Any malformed document, unknown field or invalid spec fails the whole load, naming the file,
/// the resource and the field.
pub fn load(paths: &[PathBuf]) -> Result<Manifests> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    let mut found = Manifests::default();
    for file in &files {
        load_file(file, &mut found)?;
    }
    let mut names = std::collections::HashSet::new();
    for r in &found.requirements {
        if !names.insert((r.namespace(), r.name_any())) {
            return Err(Error::Manifest {
                path: paths_text(paths),
                reason: format!("Soc2Requirement {} is defined twice", r.name_any()),
            });
        }
    }
    Ok(found)
}

fn paths_text(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let io_error = |e: std::io::Error| Error::Manifest {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io_error)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io_error)?;
        entries.sort();
        for entry in entries {
            let manifest = matches!(
                entry.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            );
            if entry.is_dir() || manifest {
                collect(&entry, files)?;
            }
        }
    } else {
        std::fs::metadata(path).map_err(io_error)?;
        files.push(path.to_path_buf());
    }
    Ok(())
}

fn load_file(path: &Path, found: &mut Manifests) -> Result<()> {
    let at = |reason: String| Error::Manifest {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&text).map_err(|e| at(e.to_string()))?;
    for (index, document) in documents.into_iter().enumerate() {
        let doc = index + 1;
        match document {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = map
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for (i, item) in items.into_iter().enumerate() {
                    add(item, &format!("document {doc}, item {}", i + 1), found).map_err(at)?;
                }
            }
            other => add(other, &format!("document {doc}"), found).map_err(at)?,
        }
    }
    Ok(())
}

fn add(document: Value, place: &str, found: &mut Manifests) -> Result<(), String> {
    let kind = document
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let api_version = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_string();
    let what = format!("{place} ({kind} {name})");
    match kind.as_str() {
        "Soc2Requirement" => {
            check_api_version::<Soc2Requirement>(&api_version, &what)?;
            let requirement: Soc2Requirement = parse(document, &what)?;
            requirement.spec.validate().map_err(|problems| {
                format!("{what}: invalid spec:\n  {}", problems.join("\n  "))
            })?;
            found.requirements.push(requirement);
        }
        "PostureReport" => {
            check_api_version::<PostureReport>(&api_version, &what)?;
            let report: PostureReport = parse(document, &what)?;
            report
                .spec
                .schedule
                .parse::<crate::posture::schedule::Schedule>()
                .map_err(|e| format!("{what}: spec.schedule: {e}"))?;
            found.reports.push(report);
        }
        // Other kinds live in the same repositories (namespaces, RBAC, …): not ours to read.
        _ => tracing::debug!("skipping {what}"),
    }
    Ok(())
}

fn check_api_version<K: Resource<DynamicType = ()>>(found: &str, what: &str) -> Result<(), String> {
    let want = K::api_version(&());
    if found == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: apiVersion is {found:?}, expected {want:?}"
        ))
    }
}

fn parse<T: serde::de::DeserializeOwned>(document: Value, what: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(document).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("{what}: {}", e.inner())
        } else {
            format!("{what}: {path}: {}", e.inner())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: compliance.behavry.io/v1alpha1\nkind: Soc2Requirement\nmetadata: {name: cc6-6}\n\
        spec:\n  id: CC6.6\n  title: Least privilege\n  controls:\n  - name: policy-engine\n    evidence: {eventTypes: [policy.decision]}\n";

    fn load_text(text: &str) -> Result<Manifests> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.yaml");
        std::fs::write(&path, text).unwrap();
        load(&[dir.path().to_path_buf()])
    }

    fn error(text: &str) -> String {
        load_text(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_multi_document_files_and_lists() {
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n",
            serde_json::to_string(
                &serde_saphyr::from_str::<Value>(&GOOD.replace("cc6-6", "other")).unwrap()
            )
            .unwrap()
        );
        let text = format!(
            "{GOOD}---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: x}}\n---\n{list}---\n"
        );
        let found = load_text(&text).unwrap();
        assert_eq!(found.requirements.len(), 2);
    }

    #[test]
    fn errors_name_file_resource_and_field() {
        let e = error(&GOOD.replace("    evidence:", "    cadenc: 1d\n    evidence:"));
        assert!(
            e.contains("r.yaml") && e.contains("Soc2Requirement cc6-6"),
            "{e}"
        );
        assert!(
            e.contains("spec.controls[0]") && e.contains("unknown field `cadenc`"),
            "{e}"
        );

        let e = error(&GOOD.replace("  controls:", "  window: 30days\n  controls:"));
        assert!(
            e.contains("spec.window") && e.contains("invalid duration \"30days\""),
            "{e}"
        );

        let e = error(&GOOD.replace(
            "  controls:\n  - name: policy-engine\n    evidence: {eventTypes: [policy.decision]}\n",
            "  controls: []\n",
        ));
        assert!(e.contains("at least one control"), "{e}");

        let e = error(&GOOD.replace("id: CC6.6", "id: six"));
        assert!(e.contains("spec.id"), "{e}");

        let e = error(&GOOD.replace("v1alpha1", "v1"));
        assert!(
            e.contains("expected \"compliance.behavry.io/v1alpha1\""),
            "{e}"
        );

        let e = error("kind: [unclosed\n");
        assert!(e.contains("r.yaml"), "{e}");

        let e = error(&format!("{GOOD}---\n{GOOD}"));
        assert!(e.contains("defined twice"), "{e}");
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let e = load(&[PathBuf::from("/nonexistent/requirements")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/requirements"), "{e}");
    }
}
