//! SFMC: signing keys (rotation), the installed package's URLs, and a tool that sends
//! a signed test `execute` to the listener.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::cells::When;
use crate::components::feedback::{EmptyState, ErrorNote, PageHeader, TableSkeleton};
use crate::components::forms::{
    pair_rows, pairs_of, take_outcome, toast, CopyField, FieldNote, FormNote, HistoryList,
    PairEditor,
};
use crate::model::{FieldProblem, SfmcView, SigningKeyRow, TestCall, TestCallResult};
use crate::pages::passes::PassTable;
use crate::server::{
    sfmc_page, AddSigningKey, RetireSigningKey, SaveCustomerKey, SaveWhenNoPass, TestExecute,
};

#[component]
pub fn SfmcPage() -> impl IntoView {
    let add = ServerAction::<AddSigningKey>::new();
    let retire = ServerAction::<RetireSigningKey>::new();
    let customer = ServerAction::<SaveCustomerKey>::new();
    let no_pass = ServerAction::<SaveWhenNoPass>::new();
    let data = Resource::new(|| (), |_| sfmc_page());
    let add_problems = RwSignal::new(Vec::<FieldProblem>::new());
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    Effect::new(move |_| {
        if let Some(result) = add.value().get() {
            if take_outcome(result, add_problems).is_some() {
                toast("Signing key added");
                data.refetch();
            }
        }
    });
    Effect::new(move |_| {
        if let Some(result) = retire.value().get() {
            if take_outcome(result, problems).is_some() {
                toast("Signing key retired");
                data.refetch();
            }
        }
    });
    Effect::new(move |_| {
        if let Some(result) = customer.value().get() {
            if take_outcome(result, problems).is_some() {
                toast("Customer key saved");
                data.refetch();
            }
        }
    });
    Effect::new(move |_| {
        if let Some(result) = no_pass.value().get() {
            if take_outcome(result, problems).is_some() {
                toast("Answer for contacts without a pass saved");
                data.refetch();
            }
        }
    });
    view! {
        <Title text="Salesforce Marketing Cloud"/>
        <PageHeader title="Salesforce Marketing Cloud" subtitle="The Journey Builder activity “Push update”: its signing keys, its URLs, and a test call."/>
        <FormNote problems/>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => Either::Left(view! { <SfmcBody page add retire customer no_pass add_problems/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn SfmcBody(
    page: SfmcView,
    add: ServerAction<AddSigningKey>,
    retire: ServerAction<RetireSigningKey>,
    customer: ServerAction<SaveCustomerKey>,
    no_pass: ServerAction<SaveWhenNoPass>,
    add_problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let key_ids: Vec<String> = page.keys.iter().map(|k| k.id.clone()).collect();
    view! {
        <div class="grid-2 wide-left">
            <section class="card" aria-labelledby="keys-title">
                <h2 id="keys-title">"Signing keys"</h2>
                <p class="muted">"Journey Builder signs each call with the installed package's JWT signing secret. Add the new key before retiring the old one: tokens signed by any key listed here are accepted."</p>
                {if page.keys.is_empty() {
                    Either::Left(view! { <EmptyState title="No signing key yet".to_string() hint="Add the JWT signing secret of your SFMC installed package to accept Journey Builder calls.".to_string()/> })
                } else {
                    Either::Right(view! { <SigningKeys keys=page.keys retire/> })
                }}
                <AddKeyForm add problems=add_problems/>
            </section>
            <section class="card" aria-labelledby="package-title">
                <h2 id="package-title">"Installed package"</h2>
                <p class="muted">"In SFMC, create a Journey Builder activity component with these URLs."</p>
                <CopyField label="config.json URL".to_string() value=page.config_url testid="config-url"/>
                <CopyField label="Activity page URL".to_string() value=page.activity_url/>
                <CopyField label="Execute URL".to_string() value=page.execute_url/>
                <CustomerKeyForm current=page.customer_key customer/>
            </section>
        </div>
        <WhenNoPassForm continue_journey=page.continue_without_pass no_pass/>
        <TestExecuteTool key_ids/>
        <HistoryList rows=page.history/>
    }
}

#[component]
fn SigningKeys(keys: Vec<SigningKeyRow>, retire: ServerAction<RetireSigningKey>) -> impl IntoView {
    let only_one = keys.len() == 1;
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="signing-keys">
                <thead><tr>
                    <th scope="col">"Key id"</th><th scope="col">"Added"</th><th scope="col">"Last verified"</th>
                    <th scope="col"><span class="sr-only">"Actions"</span></th>
                </tr></thead>
                <tbody>
                    {keys.into_iter().map(|k| {
                        let id = k.id.clone();
                        view! {
                            <tr>
                                <td><code class="key-id">{k.id.clone()}</code>
                                    {k.verified_last.then(|| view! { <div><span class="status good">"Verified the latest call"</span></div> })}
                                </td>
                                <td class="muted"><When at=k.created_at.clone()/></td>
                                <td class="muted">{match k.last_verified_at.clone() {
                                    Some(at) => Either::Left(view! { <When at/> }),
                                    None => Either::Right("Never"),
                                }}</td>
                                <td class="actions">
                                    <button type="button" class="button small secondary" aria-label=format!("Retire {}", k.id)
                                        title=if only_one { "Retiring the only key stops all Journey Builder calls" } else { "" }
                                        on:click=move |_| { retire.dispatch(RetireSigningKey { id: id.clone() }); }>
                                        "Retire"
                                    </button>
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
fn AddKeyForm(
    add: ServerAction<AddSigningKey>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let id = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let pending = add.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        add.dispatch(AddSigningKey {
            id: id.get_untracked(),
            secret: secret.get_untracked(),
        });
    };
    view! {
        <form class="form inline-form" on:submit=submit novalidate>
            <h3>"Add a key"</h3>
            <FormNote problems/>
            <fieldset prop:disabled=move || pending.get()>
                <div class="field-row">
                    <div class="field">
                        <label for="key-id">"Key id"</label>
                        <input id="key-id" bind:value=id placeholder="2026-11"/>
                        <FieldNote problems field="id"/>
                    </div>
                    <div class="field grow">
                        <label for="key-secret">"Signing secret (salt)"</label>
                        <input id="key-secret" type="password" autocomplete="off" bind:value=secret placeholder="0x… as SFMC shows it, or the raw text (16 bytes or more)"/>
                        <FieldNote problems field="secret"/>
                    </div>
                </div>
                <button type="submit" class="button primary">{move || if pending.get() { "Adding…" } else { "Add key" }}</button>
            </fieldset>
        </form>
    }
}

#[component]
fn CustomerKeyForm(
    current: Option<String>,
    customer: ServerAction<SaveCustomerKey>,
) -> impl IntoView {
    let value = RwSignal::new(current.unwrap_or_default());
    let pending = customer.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        customer.dispatch(SaveCustomerKey {
            customer_key: value.get_untracked(),
        });
    };
    view! {
        <form class="form inline-form" on:submit=submit>
            <div class="field">
                <label for="customer-key">"Package customer key (optional)"</label>
                <input id="customer-key" value=value.get_untracked() bind:value=value/>
                <p class="hint">"Written into config.json as the activity's customerKey."</p>
            </div>
            <button type="submit" class="button secondary" prop:disabled=move || pending.get()>"Save customer key"</button>
        </form>
    }
}

/// What Journey Builder is answered for a contact without a pass: Salesforce takes
/// the contact out of the journey on any 4xx.
#[component]
fn WhenNoPassForm(continue_journey: bool, no_pass: ServerAction<SaveWhenNoPass>) -> impl IntoView {
    let choice = RwSignal::new(continue_journey);
    let pending = no_pass.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        no_pass.dispatch(SaveWhenNoPass {
            continue_journey: choice.get_untracked(),
        });
    };
    view! {
        <section class="card" aria-labelledby="no-pass-title">
            <h2 id="no-pass-title">"When no pass matches"</h2>
            <form class="form" on:submit=submit>
                <fieldset class="choices">
                    <legend class="sr-only">"Answer to Journey Builder for a contact without a pass"</legend>
                    <label class="choice">
                        <input type="radio" name="when-no-pass" value="leave"
                            prop:checked=move || !choice.get() on:change=move |_| choice.set(false)/>
                        <span>"Answer 404: the contact leaves the journey"</span>
                    </label>
                    <label class="choice">
                        <input type="radio" name="when-no-pass" value="continue"
                            prop:checked=move || choice.get() on:change=move |_| choice.set(true)/>
                        <span>"Answer 200 with nothing scheduled: the contact continues"</span>
                    </label>
                </fieldset>
                <p class="hint">"Salesforce takes a contact out of the journey on any 4xx, so later steps (an email, an SMS) don't reach it. The audit shows each execute's outcome either way."</p>
                <button type="submit" class="button secondary" prop:disabled=move || pending.get()>"Save"</button>
            </form>
        </section>
    }
}

#[component]
fn TestExecuteTool(key_ids: Vec<String>) -> impl IntoView {
    let send = ServerAction::<TestExecute>::new();
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    let key_id = RwSignal::new(key_ids.first().cloned().unwrap_or_default());
    let pass_id = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let data = pair_rows(&[(String::new(), String::new())]);
    let result = RwSignal::new(None::<TestCallResult>);
    let pending = send.pending();
    Effect::new(move |_| {
        if let Some(outcome) = send.value().get() {
            result.set(take_outcome(outcome, problems));
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send.dispatch(TestExecute {
            call: TestCall {
                key_id: key_id.get_untracked(),
                pass_id: pass_id.get_untracked(),
                email: email.get_untracked(),
                additional_data: pairs_of(data),
                message: message.get_untracked(),
            },
        });
    };
    let no_keys = key_ids.is_empty();
    view! {
        <section class="card" aria-labelledby="test-title">
            <h2 id="test-title">"Send a test execute"</h2>
            <p class="muted">"Signs a Journey Builder execute call with the chosen key, sends it to this tenant's listener, and shows the answer and the pass once updated."</p>
            {no_keys.then(|| view! { <p class="alert">"Add a signing key first."</p> })}
            <form class="form" on:submit=submit novalidate>
                <FormNote problems/>
                <fieldset prop:disabled=move || pending.get() || no_keys>
                    <div class="field-row">
                        <div class="field">
                            <label for="test-key">"Signing key"</label>
                            <select id="test-key" bind:value=key_id>
                                {key_ids.into_iter().map(|id| view! { <option value=id.clone()>{id.clone()}</option> }).collect_view()}
                            </select>
                            <FieldNote problems field="key_id"/>
                        </div>
                        <div class="field">
                            <label for="test-pass">"Pass id"</label>
                            <input id="test-pass" bind:value=pass_id/>
                            <FieldNote problems field="pass_id"/>
                        </div>
                        <div class="field">
                            <label for="test-email">"or email"</label>
                            <input id="test-email" type="email" bind:value=email/>
                        </div>
                    </div>
                    <PairEditor rows=data caption="Additional data to write" left="Key" right="Value" testid="test-data"/>
                    <div class="field">
                        <label for="test-message">"Message (optional: notifies the customer)"</label>
                        <input id="test-message" bind:value=message/>
                    </div>
                    <button type="submit" class="button primary">{move || if pending.get() { "Sending…" } else { "Send test execute" }}</button>
                </fieldset>
            </form>
            {move || result.get().map(|r| view! { <TestResult r/> })}
        </section>
    }
}

#[component]
fn TestResult(r: TestCallResult) -> impl IntoView {
    let good = r.status == 200;
    view! {
        <div class="test-result" data-testid="test-result">
            <p>
                <span class=if good { "status good" } else { "status bad" } data-testid="test-status">{format!("HTTP {}", r.status)}</span>
                " "
                {match (good, r.applied) {
                    (true, true) => "The update was applied.",
                    (true, false) => "Accepted; the update is still queued.",
                    _ => "The listener refused the call.",
                }}
            </p>
            <pre class="code">{r.body}</pre>
            {(!r.passes.is_empty()).then(|| view! { <PassTable rows=r.passes compact=false/> })}
        </div>
    }
}
