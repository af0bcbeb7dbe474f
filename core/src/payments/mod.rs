//! payments: domain types, rules, ports and service.
