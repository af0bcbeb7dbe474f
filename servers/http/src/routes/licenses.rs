//! Routes: licenses — the holder's licenses, online validation, machine
//! activations, signed download URLs and the download itself, admin revoke.
//!
//! # Decisions
//! - Someone else's license is `403 forbidden` for reads and activations
//!   (the core's authorization answer), an unknown one `404 not_found`.
//!   Asking for a download URL on a license one does not hold is `403
//!   not_licensed`, like a license that does not cover the asset: strangers
//!   learn nothing about other people's licenses.
//! - `POST /v1/licenses/validate` needs no token (the key is the credential)
//!   and always answers `200 {valid, code, license?}` for keys, including
//!   unknown, forged, revoked or expired ones; only a malformed `fingerprint`
//!   is `422`.
//! - Activating answers `201` when a slot was taken and `200` when the
//!   fingerprint was already active (idempotent); a full license is `409
//!   too_many_activations`.
//! - A download URL counts one download when issued (see the core's
//!   `assets::download` docs). `GET /v1/downloads/{token}` needs no bearer
//!   token: the signed token is the credential, so the URL can be handed to a
//!   browser or `curl`. It answers the bytes with `Content-Type`,
//!   `Content-Disposition: attachment`, `ETag: "<sha256>"` and
//!   `X-Content-SHA256`, or, when assets live in S3, `302` to a presigned URL
//!   of the bucket valid for 60 s (the checks are made here, the bytes come
//!   from the store); denials are `403` with `license_revoked`,
//!   `license_suspended`, `license_expired`, `url_expired` or `url_invalid`.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Response};
use bazaar_core::Error;
use bazaar_core::assets::{Asset, Download};
use bazaar_core::licensing::{
    Activation, ActivationOutcome, License, LicenseKind, LicenseStatus, Limits, Permissions, ValidationCode,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, parse_json};
use crate::routes::orders::PageParams;
use crate::schema::Fingerprint;
use crate::state::AppState;

/// The header carrying the downloaded file's SHA-256 (hex).
pub(crate) const CONTENT_SHA256: &str = "x-content-sha256";

/// The reason recorded when an admin revokes without giving one.
const DEFAULT_REVOKE_REASON: &str = "revoked by an administrator";

/// The licenses routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_licenses))
        .routes(routes!(validate_license))
        .routes(routes!(get_license))
        .routes(routes!(activate))
        .routes(routes!(deactivate))
        .routes(routes!(create_download))
        .routes(routes!(download))
        .routes(routes!(revoke_license))
}

/// How long a license lasts.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum LicenseKindDto {
    /// Never expires by itself.
    Perpetual,
    /// Paid per period; expires at `renews_at` unless renewed.
    Subscription {
        /// End of the paid period.
        renews_at: DateTime<Utc>,
    },
    /// A time-boxed trial.
    Trial {
        /// When the trial ends.
        ends_at: DateTime<Utc>,
    },
}

impl From<LicenseKind> for LicenseKindDto {
    fn from(k: LicenseKind) -> Self {
        match k {
            LicenseKind::Perpetual => Self::Perpetual,
            LicenseKind::Subscription { renews_at } => Self::Subscription { renews_at },
            LicenseKind::Trial { ends_at } => Self::Trial { ends_at },
        }
    }
}

/// A license's standing (precedence: revoked > suspended > expired > active).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LicenseStatusDto {
    /// Usable.
    Active,
    /// Past its end.
    Expired,
    /// Suspended by an admin.
    Suspended,
    /// Revoked for good (e.g. refunded).
    Revoked,
}

impl From<LicenseStatus> for LicenseStatusDto {
    fn from(s: LicenseStatus) -> Self {
        match s {
            LicenseStatus::Active => Self::Active,
            LicenseStatus::Expired => Self::Expired,
            LicenseStatus::Suspended => Self::Suspended,
            LicenseStatus::Revoked => Self::Revoked,
        }
    }
}

