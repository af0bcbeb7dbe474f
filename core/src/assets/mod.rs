//! assets: domain types, rules, ports and service.
