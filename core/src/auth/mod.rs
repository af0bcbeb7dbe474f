//! Users, roles and the one permission check every service uses.
//!
//! [`can`] is pure: it looks only at the actor, the action and the
//! resource's owner, so every rule is a unit test. [`AuthService`] holds
//! the account and session rules over two credential ports,
//! [`PasswordHasher`] and [`TokenIssuer`], whose argon2id and JWT
//! implementations are adapters; the core stores an opaque PHC hash string.

pub mod bearer;
pub mod client_ip;
mod ports;
mod service;
mod session;
pub mod throttle;
mod user;

pub use ports::{AccessToken, PasswordHasher, TokenIssuer};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockPasswordHasher, MockTokenIssuer};
pub use service::{AuthConfig, AuthDeps, AuthService, Session, Signup};
pub use throttle::{SignInLimits, SignInThrottle};

#[cfg(any(test, feature = "mocks"))]
pub use session::MockRefreshTokenStore;
pub use session::{RefreshToken, RefreshTokenStore, Rotation, TokenHash};
#[cfg(any(test, feature = "mocks"))]
pub use user::MockUserRepository;
pub use user::{
    Email, MAX_NAME_LEN, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, User, UserRepository, check_password, check_registration,
};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::UserId;

/// What a user is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Buys and reviews products.
    Customer,
    /// Sells products (and may also buy).
    Vendor,
    /// Moderates the catalog, refunds orders, revokes licenses.
    Admin,
}

impl Role {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Vendor => "vendor",
            Self::Admin => "admin",
        }
    }

    /// Parses a snake_case role name.
    ///
    /// # Errors
    /// [`Error::Validation`] on `role` for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "customer" => Ok(Self::Customer),
            "vendor" => Ok(Self::Vendor),
            "admin" => Ok(Self::Admin),
            _ => Err(Error::invalid("role", "must be customer, vendor or admin")),
        }
    }
}

/// An authenticated principal acting on the marketplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Actor {
    /// Who.
    pub user_id: UserId,
    /// In which role.
    pub role: Role,
}

impl Actor {
    /// An actor.
    pub fn new(user_id: UserId, role: Role) -> Self {
        Self { user_id, role }
    }

    /// Whether the actor is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Everything an actor can attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create a product (vendors and admins).
    CreateProduct,
    /// Edit a product's listing (its vendor).
    EditProduct,
    /// Submit a product for review (its vendor).
    SubmitProduct,
    /// See a product that is not approved (its vendor, admins).
    ViewUnpublishedProduct,
    /// Approve, reject, suspend or reinstate a product (admins).
    ModerateProduct,
    /// Upload an asset to a product (its vendor).
    UploadAsset,
    /// Review a product (any signed-in user; purchase is checked by the service).
    ReviewProduct,
    /// Place an order (any signed-in user).
    PlaceOrder,
    /// See an order (its buyer, admins).
    ViewOrder,
    /// Pay for an order (its buyer).
    PayOrder,
    /// Refund an order (admins).
    RefundOrder,
    /// See a license (its holder, admins).
    ViewLicense,
    /// Activate or deactivate a machine on a license, or download (its holder).
    UseLicense,
    /// Revoke or suspend a license (admins).
    RevokeLicense,
    /// Read notifications (their recipient).
    ViewNotifications,
    /// Register, change and replay webhook endpoints (vendors and admins, their own).
    ManageWebhooks,
}

/// What an action is performed on, with just enough to decide ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The marketplace as a whole (creating things).
    Marketplace,
    /// A product owned by `vendor_id`.
    Product {
        /// Its vendor.
        vendor_id: UserId,
    },
    /// An order placed by `buyer_id`.
    Order {
        /// Its buyer.
        buyer_id: UserId,
    },
    /// A license held by `holder_id`.
    License {
        /// Its holder.
        holder_id: UserId,
    },
    /// Something belonging to `user_id` (their notifications).
    User {
        /// The owner.
        user_id: UserId,
    },
}

