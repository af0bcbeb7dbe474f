//! The generated `bazaar.v1` messages, clients and servers (from
//! `proto/bazaar/v1/*.proto`, compiled by `build.rs`).

#![allow(missing_docs, unreachable_pub, missing_debug_implementations, clippy::all, clippy::pedantic)]

tonic::include_proto!("bazaar.v1");

/// The encoded `FileDescriptorSet` of `bazaar.v1` and its imports, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bazaar_v1_descriptor.bin"));