/// What the holder may do with the product.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(crate) struct PermissionsDto {
    /// May download the product's assets.
    download: bool,
    /// May use it commercially.
    commercial_use: bool,
    /// May redistribute it.
    redistribution: bool,
    /// May modify it.
    modification: bool,
}

impl From<Permissions> for PermissionsDto {
    fn from(p: Permissions) -> Self {
        Self {
            download: p.download,
            commercial_use: p.commercial_use,
            redistribution: p.redistribution,
            modification: p.modification,
        }
    }
}

/// Quantitative limits (`null` means unlimited).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(crate) struct LimitsDto {
    /// Download URLs that may be issued in total.
    max_downloads: Option<u32>,
    /// Machines that may be active at once (node-locked when set).
    max_activations: Option<u32>,
    /// A hard expiry.
    expires_at: Option<DateTime<Utc>>,
}

impl From<Limits> for LimitsDto {
    fn from(l: Limits) -> Self {
        Self { max_downloads: l.max_downloads, max_activations: l.max_activations, expires_at: l.expires_at }
    }
}

/// One activated machine.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ActivationDto {
    /// The machine's fingerprint.
    fingerprint: String,
    /// When it was activated.
    activated_at: DateTime<Utc>,
}

impl From<Activation> for ActivationDto {
    fn from(a: Activation) -> Self {
        Self { fingerprint: a.fingerprint.into(), activated_at: a.activated_at }
    }
}

/// A license.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct LicenseResponse {
    /// Id.
    id: Uuid,
    /// The signed key (`key/{payload}.{signature}`), verifiable offline with the public key.
    key: String,
    /// The holder.
    buyer_id: Uuid,
    /// The licensed product.
    product_id: Uuid,
    /// The order that bought it.
    order_id: Uuid,
    /// How long it lasts.
    kind: LicenseKindDto,
    /// Its standing now.
    status: LicenseStatusDto,
    /// What the holder may do.
    permissions: PermissionsDto,
    /// Its limits.
    limits: LimitsDto,
    /// Download URLs issued so far.
    downloads_used: u32,
    /// Activated machines.
    activations: Vec<ActivationDto>,
    /// When it was revoked.
    revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked.
    revoked_reason: Option<String>,
    /// When it was suspended.
    suspended_at: Option<DateTime<Utc>>,
    /// Why it was suspended.
    suspended_reason: Option<String>,
    /// When it was issued.
    created_at: DateTime<Utc>,
    /// When it last changed.
    updated_at: DateTime<Utc>,
}

impl LicenseResponse {
    fn new(l: License, now: DateTime<Utc>) -> Self {
        Self {
            status: l.status(now).into(),
            id: l.id.into(),
            key: l.key,
            buyer_id: l.buyer_id.into(),
            product_id: l.product_id.into(),
            order_id: l.order_id.into(),
            kind: l.kind.into(),
            permissions: l.permissions.into(),
            limits: l.limits.into(),
            downloads_used: l.downloads_used,
            activations: l.activations.into_iter().map(Into::into).collect(),
            revoked_at: l.revoked_at,
            revoked_reason: l.revoked_reason,
            suspended_at: l.suspended_at,
            suspended_reason: l.suspended_reason,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

fn respond(state: &AppState, license: License) -> LicenseResponse {
    LicenseResponse::new(license, state.market.clock.now())
}

/// A page of the caller's licenses, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LicenseList {
    /// The licenses on this page.
    items: Vec<LicenseResponse>,
    /// How many licenses in all pages.
    total: u64,
    /// Page number, from 1.
    page: u32,
    /// Page size used.
    limit: u32,
}

/// `POST /v1/licenses/validate` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateBody {
    /// The license key.
    key: String,
    /// The machine asking, for node-locked licenses.
    #[schema(value_type = Option<Fingerprint>)]
    fingerprint: Option<String>,
}

/// The outcome code of a validation, in check order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ValidationCodeDto {
    /// No such license, or the key does not verify.
    NotFound,
    /// Revoked.
    Revoked,
    /// Suspended.
    Suspended,
    /// Expired.
    Expired,
    /// Node-locked: send an activated fingerprint (or activate one first).
    ActivationRequired,
    /// The fingerprint is not activated and no slot is free.
    TooManyActivations,
    /// The fingerprint is not activated; slots remain.
    FingerprintMismatch,
    /// Valid.
    Valid,
}

