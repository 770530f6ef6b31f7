//! What happened: inbound events, deliveries, pass history, journeys and counts.

use serde::{Deserialize, Serialize};

/// A time range chosen in a filter, kept in the URL as `range=…`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Range {
    Hour,
    #[default]
    Day,
    Week,
    Month,
    All,
}

impl Range {
    pub const ALL: [Range; 5] = [
        Range::Hour,
        Range::Day,
        Range::Week,
        Range::Month,
        Range::All,
    ];

    pub fn param(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
            Range::All => "all",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Range::Hour => "Last hour",
            Range::Day => "Last 24 hours",
            Range::Week => "Last 7 days",
            Range::Month => "Last 30 days",
            Range::All => "All time",
        }
    }

    pub fn parse(param: &str) -> Range {
        Range::ALL
            .into_iter()
            .find(|r| r.param() == param)
            .unwrap_or_default()
    }

    /// How far back the range reaches, in ms (`None`: no limit).
    pub fn span_ms(self) -> Option<i64> {
        const HOUR: i64 = 3_600_000;
        match self {
            Range::Hour => Some(HOUR),
            Range::Day => Some(24 * HOUR),
            Range::Week => Some(7 * 24 * HOUR),
            Range::Month => Some(30 * 24 * HOUR),
            Range::All => None,
        }
    }
}

/// The audit page's filters, as found in (and written to) the URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventQuery {
    pub source: String,
    pub status: String,
    pub kind: String,
    pub reason: String,
    pub range: Range,
    pub q: String,
    pub cursor: String,
}

impl EventQuery {
    /// The filters from URL parameters (`get` answers "" when absent).
    pub fn from_params(get: impl Fn(&str) -> String) -> Self {
        EventQuery {
            source: get("source"),
            status: get("status"),
            kind: get("kind"),
            reason: get("reason"),
            range: Range::parse(&get("range")),
            q: get("q"),
            cursor: get("cursor"),
        }
    }

    /// The query string for these filters (without the cursor unless `with_cursor`).
    pub fn to_query(&self, with_cursor: bool) -> String {
        let mut pairs = vec![
            ("source", self.source.as_str()),
            ("status", self.status.as_str()),
            ("kind", self.kind.as_str()),
            ("reason", self.reason.as_str()),
            ("q", self.q.as_str()),
        ];
        if self.range != Range::default() {
            pairs.push(("range", self.range.param()));
        }
        if with_cursor {
            pairs.push(("cursor", self.cursor.as_str()));
        }
        query_string(&pairs)
    }
}

/// `a=1&b=2` from the non-empty pairs, values percent-encoded.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", crate::pages::passes::urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub received_at: String,
    pub status: String,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub items: i64,
    pub journey_id: Option<String>,
    pub key_value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventList {
    pub items: Vec<EventRow>,
    pub next: Option<String>,
}

/// The kinds of inbound request, for the audit filter.
pub const EVENT_KINDS: [&str; 8] = [
    "custom-action.updatePass",
    "profile.CREATE",
    "profile.UPDATE",
    "pushupdate.execute",
    "pushupdate.publish",
    "pushupdate.validate",
    "pushupdate.save",
    "pushupdate.stop",
];

