//! Who exists: the server's users, each under the id every dialect knows them by (Symphony's
//! `u64`, Rocket.Chat's 17-character `_id`, Genesys's UUID), with a name and a username.
//!
//! The store keeps presence; the directory decides who is a user (Symphony answers 404 for an
//! unknown one). Ids are derived from the Symphony id, so a demo directory is the same every run.

use std::collections::HashMap;

/// The first demo user's Symphony id (Symphony ids are large 64-bit numbers).
pub const FIRST_ID: u64 = 68_719_476_737;

/// One user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Symphony's user id, and the store's key.
    pub id: u64,
    /// Rocket.Chat's `_id`.
    pub rc_id: String,
    /// Genesys's user id (a UUID).
    pub genesys_id: String,
    /// Login name, e.g. `ada.lovelace`.
    pub username: String,
    /// Display name, e.g. `Ada Lovelace`.
    pub name: String,
    /// Offset from UTC in hours (Rocket.Chat's `utcOffset`).
    pub utc_offset: i32,
    /// The version of the user's avatar (Rocket.Chat's `avatarETag`, 17 characters like an id),
    /// which `users.presence` lists beside the status.
    pub avatar_etag: String,
}

/// An index by id. aHash rather than std's SipHash: requests look users up by the ids in their
/// paths, and aHash is several times faster on short strings while its keys stay random per
/// process (no flooding by chosen ids).
type Index = HashMap<String, usize, ahash::RandomState>;

/// All users, sorted by Symphony id, with lookups by the other ids.
#[derive(Debug, Default)]
pub struct Directory {
    users: Vec<User>,
    by_rc: Index,
    by_genesys: Index,
    by_username: Index,
}

const FIRST: [&str; 16] = [
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Donald",
    "Edsger",
    "Frances",
    "Grace",
    "John",
    "Katherine",
    "Leslie",
    "Margaret",
    "Niklaus",
    "Radia",
    "Tony",
    "Yukihiro",
];
const LAST: [&str; 16] = [
    "Lovelace",
    "Turing",
    "Liskov",
    "Shannon",
    "Knuth",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Backus",
    "Johnson",
    "Lamport",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Hoare",
    "Matsumoto",
];

/// Meteor's `Random.id` alphabet, which Rocket.Chat's ids use.
const RC_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";

/// splitmix64's finalizer: ids that look unrelated but are the same every run.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 17-character id in Meteor's `Random.id` alphabet, the same for the same seed.
fn meteor_id(seed: u64) -> String {
    let mut bits = mix(seed);
    (0..17)
        .map(|i| {
            // 64 bits give 10 letters and change; the rest come from fresh bits.
            if i == 10 {
                bits = mix(seed ^ 0x9e37_79b9_7f4a_7c15);
            }
            let c = RC_ALPHABET[(bits % RC_ALPHABET.len() as u64) as usize];
            bits /= RC_ALPHABET.len() as u64;
            c as char
        })
        .collect()
}

impl User {
    /// The `n`th demo user (0-based).
    pub fn demo(n: usize) -> User {
        let id = FIRST_ID + n as u64;
        let (first, last) = (FIRST[n % 16], LAST[(n / 16) % 16]);
        let round = n / 256;
        let suffix = if round == 0 {
            String::new()
        } else {
            format!(".{round}")
        };
        let rc_id = meteor_id(id);
        let avatar_etag = meteor_id(id ^ 0xa7a7_a7a7);
        let (hi, lo) = (mix(id ^ 0x5eed), mix(id ^ 0xfeed));
        let (hi, lo) = ((hi & !0xf000) | 0x4000, (lo & !(0b11 << 62)) | (0b10 << 62));
        let genesys_id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        );
        User {
            id,
            rc_id,
            genesys_id,
            username: format!("{}.{}{suffix}", first.to_lowercase(), last.to_lowercase()),
            name: format!("{first} {last}"),
            utc_offset: (n % 24) as i32 - 11,
            avatar_etag,
        }
    }
}

impl Directory {
    /// A directory of `n` generated users.
    pub fn demo(n: usize) -> Directory {
        Directory::from_users((0..n).map(User::demo).collect())
    }

    /// A directory of `users` (sorted here by id).
    pub fn from_users(mut users: Vec<User>) -> Directory {
        users.sort_by_key(|u| u.id);
        users.dedup_by_key(|u| u.id);
        let index = |f: fn(&User) -> &String| -> Index {
            users
                .iter()
                .enumerate()
                .map(|(i, u)| (f(u).clone(), i))
                .collect()
        };
        Directory {
            by_rc: index(|u| &u.rc_id),
            by_genesys: index(|u| &u.genesys_id),
            by_username: index(|u| &u.username),
            users,
        }
    }

    /// Every user, sorted by Symphony id.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user with Symphony id `id`.
    pub fn get(&self, id: u64) -> Option<&User> {
        let i = self.users.binary_search_by_key(&id, |u| u.id).ok()?;
        self.users.get(i)
    }

    /// The user with Rocket.Chat `_id` `rc_id`.
    pub fn by_rc_id(&self, rc_id: &str) -> Option<&User> {
        self.users.get(*self.by_rc.get(rc_id)?)
    }

    /// The user with Genesys id `genesys_id`.
    pub fn by_genesys_id(&self, genesys_id: &str) -> Option<&User> {
        self.users.get(*self.by_genesys.get(genesys_id)?)
    }

    /// The user with login name `username`.
    pub fn by_username(&self, username: &str) -> Option<&User> {
        self.users.get(*self.by_username.get(username)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_ids_are_unique_and_well_formed() {
        let d = Directory::demo(5000);
        assert_eq!(d.len(), 5000);
        for u in d.users() {
            assert_eq!(d.by_rc_id(&u.rc_id), Some(u));
            assert_eq!(d.by_genesys_id(&u.genesys_id), Some(u));
            assert_eq!(d.by_username(&u.username), Some(u));
            assert_eq!(u.rc_id.len(), 17);
            assert_eq!(u.genesys_id.len(), 36);
        }
    }
}
