//! Server functions behind the audit, push history, pass detail, journeys and the
//! dashboard's activity. Everyone in the tenant may look; only admins act (replay,
//! retry, send test events).

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::*;

/// The push history's filters as the domain takes them (the CSV export uses it too).
#[cfg(feature = "ssr")]
pub fn delivery_filter(q: &DeliveryQuery) -> domain::deliveries::DeliveryFilter {
    convert::delivery_filter(q)
}

#[cfg(feature = "ssr")]
mod convert {
    use crate::model::*;
    use domain::{audit, deliveries, events, passes};
    use serde_json::Value;

    /// Where a range starts, counted back from now.
    pub fn since(range: Range) -> Option<i64> {
        range.span_ms().map(|span| domain::clock::now_ms() - span)
    }

    /// A chart tick: `14:05` within a day, `11-23` over longer spans.
    pub fn tick(ms: i64, daily: bool) -> String {
        let text = domain::clock::rfc3339(ms);
        let part = if daily {
            text.get(5..10)
        } else {
            text.get(11..16)
        };
        part.unwrap_or_default().to_string()
    }

    pub fn text(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    pub fn event(e: events::Event) -> EventRow {
        EventRow {
            id: e.id,
            source: e.source,
            kind: e.kind,
            received_at: e.received_at,
            status: e.status,
            reason: e.reason,
            detail: e.detail,
            items: e.items,
            journey_id: e.journey_id,
            key_value: e.key_value,
        }
    }

    pub fn changes(changes: Vec<passes::Change>) -> Vec<ChangeRow> {
        changes
            .into_iter()
            .map(|c| ChangeRow {
                key: c.key,
                before: c.before.as_ref().map(text),
                after: c.after.as_ref().map(text),
            })
            .collect()
    }

    pub fn delivery(d: deliveries::Delivery) -> DeliveryRow {
        DeliveryRow {
            id: d.id,
            channel: d.channel,
            pass_id: d.pass_id,
            event_id: d.event_id,
            target: d.target,
            status: d.status,
            attempts: d
                .attempts
                .into_iter()
                .map(|a| AttemptRow {
                    at: a.attempted_at,
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    error: a.error,
                })
                .collect(),
            last_error: d.last_error,
            created_at: d.created_at,
        }
    }

    pub fn pass_update(u: audit::PassUpdate) -> PassUpdateRow {
        PassUpdateRow {
            pass_id: u.pass_id,
            version: u.version,
            changes: changes(u.changes),
            significant: u.significant,
            at: u.at,
        }
    }

    pub fn event_filter(q: &EventQuery) -> events::EventFilter {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        events::EventFilter {
            source: some(&q.source),
            status: some(&q.status),
            kind: some(&q.kind),
            reason: some(&q.reason),
            from_ms: since(q.range),
            to_ms: None,
            text: some(&q.q),
        }
    }

    pub fn delivery_filter(q: &DeliveryQuery) -> deliveries::DeliveryFilter {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        deliveries::DeliveryFilter {
            channel: deliveries::ChannelFilter::parse(q.channel.trim()),
            status: some(&q.status),
            from_ms: since(q.range),
            text: some(&q.q),
            ..Default::default()
        }
    }

    /// The cause of a pass version in words: "Actito event evt_…", "API key …".
    pub fn cause(c: &passes::Cause) -> String {
        let source = match c.source.as_str() {
            "actito" => "Actito",
            "sfmc" => "SFMC journey",
            "api" => "API",
            "console" => "Console",
            other => other,
        };
        match (&c.journey_id, &c.actor) {
            (Some(journey), _) => format!("{source} {journey}"),
            (None, Some(actor)) => format!("{source} ({actor})"),
            (None, None) => source.to_string(),
        }
    }

    pub fn pretty(body: &str) -> String {
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| body.to_string())
    }
}

pub const EVENT_PAGE_SIZE: u32 = 50;

#[server(prefix = "/console/fn", endpoint = "filter_options")]
pub async fn filter_options() -> Result<FilterChoices, ServerFnError> {
    use domain::deliveries::{ChannelFilter, DeliveryStatus};
    use domain::events::EventStatus;
    crate::ssr::require(domain::users::Role::Marketer).await?;
    let pair = |value: &str, label: &str| (value.to_string(), label.to_string());
    Ok(FilterChoices {
        channels: ChannelFilter::ALL
            .map(|c| pair(c.as_str(), c.label()))
            .into(),
        delivery_statuses: DeliveryStatus::ALL
            .map(|s| pair(s.as_str(), s.label()))
            .into(),
        event_statuses: EventStatus::ALL.map(|s| pair(s.as_str(), s.label())).into(),
    })
}

