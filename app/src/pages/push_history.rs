//! Push history: every delivery (Apple, Google, Actito callbacks) with its attempts,
//! filters kept in the URL, a CSV export of the filtered list, and bulk retry.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::components::activity::{DeliveryTable, Filter, RangeSelect};
use crate::components::feedback::{EmptyState, ErrorNote, PageHeader, TableSkeleton};
use crate::components::forms::{server_message, toast};
use crate::components::live::{use_live_refresh, LiveBadge};
use crate::model::{DeliveryList, DeliveryQuery, FilterChoices};
use crate::server::{filter_options, list_deliveries, RetryDeliveries};

fn query_of(map: &leptos_router::params::ParamsMap) -> DeliveryQuery {
    DeliveryQuery::from_params(|k| map.get(k).unwrap_or_default())
}

#[component]
pub fn PushHistoryPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(query_of));
    let list = Resource::new(move || query.get(), list_deliveries);
    let choices = Resource::new(|| (), |_| filter_options());
    let retry = ServerAction::<RetryDeliveries>::new();
    Effect::new(move |_| match retry.value().get() {
        Some(Ok(0)) => toast("No failed delivery matches these filters"),
        Some(Ok(n)) => {
            toast(format!("{n} deliveries queued again"));
            list.refetch();
        }
        Some(Err(e)) => toast(server_message(&e)),
        None => {}
    });
    use_live_refresh(
        move || query.with_untracked(|q| q.cursor.is_empty()),
        move || list.refetch(),
    );
    view! {
        <Title text="Push history"/>
        <PageHeader title="Push history" subtitle="Every push to Apple and Google wallets and every callback to Actito, with each attempt.">
            <LiveBadge/>
        </PageHeader>
        // Outside the list, which live events reload: a half-filled form stays as it is.
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let choices = choices.await.unwrap_or_default();
                view! { <DeliveryFilters query choices/> }
            })}
        </Suspense>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(list) => Either::Left(view! { <DeliveryPage list query=query.get_untracked() retry/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn DeliveryFilters(query: Memo<DeliveryQuery>, choices: FilterChoices) -> impl IntoView {
    let q = query.get_untracked();
    view! {
        <Form action="/push-history" attr:class="filters" attr:role="search" attr:aria-label="Filter deliveries">
            <Filter label="Channel" name="channel" value=q.channel.clone() options=choices.channels/>
            <Filter label="Status" name="status" value=q.status.clone() options=choices.delivery_statuses/>
            <RangeSelect value=q.range/>
            <div class="field grow">
                <label for="filter-q">"Search"</label>
                <input id="filter-q" type="search" name="q" value=q.q.clone() placeholder="Pass id, target or error"/>
            </div>
            <div class="filter-actions">
                <button type="submit" class="button primary">"Filter"</button>
                <a class="button secondary" href="/push-history">"Clear"</a>
            </div>
        </Form>
    }
}

#[component]
fn DeliveryPage(
    list: DeliveryList,
    query: DeliveryQuery,
    retry: ServerAction<RetryDeliveries>,
) -> impl IntoView {
    let export = format!("/console/export/deliveries.csv?{}", query.to_query(false));
    let can_retry = list.can_retry;
    let failed_shown = list.items.iter().any(|d| d.status == "failed");
    let toolbar = {
        let query = query.clone();
        view! {
            <div class="toolbar end">
                <a class="button secondary" href=export rel="external" download="deliveries.csv" data-testid="export-csv">"Export CSV"</a>
                {(can_retry && failed_shown).then(|| {
                    let query = query.clone();
                    view! {
                        <button type="button" class="button primary" data-testid="retry-failed"
                            disabled=move || retry.pending().get()
                            on:click=move |_| { retry.dispatch(RetryDeliveries { query: query.clone() }); }>
                            "Retry failed deliveries"
                        </button>
                    }
                })}
            </div>
        }
    };
    if list.items.is_empty() {
        let filtered = query.to_query(false) != DeliveryQuery::default().to_query(false);
        let hint = if filtered {
            "Widen the time range or clear the filters."
        } else {
            "Pushes and callbacks appear here as soon as a pass update sends them."
        };
        return Either::Left(view! {
            {toolbar}
            <EmptyState title="No deliveries".to_string() hint=hint.to_string()/>
        });
    }
    let next = list.next.clone().map(|cursor| {
        let q = DeliveryQuery {
            cursor,
            ..query.clone()
        };
        format!("/push-history?{}", q.to_query(true))
    });
    let first_page = query.cursor.is_empty();
    Either::Right(view! {
        {toolbar}
        <DeliveryTable rows=list.items/>
        <nav class="pagination" aria-label="Pages">
            {(!first_page).then(|| view! {
                <a class="button small secondary" href=format!("/push-history?{}", query.to_query(false))>"Newest"</a>
            })}
            <span></span>
            {next.map(|href| view! { <a class="button small secondary" href=href rel="next">"Older"</a> })}
        </nav>
    })
}
