//! Wallets: Apple and Google credentials, and each pass type's design with a live
//! preview of the front of the card.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::feedback::{EmptyState, ErrorNote, PageHeader, TableSkeleton};
use crate::components::forms::{take_outcome, toast, FieldNote, FormNote, HistoryList};
use crate::components::time::short_time;
use crate::model::{
    problem_for, CredentialRow, FieldProblem, FieldRow, PassTypeForm, WalletView, FIELD_SECTIONS,
};
use crate::server::{wallet_page, SaveAppleCredentials, SaveGoogleCredentials, SavePassType};

#[component]
pub fn WalletPage() -> impl IntoView {
    let save = ServerAction::<SavePassType>::new();
    let apple = ServerAction::<SaveAppleCredentials>::new();
    let google = ServerAction::<SaveGoogleCredentials>::new();
    let data = Resource::new(|| (), |_| wallet_page());
    // The pass type being edited; kept here so a save (which reloads the data) stays on it.
    let chosen = RwSignal::new(None::<String>);
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    let apple_problems = RwSignal::new(Vec::<FieldProblem>::new());
    let google_problems = RwSignal::new(Vec::<FieldProblem>::new());
    for (action, target, message) in [
        (
            save.value(),
            problems,
            "Pass type saved: passes pick up the new design at their next update",
        ),
        (apple.value(), apple_problems, "Apple credentials saved"),
        (
            google.value(),
            google_problems,
            "Google service account saved",
        ),
    ] {
        Effect::new(move |_| {
            if let Some(result) = action.get() {
                if take_outcome(result, target).is_some() {
                    toast(message);
                    data.refetch();
                }
            }
        });
    }
    view! {
        <Title text="Wallets"/>
        <PageHeader title="Wallets" subtitle="Credentials for Apple Wallet and Google Wallet, and how each pass type looks."/>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => Either::Left(view! { <WalletBody page chosen save apple google problems apple_problems google_problems/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn WalletBody(
    page: WalletView,
    chosen: RwSignal<Option<String>>,
    save: ServerAction<SavePassType>,
    apple: ServerAction<SaveAppleCredentials>,
    google: ServerAction<SaveGoogleCredentials>,
    problems: RwSignal<Vec<FieldProblem>>,
    apple_problems: RwSignal<Vec<FieldProblem>>,
    google_problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let types = page.pass_types;
    let first = types.first().map(|t| t.id.clone()).unwrap_or_default();
    let current = move || chosen.get().unwrap_or_else(|| first.clone());
    let tabs: Vec<(String, String)> = types
        .iter()
        .map(|t| (t.id.clone(), t.name.clone()))
        .collect();
    view! {
        <section class="card" aria-labelledby="types-title">
            <h2 id="types-title">"Pass types"</h2>
            {if types.is_empty() {
                Either::Left(view! { <EmptyState title="No pass type yet".to_string() hint="Create pass types with PUT /api/{tenantId}/pass-types/{id}; then edit their fields here.".to_string()/> })
            } else {
                Either::Right(view! {
                    <div class="tabs" role="tablist" aria-label="Pass types">
                        {tabs.into_iter().map(|(id, name)| {
                            let selected_id = id.clone();
                            let current = current.clone();
                            view! {
                                <button type="button" role="tab" class="tab"
                                    aria-selected=move || (current() == selected_id).to_string()
                                    on:click=move |_| { problems.set(Vec::new()); chosen.set(Some(id.clone())) }>{name}</button>
                            }
                        }).collect_view()}
                    </div>
                    {move || types.iter().find(|t| t.id == current()).cloned().map(|form| view! { <PassTypeEditor form save problems/> })}
                })
            }}
        </section>
        <div class="grid-2">
            <AppleCredentialsForm current=page.credentials.iter().find(|c| c.kind == "apple").cloned() apple problems=apple_problems/>
            <GoogleCredentialsForm current=page.credentials.iter().find(|c| c.kind == "google").cloned() google problems=google_problems/>
        </div>
        <HistoryList rows=page.history/>
    }
}

/// A field row with a signal per cell.
#[derive(Clone, Copy)]
struct FieldCells {
    id: u64,
    section: RwSignal<String>,
    key: RwSignal<String>,
    label: RwSignal<String>,
    value_from: RwSignal<String>,
    change_message: RwSignal<String>,
    notify: RwSignal<bool>,
    value: RwSignal<String>,
}

impl FieldCells {
    fn new(id: u64, row: &FieldRow) -> Self {
        FieldCells {
            id,
            section: RwSignal::new(row.section.clone()),
            key: RwSignal::new(row.key.clone()),
            label: RwSignal::new(row.label.clone()),
            value_from: RwSignal::new(row.value_from.clone()),
            change_message: RwSignal::new(row.change_message.clone()),
            notify: RwSignal::new(row.notify),
            value: RwSignal::new(row.value.clone()),
        }
    }

    fn row(&self) -> FieldRow {
        FieldRow {
            section: self.section.get(),
            key: self.key.get(),
            label: self.label.get(),
            value_from: self.value_from.get(),
            value: self.value.get(),
            change_message: self.change_message.get(),
            notify: self.notify.get(),
        }
    }
}

#[component]
fn PassTypeEditor(
    form: PassTypeForm,
    save: ServerAction<SavePassType>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let name = RwSignal::new(form.name.clone());
    let background = RwSignal::new(form.background_color.clone());
    let foreground = RwSignal::new(form.foreground_color.clone());
    let label_color = RwSignal::new(form.label_color.clone());
    let logo = RwSignal::new(form.logo_text.clone());
    let rows = RwSignal::new(
        form.fields
            .iter()
            .enumerate()
            .map(|(i, r)| FieldCells::new(i as u64, r))
            .collect::<Vec<_>>(),
    );
    let pending = save.pending();
    let base = form.clone();
    let current = move || PassTypeForm {
        name: name.get(),
        background_color: background.get(),
        foreground_color: foreground.get(),
        label_color: label_color.get(),
        logo_text: logo.get(),
        fields: rows.get().iter().map(FieldCells::row).collect(),
        ..base.clone()
    };
    let submit_form = current.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.dispatch(SavePassType {
            form: submit_form(),
        });
    };
    let add = move |_| {
        rows.update(|r| {
            let id = r.iter().map(|x| x.id + 1).max().unwrap_or(0);
            r.push(FieldCells::new(
                id,
                &FieldRow {
                    section: "secondary".into(),
                    ..Default::default()
                },
            ))
        })
    };
    let all_problems = move || {
        problems.with(|p| {
            p.iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
        })
    };
    view! {
        <form class="form" on:submit=submit novalidate>
            <FormNote problems/>
            {move || {
                let list = all_problems();
                (!list.is_empty()).then(|| view! {
                    <ul class="alert error" role="alert" data-testid="design-problems">
                        {list.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
                    </ul>
                })
            }}
            <fieldset prop:disabled=move || pending.get()>
                // The looks beside their preview; the field table below, full width.
                <div class="editor">
                    <div class="stack">
                        <div class="field-row">
                            <div class="field">
                                <label for="type-name">"Name"</label>
                                <input id="type-name" value=form.name.clone() bind:value=name/>
                                <FieldNote problems field="name"/>
                            </div>
                            {form.has_apple.then(|| view! {
                                <div class="field">
                                    <label for="type-logo">"Logo text"</label>
                                    <input id="type-logo" value=form.logo_text.clone() bind:value=logo/>
                                </div>
                            })}
                        </div>
                        {form.has_apple.then(|| view! {
                            <div class="field-row">
                                <ColorField id="type-background" label="Background" signal=background/>
                                <ColorField id="type-foreground" label="Text" signal=foreground/>
                                <ColorField id="type-label" label="Labels" signal=label_color/>
                            </div>
                        })}
                    </div>
                    <CardPreview form=Signal::derive(current)/>
                </div>
                <table class="table pairs design-fields" data-testid="design-fields">
                    <caption>"Fields: what each shows and whether a change notifies the customer"</caption>
                    <thead><tr>
                        <th scope="col">"Where"</th><th scope="col">"Key"</th><th scope="col">"Label"</th>
                        <th scope="col">"Pass data key"</th><th scope="col">"Change message (Apple, with %@)"</th>
                        <th scope="col">"Notify (Google)"</th><th scope="col"><span class="sr-only">"Remove"</span></th>
                    </tr></thead>
                    <tbody>
                        <For each=move || rows.get() key=|r| r.id let:cells>
                            <FieldLine cells rows problems/>
                        </For>
                    </tbody>
                </table>
                <div class="form-actions">
                    <button type="button" class="button small secondary" on:click=add>"Add field"</button>
                    <button type="submit" class="button primary">{move || if pending.get() { "Saving…" } else { "Save pass type" }}</button>
                </div>
            </fieldset>
        </form>
    }
}

#[component]
fn ColorField(id: &'static str, label: &'static str, signal: RwSignal<String>) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input id=id value=signal.get_untracked() bind:value=signal placeholder="rgb(79,70,229)"/>
        </div>
    }
}

#[component]
fn FieldLine(
    cells: FieldCells,
    rows: RwSignal<Vec<FieldCells>>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let key = cells.key.get_untracked();
    let label = move |what: &str| format!("{what} of field {}", cells.key.get());
    let is_google = move || cells.section.get() == "google";
    let message_problem = move || {
        problems.with(|p| {
            problem_for(
                p,
                &format!("apple.fields.{}.changeMessage", cells.key.get()),
            )
        })
    };
    view! {
        <tr data-field=key>
            <td>
                <select aria-label=move || label("Place") bind:value=cells.section>
                    {FIELD_SECTIONS.iter().map(|(value, text)| view! {
                        <option value=*value selected=cells.section.get_untracked() == *value>{*text}</option>
                    }).collect_view()}
                </select>
            </td>
            <td><input aria-label=move || label("Key") value=cells.key.get_untracked() bind:value=cells.key/></td>
            <td><input aria-label=move || label("Label") value=cells.label.get_untracked() bind:value=cells.label/></td>
            <td><input aria-label=move || label("Data key") value=cells.value_from.get_untracked() bind:value=cells.value_from/></td>
            <td>
                <input aria-label=move || label("Change message") value=cells.change_message.get_untracked()
                    bind:value=cells.change_message prop:disabled=is_google placeholder=move || if is_google() { "" } else { "You now have %@ points" }/>
                {move || message_problem().map(|m| view! { <p class="field-error">{m}</p> })}
            </td>
            <td class="num">
                <input type="checkbox" aria-label=move || label("Notify") prop:checked=cells.notify
                    prop:disabled=move || !is_google()
                    on:change=move |ev| cells.notify.set(event_target_checked(&ev))/>
            </td>
            <td class="num">
                <button type="button" class="button small secondary" aria-label=move || label("Remove")
                    on:click=move |_| rows.update(|r| r.retain(|x| x.id != cells.id))>"Remove"</button>
            </td>
        </tr>
    }
}

/// The front of the Apple card as the design and the newest pass would show it.
#[component]
fn CardPreview(form: Signal<PassTypeForm>) -> impl IntoView {
    let value = move |f: &FieldRow, sample: &[(String, String)]| {
        sample
            .iter()
            .find(|(k, _)| *k == f.value_from)
            .map(|(_, v)| v.clone())
            .or_else(|| Some(f.value.clone()).filter(|v| !v.is_empty()))
            .unwrap_or_else(|| format!("‹{}›", f.value_from))
    };
    let fields = move |section: &'static str| {
        let form = form.get();
        form.fields
            .iter()
            .filter(|f| f.section == section)
            .map(|f| (f.label.clone(), value(f, &form.sample)))
            .collect::<Vec<_>>()
    };
    let block = move |section: &'static str, class: &'static str| {
        view! {
            <div class=class>
                {move || fields(section).into_iter().map(|(label, value)| view! {
                    <div class="card-field"><span class="card-label">{label}</span><span class="card-value">{value}</span></div>
                }).collect_view()}
            </div>
        }
    };
    view! {
        <figure class="preview" aria-label="Card preview">
            <div class="wallet-card" data-testid="card-preview"
                style=move || {
                    let f = form.get();
                    format!(
                        "background:{};color:{};--card-label:{}",
                        css_color(&f.background_color, "#4f46e5"),
                        css_color(&f.foreground_color, "#fff"),
                        css_color(&f.label_color, "rgba(255,255,255,.75)")
                    )
                }>
                <div class="card-top">
                    <span class="card-logo">{move || form.get().logo_text}</span>
                    {block("header", "card-header")}
                </div>
                {block("primary", "card-primary")}
                <div class="card-row">
                    {block("secondary", "card-secondary")}
                    {block("auxiliary", "card-auxiliary")}
                </div>
            </div>
            <figcaption class="muted small">{move || {
                let f = form.get();
                if f.sample.is_empty() { "Sample values: no pass of this type yet.".to_string() } else { "Values from the newest pass of this type.".to_string() }
            }}</figcaption>
        </figure>
    }
}

/// A colour safe to put into a style attribute (`rgb(…)` or `#hex`), else `fallback`.
fn css_color(text: &str, fallback: &str) -> String {
    let ok = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "#(),. ".contains(c));
    if !text.trim().is_empty() && ok {
        text.to_string()
    } else {
        fallback.to_string()
    }
}

