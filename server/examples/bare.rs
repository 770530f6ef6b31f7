//! The benchmark's ceiling: a bare axum server built from the same dependencies,
//! answering 200 to any POST after reading its body, storing nothing. It also
//! serves as the Actito callback sink during the benchmark.
//!
//! `cargo run --release --example bare -- 127.0.0.1:3901`

use axum::body::Bytes;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

async fn accept(body: Bytes) -> Json<Value> {
    Json(json!({ "received": body.len() }))
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3901".into());
    let app = Router::new().fallback(post(accept));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
