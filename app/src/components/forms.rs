//! Pieces of the console's forms: toasts, field errors, copy buttons, editable
//! key/value rows and the settings history.

use leptos::either::Either;
use leptos::prelude::*;

use crate::model::{problem_for, FieldProblem, HistoryRow};

/// Short confirmations shown in a corner and read out by screen readers.
#[derive(Clone, Copy)]
pub struct Toasts(RwSignal<Vec<(u64, String)>>);

pub fn provide_toasts() -> Toasts {
    let toasts = Toasts(RwSignal::new(Vec::new()));
    provide_context(toasts);
    toasts
}

/// Shows `message` for a few seconds.
pub fn toast(message: impl Into<String>) {
    let Some(Toasts(list)) = use_context::<Toasts>() else {
        return;
    };
    let id = list.with_untracked(|l| l.iter().map(|(id, _)| id + 1).max().unwrap_or(0));
    list.update(|l| l.push((id, message.into())));
    set_timeout(
        move || list.update(|l| l.retain(|(i, _)| *i != id)),
        std::time::Duration::from_secs(5),
    );
}

#[component]
pub fn ToastRegion(toasts: Toasts) -> impl IntoView {
    view! {
        <div class="toasts" role="status" aria-live="polite">
            <For each=move || toasts.0.get() key=|(id, _)| *id let:item>
                <div class="toast">{item.1}</div>
            </For>
        </div>
    }
}

/// The server's message for one field, below it.
#[component]
pub fn FieldNote(problems: RwSignal<Vec<FieldProblem>>, field: &'static str) -> impl IntoView {
    move || {
        problems.with(|p| problem_for(p, field)).map(|message| {
            view! { <p class="field-error" id=format!("{field}-error")>{message}</p> }
        })
    }
}

/// A problem with the whole form (not one field).
#[component]
pub fn FormNote(problems: RwSignal<Vec<FieldProblem>>) -> impl IntoView {
    move || {
        problems
            .with(|p| {
                p.iter()
                    .find(|p| p.field.is_empty())
                    .map(|p| p.message.clone())
            })
            .map(|message| view! { <div class="alert error" role="alert">{message}</div> })
    }
}

/// Puts the problems of a server function's answer into `problems`; `true` when saved.
pub fn take_outcome<T>(
    result: Result<crate::model::Saved<T>, ServerFnError>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> Option<T> {
    match result {
        Ok(crate::model::Saved::Done(value)) => {
            problems.set(Vec::new());
            Some(value)
        }
        Ok(crate::model::Saved::Invalid(list)) => {
            problems.set(list);
            None
        }
        Err(e) => {
            problems.set(vec![FieldProblem {
                field: String::new(),
                message: server_message(&e),
            }]);
            None
        }
    }
}

pub fn server_message(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        other => format!("The console could not reach the server ({other})."),
    }
}

/// A click handler that copies `text` to the clipboard, and whether it just did (for
/// two seconds, so the button can say so).
pub fn copier(text: String) -> (ReadSignal<bool>, impl Fn(leptos::ev::MouseEvent) + Clone) {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        let _ = window().navigator().clipboard().write_text(&text);
        copied.set(true);
        set_timeout(move || copied.set(false), std::time::Duration::from_secs(2));
    };
    (copied.read_only(), copy)
}

/// Read-only text with a button that copies it.
#[component]
pub fn CopyField(
    label: String,
    value: String,
    #[prop(optional)] testid: &'static str,
) -> impl IntoView {
    let (copied, copy) = copier(value.clone());
    view! {
        <div class="copy-field">
            <span class="copy-label">{label.clone()}</span>
            <code data-testid=testid>{value}</code>
            <button type="button" class="button small secondary" on:click=copy aria-label=format!("Copy {label}")>
                {move || if copied.get() { "Copied" } else { "Copy" }}
            </button>
        </div>
    }
}

/// One editable key/value row.
#[derive(Clone, Copy)]
pub struct PairRow {
    id: u64,
    pub left: RwSignal<String>,
    pub right: RwSignal<String>,
}

pub fn pair_rows(pairs: &[(String, String)]) -> RwSignal<Vec<PairRow>> {
    RwSignal::new(
        pairs
            .iter()
            .enumerate()
            .map(|(i, (l, r))| PairRow {
                id: i as u64,
                left: RwSignal::new(l.clone()),
                right: RwSignal::new(r.clone()),
            })
            .collect(),
    )
}

pub fn pairs_of(rows: RwSignal<Vec<PairRow>>) -> Vec<(String, String)> {
    rows.get_untracked()
        .iter()
        .map(|r| (r.left.get_untracked(), r.right.get_untracked()))
        .collect()
}

/// An editable table of key/value pairs with add and remove buttons.
#[component]
pub fn PairEditor(
    rows: RwSignal<Vec<PairRow>>,
    caption: &'static str,
    left: &'static str,
    right: &'static str,
    testid: &'static str,
) -> impl IntoView {
    let add = move |_| {
        rows.update(|r| {
            let id = r.iter().map(|x| x.id + 1).max().unwrap_or(0);
            r.push(PairRow {
                id,
                left: RwSignal::new(String::new()),
                right: RwSignal::new(String::new()),
            })
        })
    };
    view! {
        <table class="table pairs" data-testid=testid>
            <caption>{caption}</caption>
            <thead>
                <tr><th scope="col">{left}</th><th scope="col">{right}</th><th scope="col"><span class="sr-only">"Remove"</span></th></tr>
            </thead>
            <tbody>
                <For each=move || rows.get() key=|r| r.id let:row>
                    <tr>
                        <td><input aria-label=left value=row.left.get_untracked() bind:value=row.left/></td>
                        <td><input aria-label=right value=row.right.get_untracked() bind:value=row.right/></td>
                        <td class="num">
                            <button type="button" class="button small secondary"
                                aria-label=move || format!("Remove {}", row.left.get())
                                on:click=move |_| rows.update(|r| r.retain(|x| x.id != row.id))>
                                "Remove"
                            </button>
                        </td>
                    </tr>
                </For>
            </tbody>
        </table>
        <button type="button" class="button small secondary" on:click=add aria-label=format!("Add row: {caption}")>"Add row"</button>
    }
}

/// Who changed what, newest first.
#[component]
pub fn HistoryList(rows: Vec<HistoryRow>) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="history-title">
            <h2 id="history-title">"Settings history"</h2>
            {if rows.is_empty() {
                Either::Left(view! { <p class="muted">"No changes yet. Every change made here or through the API is listed, with who made it."</p> })
            } else {
                Either::Right(view! {
                    <ol class="history" data-testid="history">
                        {rows.into_iter().map(|row| view! {
                            <li>
                                <div class="history-head">
                                    <strong>{row.summary}</strong>
                                    <span class="muted">{format!("{} · {}", crate::components::time::short_time(&row.at), row.actor)}</span>
                                </div>
                                <ul class="changes">
                                    {row.changes.into_iter().map(|(field, before, after)| view! {
                                        <li>
                                            <code>{field}</code>": "
                                            <span class="before">{before.unwrap_or_else(|| "—".into())}</span>
                                            " → "
                                            <span class="after">{after.unwrap_or_else(|| "—".into())}</span>
                                        </li>
                                    }).collect_view()}
                                </ul>
                            </li>
                        }).collect_view()}
                    </ol>
                })
            }}
        </section>
    }
}
