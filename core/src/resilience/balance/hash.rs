//! A small stable 64-bit hash for sticky routing.
//!
//! `std`'s `DefaultHasher` may change between Rust releases, which would
//! silently move every sticky key on a toolchain upgrade (and differ between
//! replicas built with different toolchains). FNV-1a is tiny and fixed; its
//! weak avalanche on short, similar inputs (`"host-1"`, `"host-2"`) is fixed
//! by a MurmurHash3 `fmix64` finaliser.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over `bytes`, finalised with `fmix64`. Stable forever: changing it
/// moves every sticky key.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    stable_hash_seeded(bytes, 0)
}

/// [`stable_hash`] with a seed, for independent hash functions over the
/// same input (Maglev's offset and skip).
pub fn stable_hash_seeded(bytes: &[u8], seed: u64) -> u64 {
    let mut h = FNV_OFFSET ^ seed.wrapping_mul(FNV_PRIME);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    fmix64(h)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_pinned() {
        // Pinned so an accidental change to the hash fails loudly: it would
        // remap every sticky session in production.
        assert_eq!(stable_hash(b""), fmix64(FNV_OFFSET));
        assert_eq!(stable_hash(b"a"), fmix64(0xaf63_dc4c_8601_ec8c));
        assert_ne!(stable_hash_seeded(b"a", 1), stable_hash(b"a"));
    }
}
