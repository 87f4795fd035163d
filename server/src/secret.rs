//! Secrets and public ids: made from the operating system's CSPRNG, kept as digests, compared
//! in constant time.
//!
//! Every token and every id the server makes up (session tokens, auth tokens, bearer tokens,
//! feed ids) is [`random_id`]: 128 bits from `getrandom` written as 22 URL-safe base64
//! characters, so no id can be predicted from earlier ones or repeats across restarts. Tokens
//! are kept only as their SHA-256 [`Digest`] (a heap dump holds no usable token), and a secret a
//! caller sends (a password, a client secret) is compared through its digest with `subtle`, so
//! the time an answer takes says nothing about how much of it was right.
//!
//! `getrandom` rather than `rand`: only raw OS bytes are needed, no generator state to seed or
//! guard. `sha2` and `subtle` are the RustCrypto crates the field relies on for these jobs.

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in every id and token: 128 bits.
pub const ID_BYTES: usize = 16;
/// Characters of an id or token: 128 bits in URL-safe base64, unpadded.
pub const ID_LEN: usize = 22;

/// URL-safe base64's alphabet (RFC 4648 section 5).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The operating system's random source failed; the server answers 503 rather than hand out a
/// weak id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoEntropy;

impl std::fmt::Display for NoEntropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the operating system's random source is unavailable")
    }
}

/// A fresh id or token: [`ID_BYTES`] from the OS CSPRNG as [`ID_LEN`] URL-safe characters.
pub fn random_id() -> Result<String, NoEntropy> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|_| NoEntropy)?;
    Ok(base64url(&bytes))
}

/// Unpadded URL-safe base64 of `bytes`.
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Whether `s` has the shape of an id this module makes: [`ID_LEN`] URL-safe characters. A
/// cheap filter before any lookup.
pub fn is_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| ALPHABET.contains(&b))
}

/// The SHA-256 of a secret: what the server keeps instead of the secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of `secret`.
    pub fn of(secret: &str) -> Digest {
        Digest(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether two digests are equal, in time that does not depend on where they differ.
    pub fn same(&self, other: &Digest) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Lowercase hex, for export.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads [`Digest::to_hex`]'s output back.
    pub fn from_hex(hex: &str) -> Option<Digest> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Digest(out))
    }
}

/// Never prints the digest: even a digest helps an offline guess.
impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digest(..)")
    }
}

/// Whether a secret a caller sent equals the one configured, compared in constant time through
/// both digests (so neither the length nor the first wrong byte shows in the timing).
pub fn matches(sent: &str, configured: &str) -> bool {
    Digest::of(sent).same(&Digest::of(configured))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_128_bit_url_safe_and_distinct_over_100k() {
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let id = random_id().unwrap();
            assert!(is_id(&id), "{id}");
            assert!(seen.insert(id));
        }
        // 22 characters of 6 bits carry 132 bits, of which the last 4 are zero: 128 random.
        assert_eq!(ID_LEN * 6 - 4, ID_BYTES * 8);
    }

    #[test]
    fn base64url_matches_the_rfc_vectors() {
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn digests_compare_and_round_trip_through_hex() {
        let d = Digest::of("secret");
        assert!(d.same(&Digest::of("secret")));
        assert!(!d.same(&Digest::of("secreT")));
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::from_hex("zz"), None);
        assert!(matches("a", "a") && !matches("a", "b") && !matches("", "a"));
        assert_eq!(format!("{d:?}"), "Digest(..)");
    }
}
