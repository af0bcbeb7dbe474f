//! throttle (work in progress by its owner).
