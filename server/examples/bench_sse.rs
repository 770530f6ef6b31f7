//! Live-feed fan-out benchmark: signs in to the console, opens `clients` streams on
//! `GET /console/live`, sends Actito updatePass requests at a steady `rate` per second
//! for `seconds`, and measures, for every accepted event on every stream, the delay
//! from the listener's 200 to its receipt (0 when it arrived before the 200).
//! Prints one JSON object.
//!
//! `cargo run --release --example bench_sse -- <base URL> <tenant> <email> <password> <API key> [clients] [rate] [seconds]`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, tenant, email, password, key] = &args[..5] else {
        panic!("usage: bench_sse <base URL> <tenant> <email> <password> <API key> [clients] [rate] [seconds]");
    };
    let number =
        |i: usize, default: u64| args.get(i).and_then(|n| n.parse().ok()).unwrap_or(default);
    let clients = number(5, 100) as usize;
    let rate = number(6, 200);
    let seconds = number(7, 10);

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(clients + 64)
        .build()
        .unwrap();
    let login = http
        .post(format!("{base}/console/fn/login"))
        .form(&[("email", email.as_str()), ("password", password.as_str())])
        .send()
        .await
        .expect("login");
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("passhook_session="))
        .expect("signed in (a session cookie)")
        .split(';')
        .next()
        .unwrap()
        .to_string();

    // Each stream reports (event id, receipt time) for accepted inbound events.
    let (received, mut receipts) = mpsc::unbounded_channel::<(String, Instant)>();
    let mut streams = Vec::new();
    for _ in 0..clients {
        let response = http
            .get(format!("{base}/console/live"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("stream opens");
        assert_eq!(response.status(), 200, "the live feed answers");
        let received = received.clone();
        streams.push(tokio::spawn(read_stream(response, received)));
    }
    drop(received);

    // The ingest side: a steady rate, each request on its own task.
    let ingest = reqwest::Client::new();
    let listener =
        format!("{base}/api/{tenant}/webhooks/listeners/actito/custom-actions/updatePass");
    let (acked, mut acks) = mpsc::unbounded_channel::<Option<(String, Instant)>>();
    let total = rate * seconds;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let run = format!(
        "{:x}",
        std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64
    );
    let started = Instant::now();
    for n in 0..total {
        tick.tick().await;
        let (ingest, listener, key, acked) =
            (ingest.clone(), listener.clone(), key.clone(), acked.clone());
        let body = json!({"id": format!("sse-{run}-{n}"), "data": {"actionParameters.points": n,
            "profileAttributes.emailAddress": format!("sse-{n}@bench.test")}});
        tokio::spawn(async move {
            let answer = ingest
                .post(&listener)
                .header("X-API-KEY", &key)
                .json(&body)
                .send()
                .await;
            let at = Instant::now();
            let id = match answer {
                Ok(r) if r.status() == 200 => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["eventId"].as_str().map(str::to_string)),
                _ => None,
            };
            let _ = acked.send(id.map(|id| (id, at)));
        });
    }
    let sending = started.elapsed();
    drop(acked);
    let mut sent = HashMap::new();
    let mut failed = 0;
    while let Some(ack) = acks.recv().await {
        match ack {
            Some((id, at)) => {
                sent.insert(id, at);
            }
            None => failed += 1,
        }
    }
    // Stragglers: wait until every stream has every event, or 5 s.
    let mut got: HashMap<String, Vec<Instant>> = HashMap::new();
    let expected = sent.len() * clients;
    let mut count = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while count < expected {
        match tokio::time::timeout_at(deadline, receipts.recv()).await {
            Ok(Some((id, at))) => {
                got.entry(id).or_default().push(at);
                count += 1;
            }
            _ => break,
        }
    }
    for stream in streams {
        stream.abort();
    }
    let mut delays: Vec<f64> = Vec::with_capacity(expected);
    for (id, acked_at) in &sent {
        for at in got.get(id).into_iter().flatten() {
            delays.push(at.saturating_duration_since(*acked_at).as_secs_f64() * 1000.0);
        }
    }
    delays.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| {
        if delays.is_empty() {
            return f64::NAN;
        }
        delays[((delays.len() as f64 * p).ceil() as usize).clamp(1, delays.len()) - 1]
    };
    println!(
        "{}",
        json!({
            "clients": clients,
            "rate": sent.len() as f64 / sending.as_secs_f64(),
            "sent": sent.len(),
            "failed": failed,
            "deliveries": delays.len(),
            "missing": expected - delays.len(),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
        })
    );
}

/// Reads one stream and reports the accepted inbound events it carries.
async fn read_stream(
    mut response: reqwest::Response,
    received: mpsc::UnboundedSender<(String, Instant)>,
) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let at = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(data.trim_start()) else {
                continue;
            };
            if event["type"] == "inbound" && event["status"] == "accepted" {
                if let Some(id) = event["eventId"].as_str() {
                    let _ = received.send((id.to_string(), at));
                }
            }
        }
    }
}
