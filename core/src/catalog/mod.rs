//! catalog: domain types, rules, ports and service.
