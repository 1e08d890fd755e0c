//! The storage contract suite (in progress).
