use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use leptos_router::hooks::use_query_map;

use crate::components::chart::StackChart;
use crate::components::feedback::{EmptyState, ErrorNote, PageHeader, TableSkeleton};
use crate::components::live::{use_live_refresh, LiveBadge};
use crate::model::{Activity, Bar, BucketStat, Dashboard};
use crate::pages::passes::PassTable;
use crate::server::{get_activity, get_dashboard};

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_dashboard());
    let query = use_query_map();
    let day = Memo::new(move |_| query.with(|q| q.get("window").as_deref() == Some("day")));
    let activity = Resource::new(move || day.get(), get_activity);
    use_live_refresh(|| true, move || activity.refetch());
    view! {
        <Title text="Dashboard"/>
        <PageHeader title="Dashboard" subtitle="This tenant's requests, updates and pushes, live; and its passes at a glance.">
            <LiveBadge/>
        </PageHeader>
        <nav class="tabs" aria-label="Window">
            <a href="/" class:active=move || !day.get() aria-current=move || (!day.get()).then_some("page")>"Last hour"</a>
            <a href="/?window=day" class:active=move || day.get() aria-current=move || day.get().then_some("page")>"Last 24 hours"</a>
        </nav>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match activity.await {
                    Ok(a) => Either::Left(view! { <ActivityBody a/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => Either::Left(view! { <DashboardBody d/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn DashboardBody(d: Dashboard) -> impl IntoView {
    let recent = d.recent.clone();
    view! {
        <section class="stats" aria-label="Key figures">
            <Stat label="Passes" value=d.passes testid="stat-passes"/>
            <Stat label="Pass types" value=d.pass_types.len() as i64 testid="stat-pass-types"/>
            <Stat label="Active API keys" value=d.active_keys testid="stat-keys"/>
        </section>
        <div class="grid-2">
            <section class="card">
                <h2>"Passes by type"</h2>
                <TypeChart types=d.pass_types/>
            </section>
            <section class="card">
                <h2>"Newest passes"</h2>
                {if recent.is_empty() {
                    Either::Left(view! {
                        <EmptyState
                            title="No passes yet".to_string()
                            hint="Create passes with POST /api/{tenantId}/passes.".to_string()
                        />
                    })
                } else {
                    Either::Right(view! { <PassTable rows=recent compact=true/> })
                }}
            </section>
        </div>
    }
}

#[component]
fn Stat(label: &'static str, value: i64, testid: &'static str) -> impl IntoView {
    view! {
        <div class="stat">
            <span class="stat-label">{label}</span>
            <span class="stat-value" data-testid=testid>{value}</span>
        </div>
    }
}

/// Horizontal bars drawn as inline SVG: no chart library, readable without JS.
#[component]
fn TypeChart(types: Vec<(String, i64)>) -> impl IntoView {
    if types.is_empty() {
        return Either::Left(view! { <p class="muted">"No passes yet."</p> });
    }
    let max = types.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1) as f64;
    let height = types.len() * 34;
    let summary = types
        .iter()
        .map(|(t, n)| format!("{t}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Either::Right(view! {
        <svg class="bar-chart" viewBox=format!("0 0 400 {height}") role="img" aria-label=format!("Passes by type: {summary}")>
            {types
                .into_iter()
                .enumerate()
                .map(|(i, (name, n))| {
                    let y = i * 34;
                    let width = 250.0 * n as f64 / max;
                    view! {
                        <text x="0" y=y + 21 class="bar-label">{name}</text>
                        <rect x="110" y=y + 6 width=format!("{width:.1}") height="22" rx="4" class="bar"/>
                        <text x=format!("{:.1}", 118.0 + width) y=y + 22 class="bar-value">{n}</text>
                    }
                })
                .collect_view()}
        </svg>
    })
}

#[component]
fn ActivityBody(a: Activity) -> impl IntoView {
    let p95 = a
        .p95_processing_ms
        .map_or_else(|| "—".to_string(), |ms| format!("{ms} ms"));
    let by_source = a
        .inbound
        .iter()
        .map(|s| {
            format!(
                "{}: {} accepted, {} rejected",
                s.source, s.accepted, s.rejected
            )
        })
        .collect::<Vec<_>>()
        .join(" · ");
    view! {
        <section class="stats" aria-label=format!("Activity in the last {}", a.window)>
            <Stat label="Requests accepted" value=a.accepted testid="stat-accepted"/>
            <Stat label="Requests rejected" value=a.rejected testid="stat-rejected"/>
            <Stat label="Pass updates" value=a.pass_updates testid="stat-pass-updates"/>
            <Stat label="Pushes delivered" value=a.pushes_delivered testid="stat-pushes-delivered"/>
            <Stat label="Pushes failed" value=a.pushes_failed testid="stat-pushes-failed"/>
            <div class="stat">
                <span class="stat-label">"p95 processing"</span>
                <span class="stat-value" data-testid="stat-p95">{p95}</span>
            </div>
        </section>
        <p class="muted" data-testid="by-source">{if by_source.is_empty() { "No requests in this window.".to_string() } else { by_source }}</p>
        <div class="grid-2 even">
            <section class="card">
                <h2>"Requests"</h2>
                <StackChart bars=bars(&a.buckets, |b| (b.accepted, b.rejected))
                    labels=("accepted", "rejected") title="Requests per interval"/>
            </section>
            <section class="card">
                <h2>"Deliveries"</h2>
                <StackChart bars=bars(&a.buckets, |b| (b.delivered, b.failed))
                    labels=("delivered", "failed") title="Deliveries per interval"/>
            </section>
        </div>
    }
}

fn bars(buckets: &[BucketStat], pick: fn(&BucketStat) -> (i64, i64)) -> Vec<Bar> {
    buckets
        .iter()
        .map(|b| {
            let (good, bad) = pick(b);
            Bar {
                label: b.label.clone(),
                good,
                bad,
            }
        })
        .collect()
}
