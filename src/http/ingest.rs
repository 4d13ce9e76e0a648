//! `POST /api/v1/events`: JSON Lines into the evidence store, all or nothing per request.
//!
//! Authenticated by a static bearer token (from a Secret) or, in a cluster, by a TokenReview and
//! a SubjectAccessReview for `create` on the virtual resource `auditevents.compliance.behavry.io`,
//! which an RBAC Role can grant like any other.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::api::{Access, ApiError, ApiState, bearer};
use crate::Error;

/// The default largest request body.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// A bearer token that may ingest (compared in constant time); in a cluster, service
    /// accounts allowed to create auditevents may too.
    pub token: Option<String>,
    /// Larger bodies are refused with 413 before anything is read into the store.
    pub max_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            token: None,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

pub(super) fn router() -> Router<ApiState> {
    // The limit is applied by the handler, after authentication.
    Router::new().route(
        "/api/v1/events",
        post(ingest).layer(DefaultBodyLimit::disable()),
    )
}

async fn ingest(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let token_matches = match (&state.ingest.token, bearer(&headers)) {
        (Some(want), Some(got)) => bool::from(want.as_bytes().ct_eq(got.as_bytes())),
        _ => false,
    };
    if !token_matches {
        if state.auth.is_none() && state.ingest.token.is_some() {
            // Outside a cluster the token is the only way in.
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required".into(),
            ));
        }
        let create = Access {
            verb: "create",
            resource: "auditevents",
            namespace: None,
        };
        state.authorize(&headers, create).await?;
    }
    // Only now is the body read: an unauthenticated caller cannot make us buffer it.
    let body = axum::body::to_bytes(body, state.ingest.max_bytes)
        .await
        .map_err(|e| {
            let too_large = e
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            if too_large {
                ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body is larger than {} bytes: send the events in smaller batches; nothing was stored",
                        state.ingest.max_bytes
                    ),
                )
            } else {
                ApiError(StatusCode::BAD_REQUEST, "the request body could not be read".into())
            }
        })?;
    let store = state.evidence.get().await.map_err(|e| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("evidence store unavailable: {e}"),
        )
    })?;
    match store.ingest(body.as_ref()).await {
        Ok(report) => Ok((StatusCode::OK, axum::Json(report)).into_response()),
        Err(Error::InvalidEvent { line, reason }) => Ok((
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "error": format!("line {line}: {reason}; nothing of this request was stored"),
                "line": line,
                "reason": reason,
            })),
        )
            .into_response()),
        Err(e) => {
            state.evidence.reset().await;
            Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("evidence store unavailable: {e}; nothing of this request was stored"),
            ))
        }
    }
}
