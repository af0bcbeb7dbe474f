//! The GraphQL API through its router, over in-memory and SQLite
//! marketplaces: every query and mutation, each role's access, the query
//! limits, batching (store calls counted), subscriptions over a real
//! WebSocket, GraphiQL's offline assets, and the checked-in SDL.
//!
//! One test binary (modules below), so the suite links once.

mod common;

mod access;
mod batching;
mod graphiql;
mod limits;
mod mutations;
mod queries;
mod sdl;
mod subscription;