/// Cause codes of rejections and failures, for the audit filter.
pub const CAUSE_CODES: [&str; 11] = [
    "UNAUTHENTICATED",
    "FORBIDDEN_SCOPE",
    "FORBIDDEN_TENANT",
    "MALFORMED_BODY",
    "VALIDATION_FAILED",
    "UNSUPPORTED_EVENT",
    "UNSUPPORTED_MEDIA_TYPE",
    "PAYLOAD_TOO_LARGE",
    "NO_MATCHING_PASS",
    "NOT_CONFIGURED",
    "PROCESSING_FAILED",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub key: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassUpdateRow {
    pub pass_id: String,
    pub version: i64,
    pub changes: Vec<ChangeRow>,
    pub significant: bool,
    pub at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub event: EventRow,
    /// Pretty-printed when it is JSON.
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
    pub response: Option<String>,
    /// How the request was authenticated (or why it was not).
    pub authentication: String,
    pub replay_of: Option<String>,
    pub replays: Vec<String>,
    pub pass_updates: Vec<PassUpdateRow>,
    pub jobs: Vec<JobRow>,
    pub deliveries: Vec<DeliveryRow>,
    pub can_replay: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptRow {
    pub at: String,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub channel: String,
    pub pass_id: Option<String>,
    pub event_id: Option<String>,
    pub target: String,
    pub status: String,
    pub attempts: Vec<AttemptRow>,
    pub last_error: Option<String>,
    pub created_at: String,
}

impl DeliveryRow {
    /// The latency of the last attempt, if any.
    pub fn latency_ms(&self) -> Option<i64> {
        self.attempts.last().map(|a| a.latency_ms)
    }
}

/// The push history's filters, as found in (and written to) the URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryQuery {
    pub channel: String,
    pub status: String,
    pub range: Range,
    pub q: String,
    pub cursor: String,
}

impl DeliveryQuery {
    /// The filters from URL parameters (`get` answers "" when absent).
    pub fn from_params(get: impl Fn(&str) -> String) -> Self {
        DeliveryQuery {
            channel: get("channel"),
            status: get("status"),
            range: Range::parse(&get("range")),
            q: get("q"),
            cursor: get("cursor"),
        }
    }

    pub fn to_query(&self, with_cursor: bool) -> String {
        let mut pairs = vec![
            ("channel", self.channel.as_str()),
            ("status", self.status.as_str()),
            ("q", self.q.as_str()),
        ];
        if self.range != Range::default() {
            pairs.push(("range", self.range.param()));
        }
        if with_cursor {
            pairs.push(("cursor", self.cursor.as_str()));
        }
        query_string(&pairs)
    }
}

/// A filter's choices, `(value, label)`, built on the server from the domain's
/// vocabularies (the browser's build has no `domain`).
pub type Choices = Vec<(String, String)>;

/// The choices of the audit's and the push history's status and channel filters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FilterChoices {
    pub channels: Choices,
    pub delivery_statuses: Choices,
    pub event_statuses: Choices,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryList {
    pub items: Vec<DeliveryRow>,
    pub next: Option<String>,
    pub can_retry: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionRow {
    pub version: i64,
    pub changes: Vec<ChangeRow>,
    /// Who or what caused it, in words.
    pub cause: String,
    pub event_id: Option<String>,
    pub journey_id: Option<String>,
    pub message: Option<String>,
    pub significant: bool,
    pub at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub device_id: String,
    pub pushed_version: i64,
    pub registered_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassDetail {
    pub pass: super::PassRow,
    pub created_at: String,
    pub versions: Vec<VersionRow>,
    pub apple_devices: Vec<DeviceRow>,
    /// (object id, the newest version Google has).
    pub google_object: Option<(String, i64)>,
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JourneyRow {
    pub journey_id: String,
    pub source: String,
    pub executions: i64,
    pub matched: i64,
    pub unmatched: i64,
    pub refused: i64,
    pub passes_updated: i64,
    pub pushes_sent: i64,
    pub pushes_failed: i64,
    pub first_at: String,
    pub last_at: String,
    /// The journey's versions (SFMC), most recently active first.
    pub versions: Vec<JourneyVersionRow>,
}

/// One version of an SFMC journey.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JourneyVersionRow {
    pub version_id: String,
    pub executions: i64,
    pub matched: i64,
    pub unmatched: i64,
    pub refused: i64,
    pub lifecycle_calls: i64,
    pub last_call: Option<String>,
    pub last_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContactView {
    pub key_value: String,
    pub executions: i64,
    pub unmatched: i64,
    pub last_event_id: String,
    pub last_at: String,
    pub pass_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JourneyDetail {
    pub summary: Option<JourneyRow>,
    pub contacts: Vec<ContactView>,
    /// Executions over the chosen range: matched (good) and not (bad).
    pub timeline: Vec<Bar>,
}

/// One column of a stacked chart: what went well at the bottom, what did not on top.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// e.g. `14:00` or `11-23`.
    pub label: String,
    pub good: i64,
    pub bad: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStat {
    pub source: String,
    pub accepted: i64,
    pub rejected: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BucketStat {
    /// e.g. `14:00`.
    pub label: String,
    pub accepted: i64,
    pub rejected: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// The dashboard's activity figures for one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub window: String,
    pub inbound: Vec<SourceStat>,
    pub accepted: i64,
    pub rejected: i64,
    pub pass_updates: i64,
    pub pushes_delivered: i64,
    pub pushes_failed: i64,
    pub p95_processing_ms: Option<i64>,
    pub buckets: Vec<BucketStat>,
}

/// What the console's "send test event" form builds a request from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TestEventInput {
    /// `actito` or `sfmc`.
    pub source: String,
    /// Email of the customer (the pass is found by it).
    pub email: String,
    /// `key=value` lines for the pass's data.
    pub data: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestEventResult {
    pub status: u16,
    pub body: String,
    pub event_id: Option<String>,
}

/// How long inbound events keep their content, and what was already purged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetentionView {
    pub days: i64,
    /// Events whose content was purged (their counts are kept).
    pub purged_events: i64,
    pub history: Vec<super::HistoryRow>,
}
