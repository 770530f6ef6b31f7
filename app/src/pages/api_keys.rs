use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::feedback::{EmptyState, ErrorNote, PageHeader, TableSkeleton};
use crate::model::ApiKeyRow;
use crate::server::list_api_keys;

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let keys = Resource::new(|| (), |_| list_api_keys());
    view! {
        <Title text="API keys"/>
        <PageHeader title="API keys" subtitle="Keys that let Actito and your systems call Passhook. Keys are stored hashed; only their first characters are shown."/>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match keys.await {
                    Ok(keys) if keys.is_empty() => Either::Left(Either::Left(view! {
                        <EmptyState
                            title="No API keys yet".to_string()
                            hint="Create one with `passhook api-key create --tenant <t> --name <n> --scope <s>`.".to_string()
                        />
                    })),
                    Ok(keys) => Either::Left(Either::Right(view! { <KeyTable keys/> })),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn KeyTable(keys: Vec<ApiKeyRow>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Key"</th>
                        <th scope="col">"Scopes"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Status"</th>
                    </tr>
                </thead>
                <tbody>
                    {keys
                        .into_iter()
                        .map(|k| view! {
                            <tr>
                                <td>{k.name}</td>
                                <td><code>{format!("{}…", k.prefix)}</code></td>
                                <td>{k.scopes.into_iter().map(|s| view! { <span class="tag">{s}</span> }).collect_view()}</td>
                                <td class="muted nowrap">{k.created_at.get(..10).unwrap_or_default().to_string()}</td>
                                <td>{if k.revoked {
                                    Either::Left(view! { <span class="status bad">"Revoked"</span> })
                                } else {
                                    Either::Right(view! { <span class="status good">"Active"</span> })
                                }}</td>
                            </tr>
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
