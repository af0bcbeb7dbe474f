//! bulkhead (work in progress by its owner).
