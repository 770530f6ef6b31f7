//! The process's Prometheus metrics: requests by method, route and status, and the
//! job queue's backlog.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use domain::jobs::{self, JobStatus};
use domain::tasks::Kind;

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
    pub registry: Registry,
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
    /// Counts one answered request and its latency.
    pub fn count(&self, method: &str, route: String, status: u16, seconds: f64) {
        let labels = HttpLabels {
            method: method.to_string(),
            route,
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// Reads the job queue's gauges from the database; leaves them as they were when
    /// it does not answer within a second (the HTTP metrics are served regardless).
    pub async fn read_queue(&self, db: &domain::db::Db) {
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
