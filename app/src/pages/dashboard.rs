use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::feedback::{EmptyState, ErrorNote, PageHeader, TableSkeleton};
use crate::model::Dashboard;
use crate::pages::passes::PassTable;
use crate::server::get_dashboard;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_dashboard());
    view! {
        <Title text="Dashboard"/>
        <PageHeader title="Dashboard" subtitle="This tenant's passes and integrations at a glance."/>
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