#[component]
fn Summary(current: Option<CredentialRow>) -> impl IntoView {
    match current {
        Some(c) => Either::Left(view! {
            <dl class="kv" data-testid=format!("{}-credentials", c.kind)>
                {c.details.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
                <div><dt>"Uploaded"</dt><dd>{short_time(&c.updated_at)}</dd></div>
            </dl>
        }),
        None => Either::Right(view! { <p class="muted">"Nothing uploaded yet."</p> }),
    }
}

#[component]
fn AppleCredentialsForm(
    current: Option<CredentialRow>,
    apple: ServerAction<SaveAppleCredentials>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let certificate = RwSignal::new(String::new());
    let key = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let wwdr = RwSignal::new(String::new());
    let pending = apple.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        apple.dispatch(SaveAppleCredentials {
            certificate_pem: certificate.get_untracked(),
            private_key_pem: key.get_untracked(),
            private_key_password: password.get_untracked(),
            wwdr_pem: wwdr.get_untracked(),
        });
    };
    view! {
        <section class="card" aria-labelledby="apple-title">
            <h2 id="apple-title">"Apple Wallet"</h2>
            <Summary current/>
            <form class="form inline-form" on:submit=submit novalidate>
                <h3>"Upload the Pass Type ID certificate"</h3>
                <FormNote problems/>
                <fieldset prop:disabled=move || pending.get()>
                    <div class="field">
                        <label for="apple-cert">"Certificate (PEM)"</label>
                        <textarea id="apple-cert" rows="3" bind:value=certificate placeholder="-----BEGIN CERTIFICATE-----"></textarea>
                        <FieldNote problems field="certificatePem"/>
                    </div>
                    <div class="field">
                        <label for="apple-key">"Private key (PEM)"</label>
                        <textarea id="apple-key" rows="3" bind:value=key placeholder="-----BEGIN PRIVATE KEY-----"></textarea>
                        <FieldNote problems field="privateKeyPem"/>
                    </div>
                    <div class="field">
                        <label for="apple-key-password">"Key password (if encrypted)"</label>
                        <input id="apple-key-password" type="password" autocomplete="off" bind:value=password/>
                    </div>
                    <div class="field">
                        <label for="apple-wwdr">"Apple WWDR intermediate (PEM)"</label>
                        <textarea id="apple-wwdr" rows="3" bind:value=wwdr></textarea>
                        <FieldNote problems field="wwdrPem"/>
                    </div>
                    <button type="submit" class="button primary">{move || if pending.get() { "Uploading…" } else { "Save Apple credentials" }}</button>
                </fieldset>
            </form>
        </section>
    }
}

