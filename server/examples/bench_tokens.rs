//! Prints `count` SFMC execute tokens for the benchmark, one per line, each with its
//! own `jti` and a pass picked among `passes` seeded ones.
//!
//! `cargo run --release --example bench_tokens -- <salt> <count> <passes>`

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let salt = args.next().expect("salt");
    let count: usize = args.next().and_then(|n| n.parse().ok()).expect("count");
    let passes: usize = args.next().and_then(|n| n.parse().ok()).expect("passes");
    let key = EncodingKey::from_secret(salt.as_bytes());
    let header = Header::new(Algorithm::HS256);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..count {
        let claims = json!({
            "jti": format!("bench-{i}"),
            "journeyId": "bench-journey",
            "activityId": "bench-activity",
            "keyValue": format!("contact-{i}"),
            "inArguments": [{"email": format!("p{}@bench.test", i % passes), "additionalData": {"offer": i}}],
        });
        writeln!(out, "{}", encode(&header, &claims, &key).expect("sign")).expect("write");
    }
}