impl From<ValidationCode> for ValidationCodeDto {
    fn from(c: ValidationCode) -> Self {
        match c {
            ValidationCode::NotFound => Self::NotFound,
            ValidationCode::Revoked => Self::Revoked,
            ValidationCode::Suspended => Self::Suspended,
            ValidationCode::Expired => Self::Expired,
            ValidationCode::ActivationRequired => Self::ActivationRequired,
            ValidationCode::TooManyActivations => Self::TooManyActivations,
            ValidationCode::FingerprintMismatch => Self::FingerprintMismatch,
            ValidationCode::Valid => Self::Valid,
        }
    }
}

/// The answer of an online validation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ValidationResponse {
    /// Whether the key may be used (`code == "valid"`).
    valid: bool,
    /// Why (or why not).
    code: ValidationCodeDto,
    /// The license, whenever the key names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    license: Option<LicenseResponse>,
}

/// `POST /v1/licenses/{id}/activations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActivateBody {
    /// The machine: 1 to 128 visible ASCII characters.
    #[schema(value_type = Fingerprint)]
    fingerprint: String,
}

/// What an activation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActivationOutcomeDto {
    /// A new slot was taken.
    Activated,
    /// The fingerprint was already active; nothing changed.
    AlreadyActive,
}

impl From<ActivationOutcome> for ActivationOutcomeDto {
    fn from(o: ActivationOutcome) -> Self {
        match o {
            ActivationOutcome::Activated => Self::Activated,
            ActivationOutcome::AlreadyActive => Self::AlreadyActive,
        }
    }
}

/// The result of an activation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActivationResponse {
    /// What happened.
    outcome: ActivationOutcomeDto,
    /// The license afterwards.
    license: LicenseResponse,
}

/// `POST /v1/licenses/{id}/downloads` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DownloadBody {
    /// An asset of the licensed product.
    asset_id: Uuid,
}

/// A short-lived signed download URL.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DownloadUrl {
    /// `/v1/downloads/{token}`, relative to this API's base URL.
    url: String,
    /// When it stops working.
    expires_at: DateTime<Utc>,
}

/// `POST /v1/licenses/{id}/revoke` body (optional).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeBody {
    /// Why; recorded on the license.
    reason: Option<String>,
}

/// The caller's licenses.
#[utoipa::path(
    get,
    path = "/v1/licenses",
    tag = "licenses",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of licenses", body = LicenseList),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 422, description = "`validation` on `page` or `limit`", body = ErrorBody),
    )
)]
async fn list_licenses(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<LicenseList>, ApiError> {
    let request = params.request()?;
    let page = state.market.licenses.list_mine(&actor, request).await?;
    let now = state.market.clock.now();
    Ok(Json(LicenseList {
        items: page.items.into_iter().map(|l| LicenseResponse::new(l, now)).collect(),
        total: page.total,
        page: page.page,
        limit: page.limit,
    }))
}

/// Validate a key online (no token: the key is the credential).
#[utoipa::path(
    post,
    path = "/v1/licenses/validate",
    tag = "licenses",
    request_body = ValidateBody,
    responses(
        (status = 200, description = "The verdict; `valid` is false with the reason for unknown, revoked, expired… keys", body = ValidationResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "`validation` on `key` (missing) or `fingerprint` (malformed)", body = ErrorBody),
    )
)]
async fn validate_license(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ValidateBody>,
) -> Result<Json<ValidationResponse>, ApiError> {
    let result = state.market.licenses.validate(&body.key, body.fingerprint.as_deref()).await?;
    Ok(Json(ValidationResponse {
        valid: result.valid,
        code: result.code.into(),
        license: result.license.map(|l| respond(&state, l)),
    }))
}

