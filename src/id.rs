//! The ids the store makes up for what it creates (feeds, sources, definitions): unique within
//! a store, unrelated-looking, and different between stores, without a random-number crate.

/// A bijective mix of 64 bits (splitmix64's finalizer), so consecutive ids look unrelated.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `n`th generated id of a store salted `salt`, as a version-4 UUID's text.
pub(crate) fn uuid(n: u64, salt: u64) -> String {
    let hi = mix(n ^ salt);
    let lo = mix(hi ^ salt.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15);
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
