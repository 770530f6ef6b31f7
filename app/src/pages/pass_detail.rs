//! One pass: its content now, every version with what changed and why, where it is
//! installed, and what was sent to it.

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::components::activity::{ChangeList, DeliveryTable};
use crate::components::feedback::{EmptyState, ErrorNote, TableSkeleton};
use crate::components::live::use_live_refresh;
use crate::components::time::short_time;
use crate::model::{PassDetail, VersionRow};
use crate::server::get_pass;

#[component]
pub fn PassPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let pass = Resource::new(id, get_pass);
    use_live_refresh(|| true, move || pass.refetch());
    view! {
        <Title text="Pass"/>
        <p class="breadcrumb"><A href="/passes">"← Passes"</A></p>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match pass.await {
                    Ok(Some(detail)) => EitherOf3::A(view! { <PassBody detail/> }),
                    Ok(None) => EitherOf3::B(view! {
                        <EmptyState title="No such pass".to_string()
                            hint="It was deleted, belongs to another tenant, or the link is wrong.".to_string()/>
                    }),
                    Err(error) => EitherOf3::C(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn PassBody(detail: PassDetail) -> impl IntoView {
    let PassDetail {
        pass,
        created_at,
        versions,
        apple_devices,
        google_object,
        deliveries,
    } = detail;
    view! {
        <header class="page-header">
            <div>
                <h1><code>{pass.id.clone()}</code></h1>
                <p class="subtitle">
                    <span class="tag">{pass.pass_type.clone()}</span>
                    {format!(" · version {} · created {} · updated {}", pass.version, short_time(&created_at), short_time(&pass.updated_at))}
                </p>
            </div>
        </header>
        <div class="grid-2">
            <section class="card">
                <h2>"Identifiers"</h2>
                <dl class="kv">
                    {pass.identifiers.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
                </dl>
                <h2>"Data"</h2>
                <dl class="kv" data-testid="pass-data">
                    {pass.data.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
                </dl>
            </section>
            <section class="card">
                <h2>"Wallets"</h2>
                {if apple_devices.is_empty() && google_object.is_none() {
                    Either::Left(view! { <p class="muted">"Not added to a wallet yet."</p> })
                } else {
                    Either::Right(view! {
                        <ul class="plain" data-testid="wallets">
                            {apple_devices.into_iter().map(|d| view! {
                                <li>"Apple device "<code>{d.device_id}</code>
                                    {format!(" · has version {} · since {}", d.pushed_version, short_time(&d.registered_at))}</li>
                            }).collect_view()}
                            {google_object.map(|(object, version)| view! {
                                <li>"Google object "<code>{object}</code>{format!(" · has version {version}")}</li>
                            })}
                        </ul>
                    })
                }}
            </section>
        </div>
        <section class="card">
            <h2>"Versions"</h2>
            <VersionTable versions/>
        </section>
        <section class="card">
            <h2>"Deliveries"</h2>
            <DeliveryTable rows=deliveries/>
        </section>
    }
}

#[component]
fn VersionTable(versions: Vec<VersionRow>) -> impl IntoView {
    if versions.is_empty() {
        return Either::Left(view! { <p class="muted">"Unchanged since it was created."</p> });
    }
    Either::Right(view! {
        <table class="table" data-testid="versions">
            <thead>
                <tr>
                    <th scope="col" class="num">"Version"</th>
                    <th scope="col">"When"</th>
                    <th scope="col">"Changes"</th>
                    <th scope="col">"Caused by"</th>
                    <th scope="col">"Message"</th>
                </tr>
            </thead>
            <tbody>
                {versions.into_iter().map(|v| view! {
                    <tr>
                        <td class="num">{v.version}</td>
                        <td class="nowrap">{short_time(&v.at)}</td>
                        <td><ChangeList changes=v.changes/></td>
                        <td>
                            {v.cause}
                            {v.event_id.map(|e| view! { " · "<A href=format!("/audit/{e}")>"event"</A> })}
                            {v.journey_id.map(|j| view! { " · "<A href=format!("/journeys/{j}")>"journey"</A> })}
                        </td>
                        <td>
                            {v.message.unwrap_or_default()}
                            {v.significant.then(|| view! { " "<span class="tag">"notified"</span> })}
                        </td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    })
}