#[component]
fn GoogleCredentialsForm(
    current: Option<CredentialRow>,
    google: ServerAction<SaveGoogleCredentials>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let account = RwSignal::new(String::new());
    let pending = google.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        google.dispatch(SaveGoogleCredentials {
            service_account: account.get_untracked(),
        });
    };
    view! {
        <section class="card" aria-labelledby="google-title">
            <h2 id="google-title">"Google Wallet"</h2>
            <Summary current/>
            <form class="form inline-form" on:submit=submit novalidate>
                <h3>"Upload the service account key"</h3>
                <FormNote problems/>
                <fieldset prop:disabled=move || pending.get()>
                    <div class="field">
                        <label for="google-account">"Service account key (JSON)"</label>
                        <textarea id="google-account" rows="6" bind:value=account placeholder="{\"type\": \"service_account\", …}"></textarea>
                        <FieldNote problems field="serviceAccount"/>
                    </div>
                    <button type="submit" class="button primary">{move || if pending.get() { "Uploading…" } else { "Save Google credentials" }}</button>
                </fieldset>
            </form>
        </section>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_colours_reach_the_style_attribute() {
        assert_eq!(super::css_color("rgb(1,2,3)", "x"), "rgb(1,2,3)");
        assert_eq!(super::css_color("#abc", "x"), "#abc");
        assert_eq!(super::css_color("red;background:url(x)", "x"), "x");
        assert_eq!(super::css_color("", "x"), "x");
    }
}
