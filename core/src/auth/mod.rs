//! auth: domain types, rules, ports and service.