/// One license (its holder or an admin).
#[utoipa::path(
    get,
    path = "/v1/licenses/{id}",
    tag = "licenses",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "License id")),
    responses(
        (status = 200, description = "The license", body = LicenseResponse),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Someone else's license", body = ErrorBody),
        (status = 404, description = "No such license", body = ErrorBody),
    )
)]
async fn get_license(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<LicenseResponse>, ApiError> {
    let license = state.market.licenses.get(&actor, id.into()).await?;
    Ok(Json(respond(&state, license)))
}

/// The holder activates a machine (idempotent per fingerprint).
#[utoipa::path(
    post,
    path = "/v1/licenses/{id}/activations",
    tag = "licenses",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "License id")),
    request_body = ActivateBody,
    responses(
        (status = 201, description = "A slot was taken", body = ActivationResponse),
        (status = 200, description = "Already active; nothing changed", body = ActivationResponse),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden` (not the holder), `license_revoked`, `license_suspended`, `license_expired`", body = ErrorBody),
        (status = 404, description = "No such license", body = ErrorBody),
        (status = 409, description = "`too_many_activations`: every slot is taken", body = ErrorBody),
        (status = 422, description = "`validation` on `fingerprint`", body = ErrorBody),
    )
)]
async fn activate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ActivateBody>,
) -> Result<(StatusCode, Json<ActivationResponse>), ApiError> {
    let (outcome, license) = state.market.licenses.activate(&actor, id.into(), &body.fingerprint).await?;
    let status = match outcome {
        ActivationOutcome::Activated => StatusCode::CREATED,
        ActivationOutcome::AlreadyActive => StatusCode::OK,
    };
    Ok((status, Json(ActivationResponse { outcome: outcome.into(), license: respond(&state, license) })))
}

/// The holder frees a machine's slot.
#[utoipa::path(
    delete,
    path = "/v1/licenses/{id}/activations/{fingerprint}",
    tag = "licenses",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "License id"),
        ("fingerprint" = Fingerprint, Path, description = "The machine's fingerprint (percent-encoded)"),
    ),
    responses(
        (status = 200, description = "The license afterwards", body = LicenseResponse),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not the holder", body = ErrorBody),
        (status = 404, description = "No such license, or the machine is not activated", body = ErrorBody),
        (status = 422, description = "`validation` on `fingerprint`", body = ErrorBody),
    )
)]
async fn deactivate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((id, fingerprint)): ApiPath<(Uuid, String)>,
) -> Result<Json<LicenseResponse>, ApiError> {
    let license = state.market.licenses.deactivate(&actor, id.into(), &fingerprint).await?;
    Ok(Json(respond(&state, license)))
}

/// The holder gets a short-lived signed URL for an asset of the licensed
/// product; this counts one download.
#[utoipa::path(
    post,
    path = "/v1/licenses/{id}/downloads",
    tag = "licenses",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "License id")),
    request_body = DownloadBody,
    responses(
        (status = 201, description = "The signed URL", body = DownloadUrl),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "`not_licensed` (not your license, another product, no download permission), `license_revoked`, `license_suspended`, `license_expired`, `asset_not_clean`, `download_limit_reached`", body = ErrorBody),
        (status = 404, description = "No such asset", body = ErrorBody),
        (status = 422, description = "`validation` on `asset_id`", body = ErrorBody),
    )
)]
async fn create_download(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<DownloadBody>,
) -> Result<(StatusCode, Json<DownloadUrl>), ApiError> {
    let signed = state.market.downloads.create_download(&actor, id.into(), body.asset_id.into()).await?;
    Ok((StatusCode::CREATED, Json(DownloadUrl { url: signed.path, expires_at: signed.expires_at })))
}

/// The bytes behind a signed download URL (no bearer token: the token is
/// the credential).
#[utoipa::path(
    get,
    path = "/v1/downloads/{token}",
    tag = "licenses",
    params(("token" = String, Path, description = "The signed token from `POST /v1/licenses/{id}/downloads`")),
    responses(
        (status = 200, description = "The file, with `Content-Disposition`, `ETag: \"<sha256>\"` and `X-Content-SHA256`",
            content_type = "application/octet-stream", body = Vec<u8>),
        (status = 302, description = "The blob store serves the file itself (S3): `Location` is its presigned URL, valid 60 s; `X-Content-SHA256` is the hash of the bytes there"),
        (status = 403, description = "`url_invalid`, `url_expired`, `license_revoked`, `license_suspended`, `license_expired`, `asset_not_clean`", body = ErrorBody),
    )
)]
async fn download(State(state): State<AppState>, ApiPath(token): ApiPath<String>) -> Result<Response, ApiError> {
    match state.market.downloads.resolve(&token).await? {
        Download::Bytes { asset, bytes } => file_response(&asset, bytes),
        Download::Redirect { asset, url } => redirect_response(&asset, &url),
    }
}