/// Whether `actor` may perform `action` on `resource`.
///
/// Ownership actions require the actor to own the resource (admins do not
/// edit vendors' listings or use buyers' licenses: they moderate, refund and
/// revoke). Viewing is open to the owner and to admins.
///
/// # Example
/// ```
/// use bazaar_core::auth::{can, Action, Actor, Resource, Role};
/// use bazaar_core::ids::UserId;
/// let vendor = Actor::new(UserId::new(), Role::Vendor);
/// let mine = Resource::Product { vendor_id: vendor.user_id };
/// let theirs = Resource::Product { vendor_id: UserId::new() };
/// assert!(can(&vendor, Action::EditProduct, &mine));
/// assert!(!can(&vendor, Action::EditProduct, &theirs));
/// assert!(!can(&vendor, Action::ModerateProduct, &mine));
/// ```
pub fn can(actor: &Actor, action: Action, resource: &Resource) -> bool {
    use Action::*;
    let owns = match *resource {
        Resource::Marketplace => false,
        Resource::Product { vendor_id } => vendor_id == actor.user_id,
        Resource::Order { buyer_id } => buyer_id == actor.user_id,
        Resource::License { holder_id } => holder_id == actor.user_id,
        Resource::User { user_id } => user_id == actor.user_id,
    };
    let admin = actor.is_admin();
    match action {
        CreateProduct => matches!(actor.role, Role::Vendor | Role::Admin),
        EditProduct | SubmitProduct | UploadAsset => owns && matches!(actor.role, Role::Vendor | Role::Admin),
        ViewUnpublishedProduct | ViewOrder | ViewLicense => owns || admin,
        ModerateProduct | RefundOrder | RevokeLicense => admin,
        ReviewProduct | PlaceOrder => true,
        PayOrder | UseLicense | ViewNotifications => owns,
        ManageWebhooks => owns && matches!(actor.role, Role::Vendor | Role::Admin),
    }
}

/// [`can`], as a `Result`.
///
/// # Errors
/// [`Error::Forbidden`] naming the action when it is not allowed.
pub fn authorize(actor: &Actor, action: Action, resource: &Resource) -> Result<()> {
    if can(actor, action, resource) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("{:?} is not allowed for this {}", action, actor.role.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role) -> Actor {
        Actor::new(UserId::new(), role)
    }

    #[test]
    fn only_admins_moderate_refund_and_revoke() {
        let any = Resource::Product { vendor_id: UserId::new() };
        for role in [Role::Customer, Role::Vendor] {
            let a = actor(role);
            let own = Resource::Product { vendor_id: a.user_id };
            assert!(!can(&a, Action::ModerateProduct, &own));
            assert!(!can(&a, Action::RefundOrder, &Resource::Order { buyer_id: a.user_id }));
            assert!(!can(&a, Action::RevokeLicense, &Resource::License { holder_id: a.user_id }));
        }
        let admin = actor(Role::Admin);
        assert!(can(&admin, Action::ModerateProduct, &any));
        assert!(authorize(&actor(Role::Customer), Action::ModerateProduct, &any).is_err());
    }

    #[test]
    fn customers_cannot_create_products() {
        assert!(!can(&actor(Role::Customer), Action::CreateProduct, &Resource::Marketplace));
        assert!(can(&actor(Role::Vendor), Action::CreateProduct, &Resource::Marketplace));
    }

    #[test]
    fn owners_see_their_things_and_admins_see_all_but_do_not_use_them() {
        let buyer = actor(Role::Customer);
        let stranger = actor(Role::Customer);
        let admin = actor(Role::Admin);
        let lic = Resource::License { holder_id: buyer.user_id };
        assert!(can(&buyer, Action::ViewLicense, &lic));
        assert!(can(&buyer, Action::UseLicense, &lic));
        assert!(!can(&stranger, Action::ViewLicense, &lic));
        assert!(can(&admin, Action::ViewLicense, &lic));
        assert!(!can(&admin, Action::UseLicense, &lic));
    }

    #[test]
    fn roles_parse_strictly() {
        assert_eq!(Role::parse("vendor").unwrap(), Role::Vendor);
        assert!(Role::parse("Vendor").is_err());
    }
}