#[server(prefix = "/console/fn", endpoint = "list_events", input = Json)]
pub async fn list_events(query: EventQuery) -> Result<EventList, ServerFnError> {
    use crate::ssr::{self, internal};
    let caller = ssr::require(domain::users::Role::Marketer).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let cursor = Some(query.cursor.as_str()).filter(|c| !c.is_empty());
    let filter = convert::event_filter(&query);
    let page = domain::events::list(&core.db, tenant, &filter, cursor, EVENT_PAGE_SIZE)
        .await
        .map_err(|e| match e {
            domain::DomainError::Invalid(_) => ServerFnError::new("That page link has expired."),
            e => internal(e),
        })?;
    Ok(EventList {
        items: page.items.into_iter().map(convert::event).collect(),
        next: page.next,
    })
}

#[server(prefix = "/console/fn", endpoint = "get_event")]
pub async fn get_event(id: String) -> Result<Option<EventView>, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::users::Role;
    let caller = ssr::require(Role::Marketer).await?;
    let core = ssr::core()?;
    let detail = match domain::audit::detail(&core.db, &caller.tenant.tenant_id, &id).await {
        Ok(detail) => detail,
        Err(domain::DomainError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(internal(e)),
    };
    let rejected = detail.event.status == domain::events::EventStatus::Rejected.as_str();
    let credential = match (detail.event.source.as_str(), &detail.key_id) {
        ("sfmc", Some(key)) => Some(format!(
            "JWT (HS256) verified with SFMC signing key “{key}”"
        )),
        (_, Some(key)) => Some(format!("API key {key}")),
        (_, None) => None,
    };
    let reason = detail.event.reason.clone().unwrap_or_default();
    let authentication = match (credential, rejected) {
        (Some(credential), false) => credential,
        (Some(credential), true) => format!("{credential}; then refused: {reason}"),
        (None, true) => format!("Refused: {reason}"),
        (None, false) => "—".to_string(),
    };
    Ok(Some(EventView {
        can_replay: caller.tenant.role.allows(Role::Admin) && !rejected && detail.body.is_some(),
        authentication,
        body: detail.body.as_deref().map(convert::pretty),
        headers: detail
            .headers
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), convert::text(v)))
                    .collect()
            })
            .unwrap_or_default(),
        response: detail.response.map(|r| convert::pretty(&r.to_string())),
        replay_of: detail.replay_of,
        replays: detail.replays,
        pass_updates: detail
            .pass_updates
            .into_iter()
            .map(convert::pass_update)
            .collect(),
        jobs: detail
            .jobs
            .into_iter()
            .map(|j| JobRow {
                id: j.id,
                kind: j.kind,
                status: j.status,
                attempts: j.attempts,
                last_error: j.last_error,
            })
            .collect(),
        deliveries: detail
            .deliveries
            .into_iter()
            .map(convert::delivery)
            .collect(),
        event: convert::event(detail.event),
    }))
}

/// Runs an accepted event again; returns the new event's id.
#[server(prefix = "/console/fn", endpoint = "replay_event")]
pub async fn replay_event(id: String) -> Result<String, ServerFnError> {
    use crate::ssr::{self, internal};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    match domain::audit::replay(&core, &caller.tenant.tenant_id, &id).await {
        Ok(new_id) => Ok(new_id),
        Err(domain::DomainError::Conflict(message)) => Err(ServerFnError::new(message)),
        Err(domain::DomainError::NotFound(_)) => Err(ssr::not_found("No such event.")),
        Err(e) => Err(internal(e)),
    }
}

pub const DELIVERY_PAGE_SIZE: u32 = 50;

#[server(prefix = "/console/fn", endpoint = "list_deliveries", input = Json)]
pub async fn list_deliveries(query: DeliveryQuery) -> Result<DeliveryList, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::users::Role;
    let caller = ssr::require(Role::Marketer).await?;
    let core = ssr::core()?;
    let cursor = Some(query.cursor.as_str()).filter(|c| !c.is_empty());
    let page = domain::deliveries::list(
        &core.db,
        &caller.tenant.tenant_id,
        &convert::delivery_filter(&query),
        cursor,
        DELIVERY_PAGE_SIZE,
    )
    .await
    .map_err(|e| match e {
        domain::DomainError::Invalid(_) => ServerFnError::new("That page link has expired."),
        e => internal(e),
    })?;
    Ok(DeliveryList {
        items: page.items.into_iter().map(convert::delivery).collect(),
        next: page.next,
        can_retry: caller.tenant.role.allows(Role::Admin),
    })
}

