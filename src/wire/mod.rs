//! The three vendors' wire formats, behind the `serde` feature: the JSON models of Symphony,
//! Rocket.Chat and Genesys Cloud, and the mappings between them and the store's model.
//!
//! [`Category`] is the pivot: each dialect shows a category as one row of [`SHOWN`], so a
//! presence set in one dialect reads back the same way in the others. Where the store keeps more
//! than a dialect can say (a Genesys definition id, a status message), the dialect that can say
//! it gets it back unchanged.
//!
//! | category (Symphony) | Rocket.Chat | Genesys system presence |
//! | --- | --- | --- |
//! | `UNDEFINED`, `AVAILABLE` | `online` | `Available` |
//! | `BUSY`, `DO_NOT_DISTURB`, `ON_THE_PHONE` | `busy` | `Busy` |
//! | `IN_A_MEETING` | `busy` | `Meeting` |
//! | `BE_RIGHT_BACK` | `away` | `Break` |
//! | `AWAY`, `OUT_OF_OFFICE`, `OFF_WORK` | `away` | `Away` |
//! | `OFFLINE` | `offline` | `Offline` |
//!
//! One rule makes the columns agree: a dialect says offline only for `OFFLINE`, the category of
//! a user with no session. A user out of office or off work who is still connected is away in
//! both Rocket.Chat and Genesys (Rocket.Chat's full list leaves offline users out, so showing
//! them offline would hide a connected user). Busy in Rocket.Chat is `Busy` or `Meeting` in
//! Genesys, away is `Away` or `Break`. Going the other way, a Genesys presence shows its
//! [`SystemPresence::category`], which maps back to the same row.
//!
//! Genesys spells a system presence three ways; see [`genesys`].
//!
//! Nothing here does I/O; the HTTP service (`server/`, `presence-server`) uses these models.

use crate::{Category, SystemPresence};

pub mod genesys;
pub mod rocketchat;
pub mod symphony;
pub mod time;

use rocketchat::Status;

/// How each dialect shows one category: a row of the table in the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The category, which is also what Symphony shows (`Category::as_str`).
    pub category: Category,
    /// Rocket.Chat's status.
    pub rocketchat: Status,
    /// Genesys' system presence.
    pub genesys: SystemPresence,
}

/// The table in the module docs, one row per category, in [`Category::ALL`] order.
pub const SHOWN: [Shown; 11] = {
    use Category as C;
    use Status as R;
    use SystemPresence as G;
    const fn row(category: Category, rocketchat: Status, genesys: SystemPresence) -> Shown {
        Shown {
            category,
            rocketchat,
            genesys,
        }
    }
    [
        row(C::Undefined, R::Online, G::Available),
        row(C::Available, R::Online, G::Available),
        row(C::Busy, R::Busy, G::Busy),
        row(C::DoNotDisturb, R::Busy, G::Busy),
        row(C::OnThePhone, R::Busy, G::Busy),
        row(C::BeRightBack, R::Away, G::Break),
        row(C::InAMeeting, R::Busy, G::Meeting),
        row(C::Away, R::Away, G::Away),
        row(C::OutOfOffice, R::Away, G::Away),
        row(C::OffWork, R::Away, G::Away),
        row(C::Offline, R::Offline, G::Offline),
    ]
};

/// How the dialects show `category`.
///
/// ```
/// use presence_store::wire::{rocketchat::Status, shown};
/// use presence_store::{Category, SystemPresence};
///
/// let off_work = shown(Category::OffWork);
/// assert_eq!((off_work.rocketchat, off_work.genesys), (Status::Away, SystemPresence::Away));
/// ```
pub const fn shown(category: Category) -> Shown {
    SHOWN[category as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_category_once_in_order() {
        assert_eq!(SHOWN.map(|r| r.category), Category::ALL);
        for c in Category::ALL {
            assert_eq!(shown(c).category, c);
        }
    }

    #[test]
    fn the_dialects_agree_row_by_row() {
        for Shown {
            category,
            rocketchat,
            genesys,
        } in SHOWN
        {
            let genesys_class = match genesys {
                SystemPresence::Available => Status::Online,
                SystemPresence::Busy | SystemPresence::Meeting => Status::Busy,
                SystemPresence::Offline => Status::Offline,
                _ => Status::Away,
            };
            assert_eq!(rocketchat, genesys_class, "{category}");
            assert_eq!(
                rocketchat == Status::Offline,
                category == Category::Offline,
                "{category}"
            );
        }
    }

    #[test]
    fn a_genesys_presence_reads_back_as_itself_or_its_equal() {
        // A system presence shows as its category, and that category's row names a system
        // presence of the same category (Idle, Meal: Away; On Queue, Training: Busy).
        for g in SystemPresence::ALL {
            let row = shown(g.category());
            assert_eq!(row.genesys.category(), g.category(), "{g}");
        }
        // A status set in Rocket.Chat reads back the same there.
        for s in Status::ALL {
            assert_eq!(shown(s.category()).rocketchat, s);
        }
    }
}
