//! Wallet benchmark: `.pkpass` bundles signed per second, and APNs pushes per second
//! over one HTTP/2 connection to a loopback APNs stand-in. Prints one JSON line.
//!
//! `cargo run --release --example bench_wallet`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use domain::passes::Pass;
use domain::wallet::apns::{ApnsClient, PushResult};
use domain::wallet::credentials::AppleCredentials;
use domain::wallet::pass_types::{AppleDesign, AppleFields, FieldDef};
use domain::wallet::{certs, pkpass};
use serde_json::json;

#[tokio::main]
async fn main() {
    let test = certs::generate("pass.bench.passhook");
    let credentials = AppleCredentials {
        certificate_pem: test.certificate_pem,
        private_key_pem: test.private_key_pem,
        wwdr_pem: test.ca_pem,
        apns: None,
    };
    let pkpass_per_s = bundles_per_second(&credentials);

    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let app = Router::new().route(
        "/3/device/{token}",
        post(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            async { "" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });

    let client = Arc::new(ApnsClient::new(&url));
    let credentials = Arc::new(credentials);
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, credentials, sent) = (client.clone(), credentials.clone(), sent.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    if let PushResult::Delivered { .. } = client
                        .push("bench", &credentials, "pass.bench.passhook", "token")
                        .await
                    {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("push task");
    }
    let pushes_per_s = sent.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({ "pkpass_per_s": pkpass_per_s, "apns_pushes_per_s": pushes_per_s, "apns_received": received.load(Ordering::Relaxed) })
    );
}

fn bundles_per_second(credentials: &AppleCredentials) -> f64 {
    let pass = Pass {
        id: "pass_bench".into(),
        pass_type: "loyalty".into(),
        identifiers: Default::default(),
        additional_data: json!({"points": 1200, "tier": "gold"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        metadata: Default::default(),
        version: 1,
        created_at: String::new(),
        updated_at: String::new(),
    };
    let design = AppleDesign {
        pass_type_identifier: "pass.bench.passhook".into(),
        team_identifier: "BENCH".into(),
        organization_name: "Bench".into(),
        description: "Bench".into(),
        style: "storeCard".into(),
        foreground_color: None,
        background_color: None,
        label_color: None,
        logo_text: None,
        fields: AppleFields {
            primary: vec![FieldDef {
                key: "points".into(),
                value_from: Some("points".into()),
                ..Default::default()
            }],
            ..Default::default()
        },
    };
    let started = Instant::now();
    let mut made = 0u32;
    while started.elapsed() < Duration::from_secs(3) {
        let json = pkpass::pass_json(
            &pass,
            &design,
            "token-0123456789abcdef",
            "https://x/api/t/wallet/apple",
        );
        pkpass::bundle(&json, credentials).expect("bundle");
        made += 1;
    }
    f64::from(made) / started.elapsed().as_secs_f64()
}
