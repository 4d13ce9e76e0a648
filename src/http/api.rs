//! The compliance API: exports, requirements and their supporting sets.
//!
//! In a cluster every request needs a bearer token, authenticated with a TokenReview and
//! authorised with a SubjectAccessReview for `get` on soc2requirements (as kube-rbac-proxy does);
//! locally (`serve`) it listens on loopback only and asks for nothing.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::runtime::reflector::Store as Cache;
use kube::{Api, ResourceExt};
use serde::Deserialize;
use serde_json::json;

use crate::crd::{Organization, PostureReport, Soc2Requirement};
use crate::evidence::LazyStore;
use crate::export::pdf::Paper;
use crate::export::{csv, gather, json as json_export, pdf};
use crate::posture::{Window, selects};

/// Where the requirements come from.
#[derive(Clone)]
pub enum Source {
    /// The operator's caches: statuses as the reconcilers wrote them.
    Cluster {
        requirements: Cache<Soc2Requirement>,
        reports: Cache<PostureReport>,
    },
    /// Files evaluated against the store on every request (`serve`).
    Files(Vec<PathBuf>),
}

#[derive(Clone)]
pub struct ApiState {
    pub source: Source,
    pub evidence: Arc<LazyStore>,
    /// Set in a cluster: who may call is asked of the apiserver.
    pub auth: Option<kube::Client>,
    /// Set in a cluster: a standby replica's caches are empty, so it answers 503 until it leads.
    pub ready: Option<Arc<super::Health>>,
    /// Signs JSON exports (and checkpoints the head they state) when set.
    pub signing_key: Option<ed25519_dalek::SigningKey>,
    /// `POST /api/v1/events`.
    pub ingest: super::ingest::IngestConfig,
}

/// What a caller must be allowed to do, asked of the apiserver with a SubjectAccessReview.
pub(super) struct Access<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
}

impl<'a> Access<'a> {
    /// Reading requirements, their evidence and exports: `get` on soc2requirements.
    fn read(namespace: Option<&'a str>) -> Self {
        Access {
            verb: "get",
            resource: "soc2requirements",
            namespace,
        }
    }
}

/// An error answered as JSON `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(pub(super) StatusCode, pub(super) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("evidence store unavailable: {e}"),
    )
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/compliance/soc2/export", get(export))
        .route("/api/v1/compliance/soc2/requirements", get(list))
        .route("/api/v1/compliance/soc2/trend.svg", get(trend_svg))
        .route("/compliance/soc2", get(dashboard))
        .route(
            "/",
            get(|| async { axum::response::Redirect::temporary("/compliance/soc2") }),
        )
        .route("/api/v1/compliance/soc2/requirements/{id}", get(one))
        .route(
            "/api/v1/compliance/soc2/requirements/{id}/evidence",
            get(evidence),
        )
        .merge(super::ingest::router())
        .with_state(state)
}

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<String>,
    namespace: Option<String>,
    paper: Option<String>,
}

#[derive(Deserialize)]
struct Scope {
    namespace: Option<String>,
    format: Option<String>,
}

struct Snapshot {
    requirements: Vec<Soc2Requirement>,
    organization: Option<Organization>,
    at: Timestamp,
    /// The first report's historyDays (90 without one): the trend's length.
    history_days: u32,
}

