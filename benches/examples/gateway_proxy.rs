//! The Bazaar gateway in front of one upstream, for load runs until the CLI
//! has `bazaar gateway` (same library call: short-form config, `serve`).
//! Health checks stay on (as in production); retries and breakers are the
//! defaults.
//!
//! `cargo run --release -p bazaar-benches --example gateway_proxy -- 127.0.0.1:18000 http://127.0.0.1:18080`

use bazaar_gateway::{Gateway, GatewayConfig, serve};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18000".into());
    let upstream = args.next().unwrap_or_else(|| "http://127.0.0.1:18080".into());
    let config = GatewayConfig::short_form(Some(addr.parse()?), &[format!("api={upstream}")])?;
    let listener = tokio::net::TcpListener::bind(config.server.http_addr).await?;
    println!("gateway listening on http://{} -> {upstream}", listener.local_addr()?);
    let gateway = Gateway::builder(config).build()?;
    serve(listener, gateway, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
