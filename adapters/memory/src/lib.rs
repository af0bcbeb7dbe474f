//! In-memory adapters for every bazaar-core port.
