//! Routes: assets — upload a product file (raw body) and list a product's files.
//!
//! Uploads are raw bytes with their `Content-Type` and `?file_name=`, not
//! multipart: one file per request keeps the limit, hash and scan about one
//! thing. Two limits apply: the server's `upload_limit` (the body is never
//! buffered past it, 413) and the core's [`AssetLimits`] size and type
//! allow-list (413 for size, 422 for type).
//!
//! [`AssetLimits`]: bazaar_core::assets::AssetLimits

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use bazaar_core::assets::{Asset, ScanStatus};
use bazaar_core::catalog::PageRequest;
use bazaar_core::ids::ProductId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, Auth, MaybeAuth};
use crate::state::AppState;

/// The assets routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload_asset, list_assets))
}

/// The malware-scan verdict.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ScanDto {
    /// Not scanned yet.
    Pending,
    /// Nothing found; downloadable.
    Clean,
    /// Malware found; never downloadable (the bytes were not kept).
    Infected,
}

impl From<ScanStatus> for ScanDto {
    fn from(s: ScanStatus) -> Self {
        match s {
            ScanStatus::Pending => Self::Pending,
            ScanStatus::Clean => Self::Clean,
            ScanStatus::Infected => Self::Infected,
        }
    }
}

/// One immutable version of a product file.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetDto {
    /// Id.
    id: Uuid,
    /// The product.
    product_id: Uuid,
    /// File name.
    file_name: String,
    /// MIME type (normalised).
    mime: String,
    /// Bytes.
    size: u64,
    /// Lower-case hex SHA-256 of the content.
    sha256: String,
    /// Version of this file name, from 1.
    version: u32,
    /// A public preview rather than the product itself.
    is_preview: bool,
    /// Scan verdict.
    scan: ScanDto,
    /// Uploaded at.
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Asset> for AssetDto {
    fn from(a: Asset) -> Self {
        Self {
            id: a.id.as_uuid(),
            product_id: a.product_id.as_uuid(),
            file_name: a.file_name.as_str().to_owned(),
            mime: a.mime,
            size: a.size,
            sha256: a.sha256,
            version: a.version,
            is_preview: a.is_preview,
            scan: a.scan.into(),
            created_at: a.created_at,
        }
    }
}

/// A page of assets.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetPage {
    /// The assets on this page, oldest first.
    items: Vec<AssetDto>,
    /// Assets in all pages.
    total: u64,
    /// Page number from 1.
    page: u32,
    /// Page size used.
    limit: u32,
}

/// `?file_name=…&preview=…` of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadParams {
    /// The file's name: no path separators, no `..`, 1 to 255 bytes.
    #[param(
        pattern = r"^\.?[^\s/\\\x00-\x1f\x7f-\x9f.](([^/\\\x00-\x1f\x7f-\x9f.]|\.[^/\\\x00-\x1f\x7f-\x9f.])*\.?[^\s/\\\x00-\x1f\x7f-\x9f.])?\.?$",
        max_length = 255
    )]
    file_name: String,
    /// A public preview (screenshot, demo) rather than the product itself.
    #[serde(default)]
    preview: bool,
}

/// `?page&limit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// Page from 1.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    page: Option<u32>,
    /// Page size, 1 to 100 (larger is capped).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    limit: Option<u32>,
}

/// The raw bytes of an upload (documentation only).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub(crate) struct RawFile(Vec<u8>);

/// Uploads a new version of a file to the vendor's product.
#[utoipa::path(
    post,
    path = "/v1/products/{id}/assets",
    tag = "assets",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id"), UploadParams),
    request_body(content = RawFile, content_type = "application/octet-stream", description = "The file's bytes, sent with its real Content-Type (application/zip, application/json, text/plain, image/png, …)"),
    responses(
        (status = 201, description = "Stored and scanned (an `infected` verdict is recorded but the bytes are dropped)", body = AssetDto),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not the product's vendor", body = ErrorBody),
        (status = 404, description = "No such product, or not visible to the caller", body = ErrorBody),
        (status = 413, description = "Over the server's upload limit or the asset size limit", body = ErrorBody),
        (status = 422, description = "Bad `file_name`, content type not allowed, or empty body", body = ErrorBody),
    )
)]
async fn upload_asset(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<AssetDto>), ApiError> {
    let limit = state.settings.upload_limit;
    // Refuse on the declared length before reading anything.
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let product_id = ProductId::from_uuid(id);
    // Unpublished products stay invisible to strangers (404, as in the
    // catalog) before the body is even read.
    state.market.catalog.get(Some(&actor), product_id).await?;
    let mime = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if mime.is_empty() {
        return Err(ApiError::invalid("mime", "a Content-Type header is required"));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if is_length_limit(&e) { ApiError::too_large(limit) } else { ApiError::malformed("the body could not be read") }
    })?;
    let asset = state
        .market
        .downloads
        .upload(&actor, product_id, &params.file_name, &mime, bytes.to_vec(), params.preview)
        .await?;
    tracing::info!(asset_id = %asset.id, %product_id, size = asset.size, scan = asset.scan.as_str(), "asset uploaded");
    Ok((StatusCode::CREATED, Json(asset.into())))
}

/// Whether reading the body failed because it exceeded the limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The files of a product (every version), for anyone who can see the product.
#[utoipa::path(
    get,
    path = "/v1/products/{id}/assets",
    tag = "assets",
    params(("id" = Uuid, Path, description = "Product id"), PageParams),
    responses(
        (status = 200, description = "A page of assets", body = AssetPage),
        (status = 401, description = "A bearer token was sent but is invalid", body = ErrorBody),
        (status = 404, description = "No such product, or not visible to the caller", body = ErrorBody),
        (status = 422, description = "Invalid page or limit", body = ErrorBody),
    )
)]
async fn list_assets(
    State(state): State<AppState>,
    MaybeAuth(actor): MaybeAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<AssetPage>, ApiError> {
    let request = PageRequest::from_params(params.page, params.limit)?;
    let page = state.market.downloads.list_assets(actor.as_ref(), ProductId::from_uuid(id), request).await?;
    Ok(Json(AssetPage {
        items: page.items.into_iter().map(AssetDto::from).collect(),
        total: page.total,
        page: page.page,
        limit: page.limit,
    }))
}
