//! CSV exports for the console, streamed a page at a time so a large export neither
//! times out nor holds everything in memory.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::deliveries::{self, Delivery, DeliveryFilter};
use domain::Core;
use futures_util::stream;
use std::collections::HashMap;
use tower_sessions::Session;

use crate::problem::Problem;
use crate::state::AppState;

/// Rows read from the database per step of the stream.
const PAGE: u32 = 500;

const HEADER: [&str; 11] = [
    "id",
    "created_at",
    "channel",
    "pass_id",
    "event_id",
    "target",
    "status",
    "attempts",
    "last_status_code",
    "last_latency_ms",
    "last_error",
];

pub fn router() -> Router<AppState> {
    Router::new().route("/console/export/deliveries.csv", get(deliveries_csv))
}

/// The push history's filtered list (the same query parameters as the page).
async fn deliveries_csv(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let caller = match app::ssr::caller_of(&state.core.db, &session).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return Problem::unauthenticated().into_response(),
        Err(e) => return Problem::from(domain::DomainError::Internal(e)).into_response(),
    };
    let query =
        app::model::DeliveryQuery::from_params(|k| params.get(k).cloned().unwrap_or_default());
    let filter = app::server::delivery_filter(&query);
    let tenant = caller.tenant.tenant_id;
    let filename = format!(
        "attachment; filename=\"deliveries-{tenant}-{}.csv\"",
        domain::clock::rfc3339(domain::clock::now_ms())
            .get(..10)
            .unwrap_or("export")
    );
    let body = Body::from_stream(pages(state.core.clone(), tenant, filter));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

enum Step {
    Header,
    Page(Option<String>),
    Done,
}

/// The header, then one chunk per page of deliveries, following the cursor.
fn pages(
    core: Core,
    tenant: String,
    filter: DeliveryFilter,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    stream::unfold(Step::Header, move |step| {
        let (core, tenant, filter) = (core.clone(), tenant.clone(), filter.clone());
        async move {
            match step {
                Step::Header => Some((csv_chunk(&[], true), Step::Page(None))),
                Step::Page(cursor) => {
                    let page =
                        deliveries::list(&core.db, &tenant, &filter, cursor.as_deref(), PAGE).await;
                    match page {
                        Ok(page) => {
                            let next = page.next.map_or(Step::Done, |c| Step::Page(Some(c)));
                            Some((csv_chunk(&page.items, false), next))
                        }
                        // The status line is sent already: cut the stream so the
                        // download fails visibly instead of looking complete.
                        Err(e) => Some((Err(std::io::Error::other(e.to_string())), Step::Done)),
                    }
                }
                Step::Done => None,
            }
        }
    })
}

fn csv_chunk(rows: &[Delivery], header: bool) -> Result<Bytes, std::io::Error> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 160));
    if header {
        out.write_record(HEADER).map_err(std::io::Error::other)?;
    }
    for d in rows {
        let last = d.attempts.last();
        out.write_record([
            d.id.as_str(),
            d.created_at.as_str(),
            d.channel.as_str(),
            d.pass_id.as_deref().unwrap_or(""),
            d.event_id.as_deref().unwrap_or(""),
            &spreadsheet_safe(&d.target),
            d.status.as_str(),
            &d.attempts.len().to_string(),
            &last
                .and_then(|a| a.status_code)
                .map(|c| c.to_string())
                .unwrap_or_default(),
            &last.map(|a| a.latency_ms.to_string()).unwrap_or_default(),
            &spreadsheet_safe(d.last_error.as_deref().unwrap_or("")),
        ])
        .map_err(std::io::Error::other)?;
    }
    out.into_inner()
        .map(Bytes::from)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Text from outside (targets, error messages) must not run as a spreadsheet formula
/// when the export is opened (OWASP "CSV injection"): such cells get a leading `'`.
fn spreadsheet_safe(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formulas_are_defused() {
        assert_eq!(super::spreadsheet_safe("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(super::spreadsheet_safe("https://x"), "https://x");
    }
}
