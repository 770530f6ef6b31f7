//! Actito settings: host, entity, API key (write-only), mappings, callback hosts, and
//! a connection test.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::feedback::{ErrorNote, PageHeader, TableSkeleton};
use crate::components::forms::{
    pair_rows, pairs_of, server_message, take_outcome, toast, CopyField, FieldNote, FormNote,
    HistoryList, PairEditor,
};
use crate::model::{ActitoForm, ActitoInput, ActitoView, FieldProblem, Saved, SubscriptionList};
use crate::pages::subscriptions::{self, Subscriptions};
use crate::server::{actito_page, SaveActito, TestActito};

#[component]
pub fn ActitoPage() -> impl IntoView {
    let save = ServerAction::<SaveActito>::new();
    let data = Resource::new(|| (), |_| actito_page());
    let subscriptions = subscriptions::load();
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    Effect::new(move |_| {
        if let Some(result) = save.value().get() {
            if take_outcome(result, problems).is_some() {
                toast("Actito settings saved");
                data.refetch();
            }
        }
    });
    view! {
        <Title text="Actito"/>
        <PageHeader title="Actito" subtitle="How Passhook reaches your Actito entity, and how profile attributes map onto passes."/>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => Either::Left(view! { <ActitoBody page save problems subscriptions changed=Callback::new(move |()| { data.refetch(); subscriptions.refetch(); })/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn ActitoBody(
    page: ActitoView,
    save: ServerAction<SaveActito>,
    problems: RwSignal<Vec<FieldProblem>>,
    subscriptions: Resource<Result<SubscriptionList, ServerFnError>>,
    changed: Callback<()>,
) -> impl IntoView {
    let configured = page.form.configured;
    view! {
        <div class="grid-2 wide-left">
            <ActitoSettingsForm form=page.form save problems/>
            <section class="card" aria-labelledby="urls-title">
                <h2 id="urls-title">"Listener URLs"</h2>
                <p class="muted">"Give these to Actito (custom action and profile webhooks), with an API key that has the ActitoListener.Write scope."</p>
                {page.listener_urls.into_iter().map(|(label, url)| view! { <CopyField label value=url/> }).collect_view()}
            </section>
        </div>
        {configured.then(|| view! { <Subscriptions data=subscriptions changed/> })}
        <HistoryList rows=page.history/>
    }
}

#[component]
fn ActitoSettingsForm(
    form: ActitoForm,
    save: ServerAction<SaveActito>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let test = ServerAction::<TestActito>::new();
    let base = RwSignal::new(form.api_base_url.clone());
    let entity = RwSignal::new(form.entity.clone());
    let api_key = RwSignal::new(String::new());
    let table = RwSignal::new(form.profile_table_id.clone());
    let ids = pair_rows(&form.identifier_mapping);
    let data = pair_rows(&form.data_mapping);
    let hosts = RwSignal::new(form.callback_hosts.join("\n"));
    let input = move || ActitoInput {
        api_base_url: base.get_untracked(),
        entity: entity.get_untracked(),
        api_key: api_key.get_untracked(),
        profile_table_id: table.get_untracked(),
        identifier_mapping: pairs_of(ids),
        data_mapping: pairs_of(data),
        callback_hosts: hosts.get_untracked().lines().map(str::to_string).collect(),
    };
    let pending = save.pending();
    let testing = test.pending();
    // A test refused before any call (no key typed for a new host) marks the field.
    Effect::new(move |_| {
        if let Some(Ok(Saved::Invalid(found))) = test.value().get() {
            problems.set(found);
        }
    });
    let key_hint = form
        .api_key_hint
        .clone()
        .map(|h| {
            format!("Stored key {h}: leave empty to keep it (a new API host needs the key again)")
        })
        .unwrap_or_else(|| "The API key from Actito's integration settings".into());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.dispatch(SaveActito { form: input() });
    };
    view! {
        <section class="card" aria-labelledby="actito-form-title">
            <h2 id="actito-form-title">{if form.configured { "Connection" } else { "Connect Actito" }}</h2>
            <form class="form" on:submit=submit novalidate>
                <FormNote problems/>
                <fieldset prop:disabled=move || pending.get()>
                    <div class="field">
                        <label for="actito-base">"API host"</label>
                        <input id="actito-base" type="url" value=form.api_base_url.clone() bind:value=base/>
                        <p class="hint">"https://api.actito.com, or your Actito environment's API address."</p>
                        <FieldNote problems field="apiBaseUrl"/>
                    </div>
                    <div class="field-row">
                        <div class="field">
                            <label for="actito-entity">"Entity"</label>
                            <input id="actito-entity" value=form.entity.clone() bind:value=entity/>
                            <FieldNote problems field="entity"/>
                        </div>
                        <div class="field">
                            <label for="actito-table">"Profile table id"</label>
                            <input id="actito-table" value=form.profile_table_id.clone() bind:value=table/>
                            <FieldNote problems field="profileTableId"/>
                        </div>
                    </div>
                    <div class="field">
                        <label for="actito-key">"API key"</label>
                        <input id="actito-key" type="password" autocomplete="off" bind:value=api_key placeholder=if form.configured { "Stored key ••••: leave empty to keep it" } else { "Paste the API key" }/>
                        <p class="hint">{key_hint}</p>
                        <FieldNote problems field="apiKey"/>
                    </div>
                    <PairEditor rows=ids caption="Identifier mapping" left="Actito attribute" right="Pass identifier" testid="identifier-mapping"/>
                    <p class="hint">"The first attribute with a value that matches a pass wins."</p>
                    <FieldNote problems field="identifierMapping"/>
                    <PairEditor rows=data caption="Data mapping" left="Actito attribute" right="Pass data key" testid="data-mapping"/>
                    <p class="hint">"Profile attributes written into the pass's additional data."</p>
                    <FieldNote problems field="dataMapping"/>
                    <div class="field">
                        <label for="actito-hosts">"Callback hosts"</label>
                        <textarea id="actito-hosts" rows="3" bind:value=hosts></textarea>
                        <p class="hint">"One per line; *.domain allows its subdomains. Custom-action callbacks go only to these hosts."</p>
                        <FieldNote problems field="callbackHosts"/>
                    </div>
                    <div class="form-actions">
                        <button type="submit" class="button primary">
                            {move || if pending.get() { "Saving…" } else { "Save settings" }}
                        </button>
                        <button type="button" class="button secondary" prop:disabled=move || testing.get()
                            on:click=move |_| { test.dispatch(TestActito { form: input() }); }>
                            {move || if testing.get() { "Testing…" } else { "Test connection" }}
                        </button>
                    </div>
                </fieldset>
            </form>
            {move || test.value().get().map(|result| match result {
                Ok(Saved::Done(t)) if t.ok => Either::Left(view! { <div class="alert success" role="status" data-testid="connection-result">{t.message}</div> }),
                Ok(Saved::Done(t)) => Either::Right(view! { <div class="alert error" role="alert" data-testid="connection-result">{t.message}</div> }),
                Ok(Saved::Invalid(found)) => Either::Right(view! { <div class="alert error" role="alert" data-testid="connection-result">{connection_problem(&found)}</div> }),
                Err(e) => Either::Right(view! { <div class="alert error" role="alert" data-testid="connection-result">{server_message(&e)}</div> }),
            })}
        </section>
    }
}

/// A connection test refused before any call, in words: "Not tested: …".
fn connection_problem(found: &[FieldProblem]) -> String {
    let reasons: Vec<&str> = found.iter().map(|p| p.message.as_str()).collect();
    format!("Not tested: {}", reasons.join("; "))
}
