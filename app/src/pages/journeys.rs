//! Journeys: SFMC journeys (and Actito custom actions) with what their executions
//! matched, changed and pushed; one journey's contacts, linked to events and passes.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Form, A};
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::components::activity::RangeSelect;
use crate::components::chart::StackChart;
use crate::components::feedback::{EmptyState, ErrorNote, PageHeader, TableSkeleton};
use crate::components::live::{use_live_refresh, LiveBadge};
use crate::components::time::short_time;
use crate::model::{ContactView, JourneyDetail, JourneyRow, JourneyVersionRow, Range};
use crate::pages::passes::urlencode;
use crate::server::{get_journey, list_journeys};

fn range() -> Memo<Range> {
    let query = use_query_map();
    Memo::new(move |_| Range::parse(&query.with(|q| q.get("range").unwrap_or_default())))
}

#[component]
pub fn JourneysPage() -> impl IntoView {
    let range = range();
    let list = Resource::new(move || range.get(), list_journeys);
    use_live_refresh(|| true, move || list.refetch());
    view! {
        <Title text="Journeys"/>
        <PageHeader title="Journeys" subtitle="What each SFMC journey and Actito custom action did to passes: executions, contacts without a pass, updates and pushes.">
            <LiveBadge/>
        </PageHeader>
        <Form action="/journeys" attr:class="filters" attr:aria-label="Time range">
            <RangeSelect value=range.get_untracked()/>
            <div class="filter-actions"><button type="submit" class="button primary">"Show"</button></div>
        </Form>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(rows) => Either::Left(view! { <JourneyTable rows range=range.get_untracked()/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn JourneyTable(rows: Vec<JourneyRow>, range: Range) -> impl IntoView {
    if rows.is_empty() {
        return Either::Left(view! {
            <EmptyState title="No journey activity".to_string()
                hint="Journey Builder executions and Actito custom actions appear here once they call Passhook.".to_string()/>
        });
    }
    let max = rows.iter().map(|r| r.executions).max().unwrap_or(1).max(1);
    let (journeys, actions): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.source == "sfmc");
    Either::Right(view! {
        <Group title="Journey Builder journeys" testid="journey-table" name_column="Journey (id)"
            rows=journeys max range
            none="No Journey Builder execution in this range."/>
        <Group title="Actito custom actions" testid="custom-action-table" name_column="Custom action"
            rows=actions max range
            none="No Actito custom action in this range."/>
    })
}

/// One source's rows: SFMC journeys or Actito custom actions, which are not journeys
/// but are counted the same way.
#[component]
fn Group(
    title: &'static str,
    testid: &'static str,
    name_column: &'static str,
    rows: Vec<JourneyRow>,
    max: i64,
    range: Range,
    none: &'static str,
) -> impl IntoView {
    let heading = format!("{testid}-title");
    let body = if rows.is_empty() {
        Either::Left(view! { <p class="muted">{none}</p> })
    } else {
        Either::Right(view! {
            <div class="table-wrap">
                <table class="table" data-testid=testid>
                    <thead>
                        <tr>
                            <th scope="col">{name_column}</th>
                            <th scope="col">"Executions"</th>
                            <th scope="col" class="num">"Matched"</th>
                            <th scope="col" class="num">"No pass"</th>
                            <th scope="col" class="num">"Refused"</th>
                            <th scope="col" class="num">"Updated"</th>
                            <th scope="col" class="num">"Pushed"</th>
                            <th scope="col" class="num">"Push failed"</th>
                            <th scope="col">"Last"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rows.into_iter().map(|r| view! { <GroupLine r max range/> }).collect_view()}
                    </tbody>
                </table>
            </div>
        })
    };
    view! {
        <section class="group" aria-labelledby=heading.clone()>
            <h2 id=heading.clone()>{title}</h2>
            {body}
        </section>
    }
}

#[component]
fn GroupLine(r: JourneyRow, max: i64, range: Range) -> impl IntoView {
    let href = format!(
        "/journeys/{}?range={}",
        urlencode(&r.journey_id),
        range.param()
    );
    // An Actito group is named by its kind of push: `custom-action.updatePass` reads
    // as the action's name.
    let name = r
        .journey_id
        .strip_prefix("custom-action.")
        .unwrap_or(&r.journey_id)
        .to_string();
    view! {
        <tr>
            <td>
                <A href=href attr:class="name-link" attr:title=r.journey_id.clone()><code>{name}</code></A>
                {versions_note(r.versions.len())}
            </td>
            <td><MatchBar matched=r.matched unmatched=r.unmatched refused=r.refused max/></td>
            <td class="num">{r.matched}</td>
            <td class="num">{r.unmatched}</td>
            <td class="num">{r.refused}</td>
            <td class="num">{r.passes_updated}</td>
            <td class="num">{r.pushes_sent}</td>
            <td class="num">{r.pushes_failed}</td>
            <td class="nowrap muted">{short_time(&r.last_at)}</td>
        </tr>
    }
}

/// Matched / unmatched / refused executions as one stacked bar.
#[component]
fn MatchBar(matched: i64, unmatched: i64, refused: i64, max: i64) -> impl IntoView {
    let width = |n: i64| 120.0 * n as f64 / max as f64;
    let (m, u, r) = (width(matched), width(unmatched), width(refused));
    let label = format!("{matched} matched, {unmatched} without a pass, {refused} refused");
    view! {
        <svg class="mini-bar" viewBox="0 0 120 12" width="120" height="12" role="img" aria-label=label>
            <rect x="0" width=format!("{m:.1}") height="12" class="seg-ok"/>
            <rect x=format!("{m:.1}") width=format!("{u:.1}") height="12" class="seg-warn"/>
            <rect x=format!("{:.1}", m + u) width=format!("{r:.1}") height="12" class="seg-bad"/>
        </svg>
    }
}

#[component]
pub fn JourneyPage() -> impl IntoView {
    let params = use_params_map();
    let range = range();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let detail = Resource::new(
        move || (id(), range.get()),
        |(id, range)| get_journey(id, range),
    );
    use_live_refresh(|| true, move || detail.refetch());
    view! {
        <Title text="Journey"/>
        <p class="breadcrumb"><A href="/journeys">"← Journeys"</A></p>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(detail) => Either::Left(view! { <JourneyBody id=id() detail range=range.get_untracked()/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

/// "2 versions" under a journey with more than one.
fn versions_note(count: usize) -> impl IntoView {
    (count > 1).then(|| view! { <span class="muted small">" · "{count}" versions"</span> })
}

#[component]
fn JourneyBody(id: String, detail: JourneyDetail, range: Range) -> impl IntoView {
    let JourneyDetail {
        summary,
        contacts,
        timeline,
    } = detail;
    let versions = summary
        .as_ref()
        .filter(|s| s.source == "sfmc")
        .map(|s| s.versions.clone());
    view! {
        <header class="page-header"><div><h1><code>{id}</code></h1></div></header>
        {summary.map(|s| view! {
            <section class="stats" aria-label="Journey figures">
                <Figure label="Executions" value=s.executions/>
                <Figure label="Matched" value=s.matched/>
                <Figure label="No pass (404)" value=s.unmatched/>
                <Figure label="Passes updated" value=s.passes_updated/>
                <Figure label="Pushes sent" value=s.pushes_sent/>
                <Figure label="Pushes failed" value=s.pushes_failed/>
            </section>
        })}
        <section class="card">
            <h2>"Executions over time"</h2>
            <StackChart bars=timeline labels=("matched a pass", "no pass or refused")
                title="Executions per interval" width=1000.0/>
        </section>
        {versions.map(|versions| view! {
            <section class="card">
                <h2>"Versions"</h2>
                <VersionTable versions range/>
            </section>
        })}
        <section class="card">
            <h2>"Contacts"</h2>
            <ContactTable contacts range/>
        </section>
    }
}

/// A journey's versions, with their executions and lifecycle calls (save, validate,
/// publish, stop); each leads to its requests in the audit.
#[component]
fn VersionTable(versions: Vec<JourneyVersionRow>, range: Range) -> impl IntoView {
    view! {
        <table class="table" data-testid="version-table">
            <thead>
                <tr>
                    <th scope="col">"Version (journeyId)"</th>
                    <th scope="col" class="num">"Executions"</th>
                    <th scope="col" class="num">"Matched"</th>
                    <th scope="col" class="num">"No pass"</th>
                    <th scope="col" class="num">"Refused"</th>
                    <th scope="col">"Lifecycle calls"</th>
                    <th scope="col">"Last"</th>
                </tr>
            </thead>
            <tbody>
                {versions.into_iter().map(|v| {
                    let href = format!("/audit?q={}&range={}", urlencode(&v.version_id), range.param());
                    let calls = match (&v.last_call, v.lifecycle_calls) {
                        (Some(last), n) => format!("{n}, last {last}"),
                        (None, _) => "none".to_string(),
                    };
                    view! {
                        <tr>
                            <td><A href=href><code>{v.version_id.clone()}</code></A></td>
                            <td class="num">{v.executions}</td>
                            <td class="num">{v.matched}</td>
                            <td class="num">{v.unmatched}</td>
                            <td class="num">{v.refused}</td>
                            <td>{calls}</td>
                            <td class="nowrap muted">{short_time(&v.last_at)}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn Figure(label: &'static str, value: i64) -> impl IntoView {
    view! {
        <div class="stat">
            <span class="stat-label">{label}</span>
            <span class="stat-value">{value}</span>
        </div>
    }
}

#[component]
fn ContactTable(contacts: Vec<ContactView>, range: Range) -> impl IntoView {
    if contacts.is_empty() {
        return Either::Left(view! { <p class="muted">"No executions in this range."</p> });
    }
    Either::Right(view! {
        <table class="table" data-testid="contact-table">
            <thead>
                <tr>
                    <th scope="col">"Contact (keyValue)"</th>
                    <th scope="col" class="num">"Executions"</th>
                    <th scope="col" class="num">"Without a pass"</th>
                    <th scope="col">"Passes"</th>
                    <th scope="col">"Last"</th>
                </tr>
            </thead>
            <tbody>
                {contacts.into_iter().map(|c| view! {
                    <tr>
                        <td>{contact_link(c.key_value.clone(), range)}</td>
                        <td class="num">{c.executions}</td>
                        <td class="num">{c.unmatched}</td>
                        <td>
                            {c.pass_ids.into_iter().map(|p| view! {
                                <A href=format!("/passes/{p}")><code>{p.clone()}</code></A>" "
                            }).collect_view()}
                        </td>
                        <td class="nowrap"><A href=format!("/audit/{}", c.last_event_id)>{short_time(&c.last_at)}</A></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    })
}

/// A contact leads to its requests in the audit (searched by its keyValue).
fn contact_link(key_value: String, range: Range) -> impl IntoView {
    if key_value.is_empty() {
        return Either::Left("—");
    }
    let href = format!("/audit?q={}&range={}", urlencode(&key_value), range.param());
    Either::Right(view! { <A href=href>{key_value}</A> })
}
