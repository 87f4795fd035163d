//! rocketchat wire models (in progress).