impl ApiState {
    /// Authenticates and authorises the caller (in a cluster) for `access`.
    pub(super) async fn authorize(
        &self,
        headers: &HeaderMap,
        access: Access<'_>,
    ) -> Result<(), ApiError> {
        if self.ready.as_ref().is_some_and(|h| !h.is_ready()) {
            return Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "not serving: this replica is not the leader yet".into(),
            ));
        }
        let Some(client) = &self.auth else {
            return Ok(());
        };
        let unauthorized = |why: &str| ApiError(StatusCode::UNAUTHORIZED, why.to_string());
        let token = bearer(headers).ok_or_else(|| unauthorized("a bearer token is required"))?;
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = create_review(client, &review).await?;
        let status = reviewed.status.unwrap_or_default();
        let user = status
            .user
            .filter(|_| status.authenticated == Some(true))
            .ok_or_else(|| unauthorized("the token is not valid"))?;
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                groups: user.groups.clone(),
                uid: user.uid.clone(),
                extra: user.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(crate::crd::GROUP.into()),
                    resource: Some(access.resource.into()),
                    verb: Some(access.verb.into()),
                    namespace: access.namespace.map(str::to_string),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let decided = create_review(client, &review).await?;
        if decided.status.is_some_and(|s| s.allowed) {
            Ok(())
        } else {
            Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "{} may not {} {}.{}",
                    user.username.unwrap_or_default(),
                    access.verb,
                    access.resource,
                    crate::crd::GROUP
                ),
            ))
        }
    }

    async fn snapshot(&self, namespace: Option<&str>) -> Result<Snapshot, ApiError> {
        let at = Timestamp::now();
        let in_scope =
            |ns: Option<String>| namespace.is_none_or(|want| ns.as_deref() == Some(want));
        let (mut requirements, reports): (Vec<Soc2Requirement>, Vec<PostureReport>) =
            match &self.source {
                Source::Cluster {
                    requirements,
                    reports,
                } => (
                    requirements.state().iter().map(|r| (**r).clone()).collect(),
                    reports.state().iter().map(|r| (**r).clone()).collect(),
                ),
                Source::Files(paths) => {
                    let found = crate::manifests::load(paths)
                        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                    let store = self.evidence.get().await.map_err(unavailable)?;
                    let evaluated = crate::offline::evaluate(Ok(&store), found, at, false).await;
                    if let Some(reason) = evaluated.outage {
                        return Err(unavailable(reason));
                    }
                    (evaluated.requirements, evaluated.reports)
                }
            };
        requirements.retain(|r| in_scope(r.namespace()));
        requirements.sort_by(|a, b| {
            (&a.spec.id, a.namespace(), a.name_any()).cmp(&(
                &b.spec.id,
                b.namespace(),
                b.name_any(),
            ))
        });
        let mut reports: Vec<PostureReport> = reports
            .into_iter()
            .filter(|r| in_scope(r.namespace()))
            .collect();
        reports.sort_by_key(|r| (r.namespace(), r.name_any()));
        // The first report names the organisation and selects what it covers.
        if let Some(report) = reports.first() {
            requirements.retain(|r| selects(report, r));
        }
        Ok(Snapshot {
            requirements,
            organization: reports.first().and_then(|r| r.spec.organization.clone()),
            history_days: reports.first().map_or(90, |r| r.spec.history_days),
            at,
        })
    }
}

/// The bearer token of a request, if any.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty())
}

/// Creates a review object (TokenReview, SubjectAccessReview) and returns the apiserver's answer.
async fn create_review<K>(client: &kube::Client, review: &K) -> Result<K, ApiError>
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    Api::<K>::all(client.clone())
        .create(&PostParams::default(), review)
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{} failed: {e}", K::kind(&())),
            )
        })
}

/// A download: its type, and `Content-Disposition: attachment` with the file name.
fn attachment(content_type: &str, filename: &str, body: impl IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn export(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.unwrap_or_default();
    let (content_type, extension) = match format.as_str() {
        "pdf" => ("application/pdf", "pdf"),
        "csv" => ("text/csv; charset=utf-8", "csv"),
        "json" => ("application/json", "json"),
        other => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("unsupported format {other:?}: use format=pdf, csv or json"),
            ));
        }
    };
    let paper = match q.paper.as_deref() {
        None | Some("a4") => Paper::A4,
        Some("letter") => Paper::Letter,
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("unsupported paper {other:?}: use a4 or letter"),
            ));
        }
    };
    state
        .authorize(&headers, Access::read(q.namespace.as_deref()))
        .await?;
    let snapshot = state.snapshot(q.namespace.as_deref()).await?;
    let store = state.evidence.get().await.map_err(unavailable)?;
    let key = state.signing_key.as_ref();
    let document = gather(
        &store,
        &snapshot.requirements,
        snapshot.organization.as_ref(),
        snapshot.at,
        snapshot.history_days,
        key,
    )
    .await
    .map_err(unavailable)?;
    let body = match extension {
        "pdf" => pdf::render(&document, paper),
        "csv" => csv::requirements(&document).into_bytes(),
        _ => json_export::render(&document, key).into_bytes(),
    };
    let filename = format!(
        "soc2-posture-{}.{extension}",
        snapshot.at.strftime("%Y-%m-%d")
    );
    Ok(attachment(content_type, &filename, body))
}

