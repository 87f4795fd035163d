//! genesys wire models (in progress).
