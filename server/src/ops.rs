//! Operations endpoints: liveness, readiness and Prometheus metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde_json::json;

use domain::jobs::{self, JobStatus};
use domain::tasks::Kind;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn readyz(State(state): State<AppState>) -> Response {
    // An unreachable database must not keep the probe waiting for the pool's timeout.
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.core.db.ping());
    if ping.await.unwrap_or(false) {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "database unreachable"})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.read_queue(&state.core.db).await;
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.metrics.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    status: String,
}

/// The process's metrics, one registry per server instance.
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: HistogramFamily,
    /// The job queue as stored (the same on every replica of one database).
    jobs: Family<JobLabels, Gauge>,
    oldest_due: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<HttpLabels, Counter>::default();
        let latency: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)));
        let mut registry = Registry::with_prefix("passhook");
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            latency.clone(),
        );
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Unfinished jobs by kind and status (queued, running, waiting behind an earlier job of their order)",
            jobs.clone(),
        );
        let oldest_due = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "jobs_oldest_due_seconds",
            "How long the oldest job due has waited for a worker",
            oldest_due.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            jobs,
            oldest_due,
        }
    }
}

impl Metrics {
    /// Reads the job queue's gauges from the database; leaves them as they were when
    /// it does not answer within a second (the HTTP metrics are served regardless).
    async fn read_queue(&self, db: &domain::db::Db) {
        let read = tokio::time::timeout(std::time::Duration::from_secs(1), jobs::backlog(db));
        let Ok(Ok(backlog)) = read.await else {
            return;
        };
        self.jobs.clear();
        for kind in Kind::ALL.map(Kind::as_str) {
            for status in JobStatus::PENDING.map(JobStatus::as_str) {
                let labels = JobLabels {
                    kind: kind.into(),
                    status: status.into(),
                };
                self.jobs.get_or_create(&labels).set(0);
            }
        }
        for (kind, status, count) in backlog.counts {
            self.jobs
                .get_or_create(&JobLabels { kind, status })
                .set(count);
        }
        self.oldest_due.set(backlog.oldest_due_ms as f64 / 1000.0);
    }
}

/// The method's label: the standard methods by name, any other as `other`, so
/// invented methods cannot add series that live as long as the process.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts every request by method, route template and status.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method()).to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let labels = HttpLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