/// The Compliance → SOC 2 page: a static shell, embedded in the binary, that reads the API above
/// with the caller's bearer token (in a cluster). It holds no data itself, so it needs none, and
/// its Content-Security-Policy keeps it from loading anything from elsewhere.
async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'none'",
            ),
        ],
        include_str!("dashboard.html"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct TrendQuery {
    namespace: Option<String>,
    days: Option<u32>,
}

/// The posture trend as SVG: a row per requirement, a cell per day of the history.
async fn trend_svg(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<TrendQuery>,
) -> Result<Response, ApiError> {
    state
        .authorize(&headers, Access::read(q.namespace.as_deref()))
        .await?;
    let snapshot = state.snapshot(q.namespace.as_deref()).await?;
    let store = state.evidence.get().await.map_err(unavailable)?;
    let days = q.days.unwrap_or(snapshot.history_days).clamp(1, 3_660);
    let trend = crate::export::trend::gather(&store, &snapshot.requirements, snapshot.at, days)
        .await
        .map_err(unavailable)?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml")],
        crate::export::trend::svg(&trend),
    )
        .into_response())
}

async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(scope): Query<Scope>,
) -> Result<Response, ApiError> {
    state
        .authorize(&headers, Access::read(scope.namespace.as_deref()))
        .await?;
    let snapshot = state.snapshot(scope.namespace.as_deref()).await?;
    Ok(
        axum::Json(json!({"apiVersion": "v1", "kind": "List", "items": snapshot.requirements}))
            .into_response(),
    )
}

async fn find(
    state: &ApiState,
    id: &str,
    namespace: Option<&str>,
) -> Result<Soc2Requirement, ApiError> {
    let snapshot = state.snapshot(namespace).await?;
    snapshot
        .requirements
        .into_iter()
        .find(|r| r.spec.id == id || r.name_any() == id)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no requirement {id:?}")))
}

async fn one(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(scope): Query<Scope>,
) -> Result<Response, ApiError> {
    state
        .authorize(&headers, Access::read(scope.namespace.as_deref()))
        .await?;
    Ok(axum::Json(find(&state, &id, scope.namespace.as_deref()).await?).into_response())
}

/// The supporting set: every event in the window that any control selects, streamed.
async fn evidence(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(scope): Query<Scope>,
) -> Result<Response, ApiError> {
    let format = scope.format.clone().unwrap_or_else(|| "csv".into());
    if format != "csv" && format != "json" {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("unsupported format {format:?}: use format=csv or json"),
        ));
    }
    state
        .authorize(&headers, Access::read(scope.namespace.as_deref()))
        .await?;
    let requirement = find(&state, &id, scope.namespace.as_deref()).await?;
    let store = state.evidence.get().await.map_err(unavailable)?;
    let window = Window::ending_at(Timestamp::now(), &requirement.spec.window);
    let events = store.supporting_set(&requirement.spec, &window);
    let filename = format!("{}-supporting-set.{format}", requirement.spec.id);
    let body = if format == "csv" {
        let header = futures::stream::once(async { Ok::<_, std::io::Error>(csv::event_header()) });
        Body::from_stream(
            header.chain(
                events.map(|e| e.map(|e| csv::event_row(&e)).map_err(std::io::Error::other)),
            ),
        )
    } else {
        // A JSON array, one event a line, written as the rows arrive.
        let mut separator = "\n";
        let items = events.map(move |e| {
            let e = e.map_err(std::io::Error::other)?;
            let line = format!(
                "{}{}",
                std::mem::replace(&mut separator, ",\n"),
                serde_json::to_string(&e)?
            );
            Ok::<_, std::io::Error>(line.into_bytes())
        });
        let open = futures::stream::once(async { Ok::<_, std::io::Error>(b"[".to_vec()) });
        let close = futures::stream::once(async { Ok::<_, std::io::Error>(b"\n]\n".to_vec()) });
        Body::from_stream(open.chain(items).chain(close))
    };
    let content_type = if format == "csv" {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    Ok(attachment(content_type, &filename, body))
}
