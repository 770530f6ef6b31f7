//! The audit: every request the listeners received, live, with filters kept in the
//! URL; and one event's detail with its payload, outcome and replay.

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Form, A};
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::components::activity::{ChangeList, DeliveryTable, Filter, RangeSelect, StatusTag};
use crate::components::cells::When;
use crate::components::feedback::{EmptyState, ErrorNote, PageHeader, TableSkeleton};
use crate::components::forms::{server_message, take_outcome, toast, FieldNote};
use crate::components::live::{use_live_refresh, LiveBadge};
use crate::components::time::exact_time;
use crate::model::{
    Choices, EventList, EventQuery, EventRow, EventView, FieldProblem, Role, TestEventInput,
    TestEventResult, CAUSE_CODES, EVENT_KINDS,
};
use crate::server::{
    filter_options, get_event, get_session_info, list_events, ReplayEvent, SendTestEvent,
};

/// The filters in the URL.
fn query_of(map: &leptos_router::params::ParamsMap) -> EventQuery {
    EventQuery::from_params(|k| map.get(k).unwrap_or_default())
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(query_of));
    let events = Resource::new(move || query.get(), list_events);
    let session = Resource::new(|| (), |_| get_session_info());
    let choices = Resource::new(|| (), |_| filter_options());
    // New requests appear without a reload, on the first page only (a later page
    // would shift under the reader).
    use_live_refresh(
        move || query.with_untracked(|q| q.cursor.is_empty()),
        move || events.refetch(),
    );
    view! {
        <Title text="Audit"/>
        <PageHeader title="Audit" subtitle="Every request Actito and SFMC sent to this tenant's listeners: accepted or refused, and what came of it.">
            <LiveBadge/>
        </PageHeader>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let choices = choices.await.unwrap_or_default();
                view! { <EventFilters query statuses=choices.event_statuses/> }
            })}
        </Suspense>
        // Outside the list, which live events reload: a half-filled form stays as it is.
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let admin = matches!(session.await, Ok(Some(info)) if info.role == Role::Admin);
                admin.then(|| view! { <TestEventForm/> })
            })}
        </Suspense>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match events.await {
                    Ok(list) => Either::Left(view! { <EventTable list query=query.get_untracked()/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn EventFilters(query: Memo<EventQuery>, statuses: Choices) -> impl IntoView {
    let q = query.get_untracked();
    view! {
        <Form action="/audit" attr:class="filters" attr:role="search" attr:aria-label="Filter events">
            <Filter label="Source" name="source" value=q.source.clone()
                options=vec![("actito".into(), "Actito".into()), ("sfmc".into(), "SFMC".into())]/>
            <Filter label="Status" name="status" value=q.status.clone() options=statuses/>
            <Filter label="Kind" name="kind" value=q.kind.clone()
                options=EVENT_KINDS.iter().map(|k| (k.to_string(), k.to_string())).collect()/>
            <Filter label="Cause" name="reason" value=q.reason.clone()
                options=CAUSE_CODES.iter().map(|k| (k.to_string(), k.to_string())).collect()/>
            <RangeSelect value=q.range/>
            <div class="field grow">
                <label for="filter-q">"Search"</label>
                <input id="filter-q" type="search" name="q" value=q.q.clone()
                    placeholder="Event id, journey, contact, email, pass id…"/>
            </div>
            <div class="filter-actions">
                <button type="submit" class="button primary">"Filter"</button>
                <a class="button secondary" href="/audit">"Clear"</a>
            </div>
        </Form>
    }
}

/// Sends a real, authenticated listener request built from a few fields.
#[component]
fn TestEventForm() -> impl IntoView {
    let send = ServerAction::<SendTestEvent>::new();
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    let result = RwSignal::new(None::<TestEventResult>);
    let (source, email, data, message) = (
        RwSignal::new("actito".to_string()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    Effect::new(move |_| {
        if let Some(outcome) = send.value().get() {
            if let Some(sent) = take_outcome(outcome, problems) {
                toast(format!("Test event answered {}", sent.status));
                result.set(Some(sent));
            }
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send.dispatch(SendTestEvent {
            input: TestEventInput {
                source: source.get_untracked(),
                email: email.get_untracked(),
                data: data.get_untracked(),
                message: message.get_untracked(),
            },
        });
    };
    view! {
        <details class="card test-event">
            <summary><strong>"Send a test event"</strong>" — a real, signed request to this tenant's listener"</summary>
            <form class="form" on:submit=submit novalidate>
                <div class="field-row">
                    <div class="field">
                        <label for="test-source">"As"</label>
                        <select id="test-source" bind:value=source>
                            <option value="actito">"Actito custom action"</option>
                            <option value="sfmc">"SFMC journey execute"</option>
                        </select>
                        <FieldNote problems field="source"/>
                    </div>
                    <div class="field grow">
                        <label for="test-email">"Customer email"</label>
                        <input id="test-email" type="email" bind:value=email placeholder="john.smith@example.com"/>
                        <FieldNote problems field="email"/>
                    </div>
                </div>
                <div class="field-row">
                    <div class="field grow">
                        <label for="test-data">"Data (key=value, one per line)"</label>
                        <textarea id="test-data" rows="3" bind:value=data placeholder="points=120"></textarea>
                        <FieldNote problems field="data"/>
                    </div>
                    <div class="field grow">
                        <label for="test-message">"Message (optional: notifies the customer)"</label>
                        <input id="test-message" type="text" bind:value=message/>
                    </div>
                </div>
                <button type="submit" class="button primary" disabled=move || send.pending().get()>
                    {move || if send.pending().get() { "Sending…" } else { "Send test event" }}
                </button>
            </form>
            {move || result.get().map(|r| view! {
                <div class="test-result" data-testid="test-result">
                    <p>{format!("Answered {}", r.status)}
                        {r.event_id.map(|id| view! { " · "<A href=format!("/audit/{id}")>"see the event"</A> })}</p>
                    <pre class="code">{r.body}</pre>
                </div>
            })}
        </details>
    }
}

#[component]
fn EventTable(list: EventList, query: EventQuery) -> impl IntoView {
    if list.items.is_empty() {
        let filtered = query.to_query(false) != EventQuery::default().to_query(false);
        let (title, hint) = if filtered {
            (
                "No event matches",
                "Widen the time range or clear the filters.",
            )
        } else {
            (
                "No requests yet",
                "Requests from Actito and SFMC appear here the moment they arrive.",
            )
        };
        return Either::Left(view! { <EmptyState title=title.to_string() hint=hint.to_string()/> });
    }
    let next = list.next.clone().map(|cursor| {
        let q = EventQuery {
            cursor,
            ..query.clone()
        };
        format!("/audit?{}", q.to_query(true))
    });
    let first_page = query.cursor.is_empty();
    Either::Right(view! {
        <div class="table-wrap">
            <table class="table" data-testid="event-table">
                <caption class="sr-only">"Inbound requests, newest first"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Received"</th>
                        <th scope="col">"Source"</th>
                        <th scope="col">"Kind"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Cause"</th>
                        <th scope="col">"Journey / contact"</th>
                        <th scope="col" class="num">"Items"</th>
                    </tr>
                </thead>
                <tbody>
                    {list.items.into_iter().map(|e| view! { <EventLine e/> }).collect_view()}
                </tbody>
            </table>
        </div>
        <nav class="pagination" aria-label="Pages">
            {(!first_page).then(|| view! {
                <a class="button small secondary" href=format!("/audit?{}", query.to_query(false))>"Newest"</a>
            })}
            <span></span>
            {next.map(|href| view! { <a class="button small secondary" href=href rel="next">"Older"</a> })}
        </nav>
    })
}

#[component]
fn EventLine(e: EventRow) -> impl IntoView {
    let href = format!("/audit/{}", e.id);
    let journey = match (&e.journey_id, &e.key_value) {
        (Some(j), Some(k)) => format!("{j} · {k}"),
        (Some(j), None) => j.clone(),
        (None, Some(k)) => k.clone(),
        (None, None) => String::new(),
    };
    view! {
        <tr class="fresh" data-event-id=e.id.clone()>
            <td><A href=href><When at=e.received_at.clone() seconds=true/></A></td>
            <td><span class="tag">{e.source.clone()}</span></td>
            <td><code class="nowrap">{e.kind.clone()}</code></td>
            <td><StatusTag status=e.status.clone()/></td>
            <td title=e.detail.clone().unwrap_or_default()>
                {e.reason.clone().map(|r| view! { <code class="cause">{r}</code> })}
            </td>
            <td class="muted">{journey}</td>
            <td class="num">{e.items}</td>
        </tr>
    }
}

#[component]
pub fn EventPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let event = Resource::new(id, get_event);
    let replay = ServerAction::<ReplayEvent>::new();
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| match replay.value().get() {
        Some(Ok(new_id)) => {
            toast("Replayed: a new event runs the same work");
            navigate(&format!("/audit/{new_id}"), Default::default());
        }
        Some(Err(e)) => toast(server_message(&e)),
        None => {}
    });
    use_live_refresh(|| true, move || event.refetch());
    view! {
        <Title text="Event"/>
        <p class="breadcrumb"><A href="/audit">"← Audit"</A></p>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match event.await {
                    Ok(Some(view)) => EitherOf3::A(view! { <EventBody view replay/> }),
                    Ok(None) => EitherOf3::B(view! {
                        <EmptyState title="No such event".to_string()
                            hint="It belongs to another tenant, or the link is wrong.".to_string()/>
                    }),
                    Err(error) => EitherOf3::C(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn EventBody(view: EventView, replay: ServerAction<ReplayEvent>) -> impl IntoView {
    let EventView {
        event,
        body,
        headers,
        response,
        authentication,
        replay_of,
        replays,
        pass_updates,
        jobs,
        deliveries,
        can_replay,
    } = view;
    let id = event.id.clone();
    view! {
        <header class="page-header">
            <div>
                <h1>{format!("{} · {}", event.source, event.kind)}</h1>
                <p class="subtitle"><code data-testid="event-id">{event.id.clone()}</code></p>
            </div>
            {can_replay.then(|| {
                let id = id.clone();
                view! {
                    <button type="button" class="button primary" data-testid="replay"
                        disabled=move || replay.pending().get()
                        on:click=move |_| { replay.dispatch(ReplayEvent { id: id.clone() }); }>
                        {move || if replay.pending().get() { "Replaying…" } else { "Replay" }}
                    </button>
                }
            })}
        </header>
        <section class="card">
            <dl class="facts">
                <div><dt>"Received"</dt><dd>{exact_time(&event.received_at)}</dd></div>
                <div><dt>"Status"</dt><dd><StatusTag status=event.status.clone()/></dd></div>
                <div><dt>"Authentication"</dt><dd data-testid="authentication">{authentication}</dd></div>
                {event.reason.clone().map(|r| view! {
                    <div><dt>"Cause"</dt><dd><code class="cause" data-testid="cause">{r}</code>" "{event.detail.clone().unwrap_or_default()}</dd></div>
                })}
                {event.journey_id.clone().map(|j| view! {
                    <div><dt>"Journey"</dt><dd><A href=format!("/journeys/{j}")>{j.clone()}</A></dd></div>
                })}
                {event.key_value.clone().map(|k| view! { <div><dt>"Contact"</dt><dd>{k}</dd></div> })}
                <div><dt>"Items"</dt><dd>{event.items}</dd></div>
                {replay_of.map(|o| view! {
                    <div><dt>"Replay of"</dt><dd><A href=format!("/audit/{o}") attr:data-testid="replay-of">{o.clone()}</A></dd></div>
                })}
                {(!replays.is_empty()).then(|| view! {
                    <div><dt>"Replayed as"</dt><dd data-testid="replays">
                        {replays.into_iter().map(|r| view! { <A href=format!("/audit/{r}")>{r.clone()}</A>" " }).collect_view()}
                    </dd></div>
                })}
            </dl>
        </section>
        <div class="grid-2 wide-left">
            <section class="card">
                <h2>"Payload"</h2>
                {match body {
                    Some(body) => Either::Left(view! { <pre class="code" data-testid="payload">{body}</pre> }),
                    None => Either::Right(view! {
                        <p class="muted">"Not stored: the request was not authenticated, or it is older than the retention period."</p>
                    }),
                }}
                {response.map(|r| view! { <h3>"Answer"</h3><pre class="code">{r}</pre> })}
            </section>
            <section class="card">
                <h2>"Headers"</h2>
                <dl class="kv" data-testid="headers">
                    {headers.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
                </dl>
                <h2>"Jobs"</h2>
                {if jobs.is_empty() {
                    Either::Left(view! { <p class="muted">"None."</p> })
                } else {
                    Either::Right(view! {
                        <ul class="plain">
                            {jobs.into_iter().map(|j| view! {
                                <li><code>{j.kind}</code>" "<StatusTag status=j.status/>
                                    {format!(" · {} attempt(s)", j.attempts)}
                                    {j.last_error.map(|e| view! { <span class="muted">{format!(" · {e}")}</span> })}
                                </li>
                            }).collect_view()}
                        </ul>
                    })
                }}
            </section>
        </div>
        <section class="card">
            <h2>"Pass updates"</h2>
            {if pass_updates.is_empty() {
                Either::Left(view! { <p class="muted">"No pass changed because of this event."</p> })
            } else {
                Either::Right(view! {
                    <table class="table" data-testid="pass-updates">
                        <thead><tr><th scope="col">"Pass"</th><th scope="col" class="num">"Version"</th><th scope="col">"Changes"</th><th scope="col">"Notified"</th></tr></thead>
                        <tbody>
                            {pass_updates.into_iter().map(|u| view! {
                                <tr>
                                    <td><A href=format!("/passes/{}", u.pass_id)><code>{u.pass_id.clone()}</code></A></td>
                                    <td class="num">{u.version}</td>
                                    <td><ChangeList changes=u.changes/></td>
                                    <td>{if u.significant { "Yes" } else { "No" }}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                })
            }}
        </section>
        <section class="card">
            <h2>"Deliveries"</h2>
            <DeliveryTable rows=deliveries/>
        </section>
    }
}
