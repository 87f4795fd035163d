//! The three vendors' wire formats, behind the `serde` feature: the JSON models of Symphony,
//! Rocket.Chat and Genesys Cloud, and the mappings between them and the store's model.
//!
//! [`Category`](crate::Category) is the pivot: each dialect maps its statuses to and from it, so
//! a presence set in one dialect reads back in the others (Symphony's eleven categories <->
//! Rocket.Chat's `online`/`away`/`busy`/`offline` <-> Genesys system presences and definitions).
//! Where the store keeps more than a dialect can say (a Genesys definition id, a status message),
//! the dialect that can say it gets it back unchanged.
//!
//! Nothing here does I/O; the HTTP service (`server/`, `presence-server`) uses these models.

pub mod genesys;
pub mod rocketchat;
pub mod symphony;
pub mod time;
