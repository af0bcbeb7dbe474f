//! orders: domain types, rules, ports and service.
