//! API keys: create one with chosen scopes (shown once), rotate, revoke.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::cells::When;
use crate::components::feedback::{EmptyState, ErrorNote, PageHeader, TableSkeleton};
use crate::components::forms::{
    server_message, take_outcome, toast, CopyField, FieldNote, FormNote, HistoryList,
};
use crate::components::time::short_time;
use crate::model::{ApiKeyRow, FieldProblem, KeyStatus, KeysPage, NewKey, ScopeChoice};
use crate::server::{key_page, CreateKey, RevokeKey, RotateKey};

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let create = ServerAction::<CreateKey>::new();
    let rotate = ServerAction::<RotateKey>::new();
    let revoke = ServerAction::<RevokeKey>::new();
    let data = Resource::new(|| (), |_| key_page());
    // The newest key in clear, until the admin dismisses it.
    let revealed = RwSignal::new(None::<NewKey>);
    // Outcomes are handled here, above the parts a reload re-renders.
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(result) = create.value().get() {
            if let Some(key) = take_outcome(result, problems) {
                toast(format!("Created API key “{}”", key.name));
                revealed.set(Some(key));
                data.refetch();
            }
        }
    });
    Effect::new(move |_| {
        if let Some(result) = rotate.value().get() {
            let rotate_problems = RwSignal::new(Vec::new());
            match take_outcome(result, rotate_problems) {
                Some(key) => {
                    toast(format!("Rotated “{}”: here is the new key", key.name));
                    revealed.set(Some(key));
                    data.refetch();
                }
                None => error.set(
                    rotate_problems
                        .get_untracked()
                        .first()
                        .map(|p| p.message.clone()),
                ),
            }
        }
    });
    Effect::new(move |_| match revoke.value().get() {
        Some(Ok(())) => {
            toast("Key revoked: it no longer works");
            data.refetch();
        }
        Some(Err(e)) => error.set(Some(server_message(&e))),
        None => {}
    });
    view! {
        <Title text="API keys"/>
        <PageHeader title="API keys" subtitle="Keys that let Actito and your systems call Passhook. Keys are stored hashed: a new key is shown once."/>
        {move || revealed.get().map(|key| view! { <RevealedKey key revealed/> })}
        {move || error.get().map(|e| view! { <div class="alert error" role="alert">{e}</div> })}
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => Either::Left(view! { <KeysBody page create rotate revoke problems/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn RevealedKey(key: NewKey, revealed: RwSignal<Option<NewKey>>) -> impl IntoView {
    view! {
        <section class="card reveal" aria-labelledby="reveal-title">
            <h2 id="reveal-title">{format!("Your new key “{}”", key.name)}</h2>
            <p>"Copy it now and keep it somewhere safe: Passhook stores only a hash and cannot show it again."</p>
            <CopyField label="API key".to_string() value=key.key testid="new-key"/>
            <button type="button" class="button secondary" on:click=move |_| revealed.set(None)>"I have copied it"</button>
        </section>
    }
}

#[component]
fn KeysBody(
    page: KeysPage,
    create: ServerAction<CreateKey>,
    rotate: ServerAction<RotateKey>,
    revoke: ServerAction<RevokeKey>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let KeysPage {
        keys,
        scopes,
        history,
    } = page;
    view! {
        <div class="stack">
            <section class="card" aria-labelledby="keys-title">
                <h2 id="keys-title">"Keys"</h2>
                {if keys.is_empty() {
                    Either::Left(view! {
                        <EmptyState
                            title="No API keys yet".to_string()
                            hint="Create a key with the form: give Actito one with ActitoListener.Write for its webhooks.".to_string()
                        />
                    })
                } else {
                    Either::Right(view! { <KeyTable keys rotate revoke/> })
                }}
            </section>
            <CreateKeyForm scopes create problems/>
        </div>
        <HistoryList rows=history/>
    }
}

#[component]
fn CreateKeyForm(
    scopes: Vec<ScopeChoice>,
    create: ServerAction<CreateKey>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let chosen = RwSignal::new(Vec::<String>::new());
    let pending = create.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateKey {
            name: name.get_untracked(),
            scopes: chosen.get_untracked(),
        });
    };
    view! {
        <section class="card" aria-labelledby="create-key-title">
            <h2 id="create-key-title">"Create a key"</h2>
            <form class="form" on:submit=submit>
                <FormNote problems/>
                <fieldset prop:disabled=move || pending.get()>
                    <div class="field">
                        <label for="key-name">"Name"</label>
                        <input id="key-name" bind:value=name placeholder="Actito production" required/>
                        <FieldNote problems field="name"/>
                    </div>
                    <fieldset class="scopes">
                        <legend>"Scopes"</legend>
                        {scopes.into_iter().map(|scope| {
                            let id = format!("scope-{}", scope.name.replace('.', "-"));
                            let value = scope.name.clone();
                            let toggle = move |ev: leptos::ev::Event| {
                                let on = event_target_checked(&ev);
                                let value = value.clone();
                                chosen.update(|c| {
                                    c.retain(|s| *s != value);
                                    if on { c.push(value) }
                                });
                            };
                            let checked_name = scope.name.clone();
                            view! {
                                <div class="check">
                                    <input type="checkbox" id=id.clone() on:change=toggle
                                        prop:checked=move || chosen.with(|c| c.contains(&checked_name))/>
                                    <label for=id>
                                        <span class="scope-name">{scope.name}</span>
                                        <span class="muted">{scope.description}</span>
                                    </label>
                                </div>
                            }
                        }).collect_view()}
                        <FieldNote problems field="scopes"/>
                    </fieldset>
                    <button type="submit" class="button primary">
                        {move || if pending.get() { "Creating…" } else { "Create key" }}
                    </button>
                </fieldset>
            </form>
        </section>
    }
}

fn status_cell(status: &KeyStatus) -> impl IntoView {
    match status {
        KeyStatus::Active => Either::Left(view! { <span class="status good">"Active"</span> }),
        KeyStatus::Expiring(end) => Either::Right(Either::Left(view! {
            <span class="status warn">{format!("Until {}", short_time(end))}</span>
        })),
        KeyStatus::Expired => Either::Right(Either::Right(Either::Left(view! {
            <span class="status bad">"Expired"</span>
        }))),
        KeyStatus::Revoked => Either::Right(Either::Right(Either::Right(view! {
            <span class="status bad">"Revoked"</span>
        }))),
    }
}

#[component]
fn KeyTable(
    keys: Vec<ApiKeyRow>,
    rotate: ServerAction<RotateKey>,
    revoke: ServerAction<RevokeKey>,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="key-table">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Scopes"</th>
                        <th scope="col">"Last used"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col"><span class="sr-only">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    {keys.into_iter().map(|k| {
                        let active = matches!(k.status, KeyStatus::Active);
                        view! {
                            <tr data-key=k.prefix.clone()>
                                <td>
                                    <div>{k.name.clone()}</div>
                                    <code class="muted">{format!("{}…", k.prefix)}</code>
                                    <div class="muted small">{format!(
                                        "Created {}{}",
                                        short_time(&k.created_at),
                                        k.created_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default()
                                    )}</div>
                                </td>
                                <td>{k.scopes.into_iter().map(|s| view! { <span class="tag">{s}</span> }).collect_view()}</td>
                                <td class="muted">{match k.last_used_at {
                                    Some(at) => Either::Left(view! {
                                        <When at/>
                                        {k.last_used_ip.map(|ip| view! { <div class="small">{format!("from {ip}")}</div> })}
                                    }),
                                    None => Either::Right("Never"),
                                }}</td>
                                <td>{status_cell(&k.status)}</td>
                                <td class="actions">
                                    {active.then(|| view! { <KeyActions id=k.id name=k.name rotate revoke/> })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn KeyActions(
    id: String,
    name: String,
    rotate: ServerAction<RotateKey>,
    revoke: ServerAction<RevokeKey>,
) -> impl IntoView {
    let grace = RwSignal::new("24".to_string());
    let confirming = RwSignal::new(false);
    let (rotate_id, revoke_id) = (id.clone(), id);
    let select_id = format!("grace-{rotate_id}");
    view! {
        <div class="row-actions">
            <label class="sr-only" for=select_id.clone()>{format!("Old key of {name} stays valid for")}</label>
            <select id=select_id bind:value=grace>
                <option value="0">"Old key stops now"</option>
                <option value="1">"Old key: 1 hour"</option>
                <option value="24" selected=true>"Old key: 24 hours"</option>
                <option value="168">"Old key: 7 days"</option>
            </select>
            <button type="button" class="button small secondary" aria-label=format!("Rotate {name}")
                on:click=move |_| {
                    rotate.dispatch(RotateKey {
                        id: rotate_id.clone(),
                        grace_hours: grace.get_untracked().parse().unwrap_or(24),
                    });
                }>"Rotate"</button>
            {move || if confirming.get() {
                let id = revoke_id.clone();
                Either::Left(view! {
                    <button type="button" class="button small danger"
                        on:click=move |_| { revoke.dispatch(RevokeKey { id: id.clone() }); confirming.set(false); }>
                        "Confirm revoke"
                    </button>
                    <button type="button" class="button small secondary" on:click=move |_| confirming.set(false)>"Cancel"</button>
                })
            } else {
                let label = format!("Revoke {name}");
                Either::Right(view! {
                    <button type="button" class="button small secondary" aria-label=label
                        on:click=move |_| confirming.set(true)>"Revoke"</button>
                })
            }}
        </div>
    }
}
