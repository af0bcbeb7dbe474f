//! The fake Stripe API of the crate's `fake` feature, and the recorded
//! bodies, for the connector's tests.

// Each test binary uses a different part of this module.
#![allow(unused_imports)]

pub(crate) use bazaar_stripe::fake::{
    FakeStripe, PM_3DS, PM_DECLINED, PM_NO_FUNDS, PM_VISA, SECRET_KEY, WEBHOOK_SECRET, fixture, keys_of,
};
