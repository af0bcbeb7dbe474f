//! licensing: domain types, rules, ports and service.
