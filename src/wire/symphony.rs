//! symphony wire models (in progress).
