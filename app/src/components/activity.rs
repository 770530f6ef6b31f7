//! Pieces shared by the activity pages: filter menus, status tags, diffs, deliveries.

use leptos::either::Either;
use leptos::prelude::*;

use crate::components::cells::{ShortId, When};
use crate::components::time::exact_time;
use crate::model::{ChangeRow, DeliveryRow, Range};

/// A select of a GET filter form; the empty choice means "any".
#[component]
pub fn Filter(
    label: &'static str,
    name: &'static str,
    value: String,
    options: Vec<(String, String)>,
) -> impl IntoView {
    let id = format!("filter-{name}");
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <select id=id name=name>
                <option value="" selected=value.is_empty()>"Any"</option>
                {options
                    .into_iter()
                    .map(|(v, text)| {
                        let selected = value == v;
                        view! { <option value=v selected=selected>{text}</option> }
                    })
                    .collect_view()}
            </select>
        </div>
    }
}

#[component]
pub fn RangeSelect(value: Range) -> impl IntoView {
    view! {
        <div class="field">
            <label for="filter-range">"When"</label>
            <select id="filter-range" name="range">
                {Range::ALL
                    .into_iter()
                    .map(|r| view! { <option value=r.param() selected=r == value>{r.label()}</option> })
                    .collect_view()}
            </select>
        </div>
    }
}

#[component]
pub fn StatusTag(status: String) -> impl IntoView {
    let tone = match status.as_str() {
        "processed" | "delivered" | "done" => "ok",
        "rejected" | "failed" | "dead" => "bad",
        "retrying" | "pending" | "queued" | "waiting" | "running" | "accepted" => "wait",
        _ => "neutral",
    };
    view! { <span class=format!("status status-{tone}")>{status}</span> }
}

#[component]
pub fn ChangeList(changes: Vec<ChangeRow>) -> impl IntoView {
    view! {
        <ul class="diff">
            {changes
                .into_iter()
                .map(|c| {
                    view! {
                        <li>
                            <code>{c.key}</code>": "
                            {c.before.map(|b| view! { <del>{b}</del>" → " })}
                            {match c.after {
                                Some(a) => Either::Left(view! { <ins>{a}</ins> }),
                                None => Either::Right(view! { <em class="muted">"removed"</em> }),
                            }}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}

/// Deliveries with their attempts; each row expands to show every attempt.
#[component]
pub fn DeliveryTable(rows: Vec<DeliveryRow>) -> impl IntoView {
    if rows.is_empty() {
        return Either::Left(view! { <p class="muted">"No deliveries."</p> });
    }
    Either::Right(view! {
        <div class="table-wrap">
            <table class="table" data-testid="delivery-table">
                <thead>
                    <tr>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Channel and target"</th>
                        <th scope="col">"Pass"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col" class="num">"Attempts"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|d| view! { <DeliveryLine d/> }).collect_view()}
                </tbody>
            </table>
        </div>
    })
}

#[component]
fn DeliveryLine(d: DeliveryRow) -> impl IntoView {
    let latency = d
        .latency_ms()
        .map(|ms| format!(" · {ms} ms"))
        .unwrap_or_default();
    let attempts = d.attempts.clone();
    view! {
        <tr data-delivery-id=d.id.clone()>
            <td><When at=d.created_at.clone() seconds=true/></td>
            <td>
                <span class="tag nowrap">{d.channel.clone()}</span>
                <div class="muted small truncate" title=d.target.clone()>{d.target.clone()}</div>
            </td>
            <td>{d.pass_id.clone().map(|p| view! { <ShortId id=p.clone() href=format!("/passes/{p}")/> })}</td>
            <td>
                <StatusTag status=d.status.clone()/>
                {d.last_error.clone().map(|e| view! { <div class="muted small truncate" title=e.clone()>{e.clone()}</div> })}
            </td>
            <td class="num">
                // Each attempt, with its latency, opens as a panel.
                <details>
                    <summary class="nowrap">{attempts.len()}{latency}</summary>
                    <ol class="attempts">
                        {attempts.into_iter().map(|a| view! {
                            <li>
                                {exact_time(&a.at)}" · "
                                {a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "no answer".into())}
                                {format!(" · {} ms", a.latency_ms)}
                                {a.error.map(|e| format!(" · {e}"))}
                            </li>
                        }).collect_view()}
                    </ol>
                </details>
            </td>
        </tr>
    }
}