/// Retries every failed delivery matching the filters (at most 1 000 at a time).
#[server(prefix = "/console/fn", endpoint = "retry_deliveries", input = Json)]
pub async fn retry_deliveries(query: DeliveryQuery) -> Result<usize, ServerFnError> {
    use crate::ssr::{self, internal};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let filter = convert::delivery_filter(&query);
    domain::redeliver::retry_failed(&core, &caller.tenant.tenant_id, &filter, 1_000)
        .await
        .map_err(internal)
}

#[server(prefix = "/console/fn", endpoint = "get_pass")]
pub async fn get_pass(id: String) -> Result<Option<PassDetail>, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::{deliveries, passes, wallet::registrations};
    let caller = ssr::require(domain::users::Role::Marketer).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let pass = match passes::get(&core.db, tenant, &id).await {
        Ok(pass) => pass,
        Err(domain::DomainError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(internal(e)),
    };
    let versions = passes::versions(&core.db, tenant, &id)
        .await
        .map_err(internal)?;
    let wallets = registrations::wallets_of(&core.db, tenant, &id)
        .await
        .map_err(internal)?;
    let filter = deliveries::DeliveryFilter {
        pass_id: Some(id.clone()),
        ..Default::default()
    };
    let deliveries = deliveries::list(&core.db, tenant, &filter, None, 100)
        .await
        .map_err(internal)?;
    Ok(Some(PassDetail {
        created_at: pass.created_at.clone(),
        pass: ssr::pass_row(pass),
        versions: versions
            .into_iter()
            .map(|v| VersionRow {
                version: v.version,
                cause: convert::cause(&v.cause),
                event_id: v.cause.event_id.clone(),
                journey_id: v.cause.journey_id.clone(),
                changes: convert::changes(v.changes),
                message: v.message,
                significant: v.significant,
                at: v.created_at,
            })
            .collect(),
        apple_devices: wallets
            .apple
            .into_iter()
            .map(|d| DeviceRow {
                device_id: d.device_id,
                pushed_version: d.pushed_version,
                registered_at: d.registered_at,
            })
            .collect(),
        google_object: wallets.google,
        deliveries: deliveries
            .items
            .into_iter()
            .map(convert::delivery)
            .collect(),
    }))
}

#[cfg(feature = "ssr")]
fn journey_row(j: domain::journeys::JourneySummary) -> JourneyRow {
    JourneyRow {
        journey_id: j.journey_id,
        source: j.source,
        executions: j.executions,
        matched: j.matched,
        unmatched: j.unmatched,
        refused: j.refused,
        passes_updated: j.passes_updated,
        pushes_sent: j.pushes_sent,
        pushes_failed: j.pushes_failed,
        first_at: j.first_at,
        last_at: j.last_at,
        versions: j
            .versions
            .into_iter()
            .map(|v| JourneyVersionRow {
                version_id: v.version_id,
                executions: v.executions,
                matched: v.matched,
                unmatched: v.unmatched,
                refused: v.refused,
                lifecycle_calls: v.lifecycle_calls,
                last_call: v.last_call,
                last_at: v.last_at,
            })
            .collect(),
    }
}

#[server(prefix = "/console/fn", endpoint = "list_journeys")]
pub async fn list_journeys(range: Range) -> Result<Vec<JourneyRow>, ServerFnError> {
    use crate::ssr::{self, internal};
    let caller = ssr::require(domain::users::Role::Marketer).await?;
    let core = ssr::core()?;
    let since = convert::since(range).unwrap_or(0);
    let list = domain::journeys::list(&core.db, &caller.tenant.tenant_id, since)
        .await
        .map_err(internal)?;
    Ok(list.into_iter().map(journey_row).collect())
}

#[server(prefix = "/console/fn", endpoint = "get_journey")]
pub async fn get_journey(id: String, range: Range) -> Result<JourneyDetail, ServerFnError> {
    use crate::ssr::{self, internal};
    let caller = ssr::require(domain::users::Role::Marketer).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let since = convert::since(range).unwrap_or(0);
    let summary = domain::journeys::list(&core.db, tenant, since)
        .await
        .map_err(internal)?
        .into_iter()
        .find(|j| j.journey_id == id)
        .map(journey_row);
    let contacts = domain::journeys::contacts(&core.db, tenant, &id, since)
        .await
        .map_err(internal)?;
    let now = domain::clock::now_ms();
    // "All time" starts at the journey's first execution.
    let from = convert::since(range)
        .or_else(|| {
            let first = summary.as_ref()?.first_at.as_str();
            domain::clock::parse_rfc3339(first)
        })
        .unwrap_or(now);
    let timeline = domain::journeys::timeline(&core.db, tenant, &id, from, now, 24)
        .await
        .map_err(internal)?;
    let daily = now - from > 86_400_000;
    Ok(JourneyDetail {
        timeline: timeline
            .iter()
            .map(|b| Bar {
                label: convert::tick(b.start_ms, daily),
                good: b.matched,
                bad: b.unmatched,
            })
            .collect(),
        summary,
        contacts: contacts
            .into_iter()
            .map(|c| ContactView {
                key_value: c.key_value,
                executions: c.executions,
                unmatched: c.unmatched,
                last_event_id: c.last_event_id,
                last_at: c.last_at,
                pass_ids: c.pass_ids,
            })
            .collect(),
    })
}

