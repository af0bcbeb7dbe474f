//! notifications: domain types, rules, ports and service.