/// A redirect to the blob store's own short-lived URL for the asset, with
/// the hash the bytes must have.
fn redirect_response(asset: &Asset, url: &str) -> Result<Response, ApiError> {
    let header =
        |v: &str| HeaderValue::try_from(v).map_err(|e| ApiError::from(Error::internal("building download headers", e)));
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(LOCATION, header(url)?);
    headers.insert(CONTENT_SHA256, header(&asset.sha256)?);
    // The location is a bearer credential too.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// The response carrying a downloaded asset.
fn file_response(asset: &Asset, bytes: Vec<u8>) -> Result<Response, ApiError> {
    let header = |v: String| {
        HeaderValue::try_from(v).map_err(|e| ApiError::from(Error::internal("building download headers", e)))
    };
    let length = bytes.len();
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    let mime = HeaderValue::try_from(asset.mime.as_str())
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(CONTENT_TYPE, mime);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(CONTENT_DISPOSITION, header(content_disposition(asset.file_name.as_str()))?);
    headers.insert(ETAG, header(format!("\"{}\"", asset.sha256))?);
    headers.insert(CONTENT_SHA256, header(asset.sha256.clone())?);
    // The URL is a bearer credential for one holder: nothing may cache it.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// `attachment` with an ASCII fallback name and the exact name in RFC 5987
/// form, so non-ASCII names survive and quotes cannot break the header.
fn content_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' { c } else { '_' })
        .collect();
    let mut encoded = String::with_capacity(file_name.len());
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// An admin revokes a license for good (body optional: `{reason}`).
#[utoipa::path(
    post,
    path = "/v1/licenses/{id}/revoke",
    tag = "licenses",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "License id")),
    request_body(content = Option<RevokeBody>, description = "Optional; the reason is recorded on the license"),
    responses(
        (status = 200, description = "The revoked license", body = LicenseResponse),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such license", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: already revoked", body = ErrorBody),
        (status = 422, description = "`validation` on `reason`", body = ErrorBody),
    )
)]
async fn revoke_license(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> Result<Json<LicenseResponse>, ApiError> {
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        parse_json::<Option<RevokeBody>>(&body)?.and_then(|b| b.reason)
    };
    let reason = match reason.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_REVOKE_REASON.to_owned(),
        Some(r) if r.chars().count() > 500 => {
            return Err(ApiError::invalid("reason", "must be at most 500 characters"));
        }
        Some(r) => r.to_owned(),
    };
    let license = state.market.licenses.revoke(&actor, id.into(), &reason).await?;
    Ok(Json(respond(&state, license)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_escapes_quotes_and_keeps_unicode() {
        assert_eq!(
            content_disposition("agent pack.zip"),
            "attachment; filename=\"agent pack.zip\"; filename*=UTF-8''agent%20pack.zip"
        );
        let header = content_disposition("a\"b é.zip");
        assert!(header.starts_with("attachment; filename=\"a_b _.zip\""), "{header}");
        assert!(header.ends_with("filename*=UTF-8''a%22b%20%C3%A9.zip"), "{header}");
        assert!(HeaderValue::try_from(header).is_ok());
    }
}
