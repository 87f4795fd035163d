//! The ids the store makes up for what it creates: sources and definitions get random UUIDs
//! from the OS CSPRNG (`getrandom`, the one small crate for raw OS randomness); feeds are
//! numbered, and a server that hands feed ids to callers maps them to random ids of its own.

/// A bijective mix of 64 bits (splitmix64's finalizer), so consecutive ids look unrelated.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `n`th generated id of a store salted `salt`, as a version-4 UUID's text: unique within
/// a store but predictable from one id seen, so only the fallback of [`random_uuid`].
pub(crate) fn uuid(n: u64, salt: u64) -> String {
    let hi = mix(n ^ salt);
    let lo = mix(hi ^ salt.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15);
    format_uuid(hi, lo)
}

/// A fresh version-4 UUID from the operating system's CSPRNG (122 random bits, as RFC 4122
/// leaves): what sources and definitions are named, so an id says nothing about the next one
/// and never repeats across restarts. If the OS has no randomness to give, the `n`th salted
/// id ([`uuid`]) instead, so creating never fails for it.
pub(crate) fn random_uuid(n: u64, salt: u64) -> String {
    let mut bytes = [0u8; 16];
    match getrandom::fill(&mut bytes) {
        Ok(()) => {
            let (hi, lo) = bytes.split_at(8);
            let word = |b: &[u8]| b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x));
            format_uuid(word(hi), word(lo))
        }
        Err(_) => uuid(n, salt),
    }
}

/// 128 bits as a version-4 UUID's text.
fn format_uuid(hi: u64, lo: u64) -> String {
    // Version 4 (random) and the RFC 4122 variant, so UUID parsers accept it.
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn random_uuids_are_version_4_and_distinct_over_100k() {
        let mut seen = HashSet::new();
        for n in 0..100_000 {
            let id = random_uuid(n, 0);
            let bytes = id.as_bytes();
            assert_eq!((id.len(), bytes[14], bytes[8]), (36, b'4', b'-'), "{id}");
            assert!(matches!(bytes[19], b'8' | b'9' | b'a' | b'b'), "{id}");
            assert!(seen.insert(id));
        }
        // Not the counter's: the same n gives another id.
        assert_ne!(random_uuid(1, 0), random_uuid(1, 0));
    }
}
