//! `bazaar.v1.LicensingService`.

use std::sync::Arc;

use bazaar_core::ids::LicenseId;
use bazaar_core::marketplace::Marketplace;
use tonic::{Request, Response, Status};

use crate::error::status;
use crate::pb::licensing_service_server::LicensingService;
use crate::{auth, convert, pb};

/// Validation (open to key holders) and activations (for the license's holder).
#[derive(Debug, Clone)]
pub struct Licensing {
    market: Arc<Marketplace>,
}

impl Licensing {
    /// The service over `market`.
    pub fn new(market: Arc<Marketplace>) -> Self {
        Self { market }
    }
}

#[tonic::async_trait]
impl LicensingService for Licensing {
    async fn validate_license(
        &self,
        request: Request<pb::ValidateLicenseRequest>,
    ) -> Result<Response<pb::ValidateLicenseResponse>, Status> {
        // No caller needed: the key is the credential.
        let r = request.into_inner();
        let result = self.market.licenses.validate(&r.key, r.fingerprint.as_deref()).await.map_err(status)?;
        Ok(Response::new(convert::validation(result, self.market.clock.now())))
    }

    async fn activate_license(
        &self,
        request: Request<pb::ActivateLicenseRequest>,
    ) -> Result<Response<pb::ActivateLicenseResponse>, Status> {
        let actor = auth::require(&self.market, &request).map_err(status)?;
        let r = request.into_inner();
        let id = LicenseId::parse("license_id", &r.license_id).map_err(status)?;
        let (outcome, license) = self.market.licenses.activate(&actor, id, &r.fingerprint).await.map_err(status)?;
        Ok(Response::new(pb::ActivateLicenseResponse {
            outcome: pb::ActivationOutcome::from(outcome).into(),
            license: Some(convert::license(license, self.market.clock.now())),
        }))
    }

    async fn deactivate_license(
        &self,
        request: Request<pb::DeactivateLicenseRequest>,
    ) -> Result<Response<pb::DeactivateLicenseResponse>, Status> {
        let actor = auth::require(&self.market, &request).map_err(status)?;
        let r = request.into_inner();
        let id = LicenseId::parse("license_id", &r.license_id).map_err(status)?;
        let license = self.market.licenses.deactivate(&actor, id, &r.fingerprint).await.map_err(status)?;
        Ok(Response::new(pb::DeactivateLicenseResponse {
            license: Some(convert::license(license, self.market.clock.now())),
        }))
    }

    async fn get_license(
        &self,
        request: Request<pb::GetLicenseRequest>,
    ) -> Result<Response<pb::GetLicenseResponse>, Status> {
        let actor = auth::require(&self.market, &request).map_err(status)?;
        let id = LicenseId::parse("license_id", &request.get_ref().license_id).map_err(status)?;
        let license = self.market.licenses.get(&actor, id).await.map_err(status)?;
        Ok(Response::new(pb::GetLicenseResponse { license: Some(convert::license(license, self.market.clock.now())) }))
    }
}
