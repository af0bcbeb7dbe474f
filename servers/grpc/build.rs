//! Compiles `proto/bazaar/v1/*.proto` with protox (a pure-Rust protobuf
//! compiler, so no system `protoc`) and generates the tonic services and
//! prost messages from the resulting descriptors. The encoded descriptor
//! set is written next to the generated code for server reflection.

use std::path::PathBuf;

use prost::Message;

const PROTOS: [&str; 5] = [
    "bazaar/v1/common.proto",
    "bazaar/v1/licensing.proto",
    "bazaar/v1/catalog.proto",
    "bazaar/v1/orders.proto",
    "bazaar/v1/notifications.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // protox bundles the well-known types (google/protobuf/timestamp.proto)
    // and includes every import in the set, so reflection clients can
    // resolve `google.protobuf.Timestamp` without the proto files.
    let fds = protox::compile(PROTOS, ["proto"])?;
    std::fs::write(out.join("bazaar_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_client(true).build_server(true).build_transport(true).compile_fds(fds)?;
    Ok(())
}