/// Counts for the last hour (12 five-minute bars) or day (24 hourly bars).
#[server(prefix = "/console/fn", endpoint = "get_activity")]
pub async fn get_activity(day: bool) -> Result<Activity, ServerFnError> {
    use crate::ssr::{self, internal};
    let caller = ssr::require(domain::users::Role::Marketer).await?;
    let core = ssr::core()?;
    let (window, bars) = if day {
        (86_400_000, 24)
    } else {
        (3_600_000, 12)
    };
    let o = domain::stats::overview(
        &core.db,
        &caller.tenant.tenant_id,
        domain::clock::now_ms(),
        window,
        bars,
    )
    .await
    .map_err(internal)?;
    Ok(Activity {
        window: if day { "24 hours" } else { "hour" }.to_string(),
        accepted: o.accepted(),
        rejected: o.rejected(),
        inbound: o
            .inbound
            .iter()
            .map(|s| SourceStat {
                source: s.source.clone(),
                accepted: s.accepted,
                rejected: s.rejected,
            })
            .collect(),
        pass_updates: o.pass_updates,
        pushes_delivered: o.pushes_delivered,
        pushes_failed: o.pushes_failed,
        p95_processing_ms: o.p95_processing_ms,
        buckets: o
            .buckets
            .iter()
            .map(|b| BucketStat {
                label: convert::tick(b.start_ms, false),
                accepted: b.accepted,
                rejected: b.rejected,
                delivered: b.delivered,
                failed: b.failed,
            })
            .collect(),
    })
}

/// Builds a real listener request from the form, authenticates it as the integration
/// would (a short-lived ActitoListener.Write key, revoked right after; or an SFMC JWT
/// signed with the tenant's newest signing key) and sends it to this server over HTTP.
#[server(prefix = "/console/fn", endpoint = "send_test_event", input = Json)]
pub async fn send_test_event(
    input: TestEventInput,
) -> Result<Saved<TestEventResult>, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::test_events;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = caller.tenant.tenant_id.clone();
    let problem = |field: &str, message: &str| {
        Ok(Saved::Invalid(vec![FieldProblem {
            field: field.into(),
            message: message.into(),
        }]))
    };
    let email = input.email.trim().to_string();
    if !email.contains('@') {
        return problem("email", "give the email of a customer with a pass");
    }
    let data = match test_events::data(&input.data) {
        Ok(data) => data,
        Err(line) => return problem("data", &format!("“{line}” is not key=value")),
    };
    let test = test_events::TestEvent {
        tenant_id: &tenant,
        listeners: &format!("{}/api/{tenant}/webhooks/listeners", ssr::site()?.local_url),
        email: &email,
        data,
        message: &input.message,
    };
    let sent = match input.source.as_str() {
        "actito" => {
            let actor = domain::history::by_user(&caller.user.email);
            test_events::actito(&core, test, &actor).await
        }
        "sfmc" => match test_events::sfmc(&core, test).await {
            Some(sent) => sent,
            None => return problem("source", "add an SFMC signing key first"),
        },
        _ => return problem("source", "choose Actito or SFMC"),
    };
    sent.map(|s| {
        Saved::Done(TestEventResult {
            status: s.status,
            body: s.body,
            event_id: s.event_id,
        })
    })
    .map_err(internal)
}

#[server(prefix = "/console/fn", endpoint = "get_retention")]
pub async fn get_retention() -> Result<RetentionView, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::history::{self, Area};
    use domain::retention;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let days = retention::get_days(&core.db, tenant)
        .await
        .map_err(internal)?;
    let purged_events = retention::daily_counts(&core.db, tenant)
        .await
        .map_err(internal)?
        .iter()
        .map(|c| c.count)
        .sum();
    let history = history::list(&core.db, tenant, Some(Area::Retention), 10)
        .await
        .map_err(internal)?;
    Ok(RetentionView {
        days,
        purged_events,
        history: ssr::history_rows(history),
    })
}

#[server(prefix = "/console/fn", endpoint = "set_retention")]
pub async fn set_retention(days: i64) -> Result<Saved<i64>, ServerFnError> {
    use crate::ssr;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let actor = domain::history::by_user(&caller.user.email);
    ssr::saved(
        domain::retention::set_days(&core.db, &caller.tenant.tenant_id, days, &actor)
            .await
            .map(|()| days),
    )
}
