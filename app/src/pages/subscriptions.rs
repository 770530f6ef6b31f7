//! Actito webhook subscriptions: list the entity's, create ours in one click, switch
//! them on and off, delete them.

use leptos::either::Either;
use leptos::prelude::*;

use crate::components::feedback::{EmptyState, TableSkeleton};
use crate::components::forms::{take_outcome, toast, FieldNote, FormNote};
use crate::model::{FieldProblem, SubscriptionList, SubscriptionRow};
use crate::server::{actito_subscriptions, ChangeSubscription, CreateSubscription};

/// The entity's subscriptions, loaded by the page itself: a resource created at the
/// top of the page hydrates in the same order it was rendered on the server.
pub fn load() -> Resource<Result<SubscriptionList, ServerFnError>> {
    Resource::new(|| (), |_| actito_subscriptions())
}

/// `changed` runs after each change in Actito (the page reloads its history).
#[component]
pub fn Subscriptions(
    data: Resource<Result<SubscriptionList, ServerFnError>>,
    changed: Callback<()>,
) -> impl IntoView {
    let create = ServerAction::<CreateSubscription>::new();
    let change = ServerAction::<ChangeSubscription>::new();
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    let row_problems = RwSignal::new(Vec::<FieldProblem>::new());
    Effect::new(move |_| {
        if let Some(result) = create.value().get() {
            if take_outcome(result, problems).is_some() {
                toast("Subscription created in Actito, with a new API key for it");
                changed.run(());
            }
        }
    });
    Effect::new(move |_| {
        if let Some(result) = change.value().get() {
            if take_outcome(result, row_problems).is_some() {
                toast("Subscription updated in Actito");
                changed.run(());
            } else {
                data.refetch();
            }
        }
    });
    view! {
        <section class="card" aria-labelledby="subscriptions-title">
            <h2 id="subscriptions-title">"Webhook subscriptions"</h2>
            <p class="muted">"What Actito pushes, and where. Subscriptions marked “This Passhook” call this tenant's listeners."</p>
            <FormNote problems=row_problems/>
            <Transition fallback=|| view! { <TableSkeleton/> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(list) => Either::Left(view! { <SubscriptionBody list create change problems/> }),
                        Err(error) => Either::Right(view! { <crate::components::feedback::ErrorNote error/> }),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn SubscriptionBody(
    list: SubscriptionList,
    create: ServerAction<CreateSubscription>,
    change: ServerAction<ChangeSubscription>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    if let Some(problem) = list.problem {
        return Either::Left(
            view! { <div class="alert error" role="alert" data-testid="subscriptions-problem">{problem}</div> },
        );
    }
    Either::Right(view! {
        {if list.items.is_empty() {
            Either::Left(view! {
                <EmptyState title="No subscription yet".to_string()
                    hint="Subscribe to profile updates below so changes in Actito reach the passes.".to_string()/>
            })
        } else {
            Either::Right(view! { <SubscriptionTable rows=list.items change/> })
        }}
        <CreateSubscriptionForm create problems suggested=list.suggested_fields/>
    })
}

#[component]
fn SubscriptionTable(
    rows: Vec<SubscriptionRow>,
    change: ServerAction<ChangeSubscription>,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="subscriptions">
                <thead><tr>
                    <th scope="col">"Event"</th><th scope="col">"Target"</th><th scope="col">"State"</th>
                    <th scope="col"><span class="sr-only">"Actions"</span></th>
                </tr></thead>
                <tbody>
                    {rows.into_iter().map(|s| {
                        let (toggle_id, delete_id) = (s.id.clone(), s.id.clone());
                        let active = s.active;
                        view! {
                            <tr data-subscription=s.id.clone()>
                                <td>
                                    <div>{s.event.clone()}</div>
                                    {(!s.fields.is_empty()).then(|| view! { <div class="muted small">{format!("Fields: {}", s.fields.join(", "))}</div> })}
                                </td>
                                <td>
                                    <code class="small">{s.target_url.clone()}</code>
                                    {s.ours.then(|| view! { <span class="status good">"This Passhook"</span> })}
                                </td>
                                <td>{if active { Either::Left(view! { <span class="status good">"Active"</span> }) } else { Either::Right(view! { <span class="status bad">"Inactive"</span> }) }}</td>
                                <td class="actions">
                                    <button type="button" class="button small secondary"
                                        aria-label=format!("{} subscription {}", if active { "Deactivate" } else { "Activate" }, s.id)
                                        on:click=move |_| { change.dispatch(ChangeSubscription { id: toggle_id.clone(), action: if active { "deactivate" } else { "activate" }.into() }); }>
                                        {if active { "Deactivate" } else { "Activate" }}
                                    </button>
                                    " "
                                    <button type="button" class="button small secondary" aria-label=format!("Delete subscription {}", s.id)
                                        on:click=move |_| { change.dispatch(ChangeSubscription { id: delete_id.clone(), action: "delete".into() }); }>
                                        "Delete"
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
fn CreateSubscriptionForm(
    create: ServerAction<CreateSubscription>,
    problems: RwSignal<Vec<FieldProblem>>,
    suggested: Vec<String>,
) -> impl IntoView {
    let kind = RwSignal::new("profile-UPDATE".to_string());
    let fields = RwSignal::new(suggested.join(", "));
    let custom_action = RwSignal::new(String::new());
    let pending = create.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateSubscription {
            kind: kind.get_untracked(),
            fields: fields.get_untracked(),
            custom_action: custom_action.get_untracked(),
        });
    };
    let for_action = move || kind.get() == "custom-action";
    view! {
        <form class="form inline-form" on:submit=submit novalidate>
            <h3>"Subscribe this Passhook"</h3>
            <FormNote problems/>
            <fieldset prop:disabled=move || pending.get()>
                <div class="field-row">
                    <div class="field">
                        <label for="subscription-kind">"Event"</label>
                        <select id="subscription-kind" bind:value=kind>
                            <option value="profile-UPDATE">"Profile updated"</option>
                            <option value="profile-CREATE">"Profile created"</option>
                            <option value="custom-action">"Custom action triggered"</option>
                        </select>
                        <FieldNote problems field="kind"/>
                    </div>
                    <div class="field grow" hidden=for_action>
                        <label for="subscription-fields">"Fields to watch"</label>
                        <input id="subscription-fields" value=suggested.join(", ") bind:value=fields placeholder="emailAddress, loyaltyTier"/>
                        <FieldNote problems field="fields"/>
                    </div>
                    <div class="field grow" hidden=move || !for_action()>
                        <label for="subscription-action">"Custom action id"</label>
                        <input id="subscription-action" bind:value=custom_action placeholder="4512"/>
                        <p class="hint">"Actito makes one subscription per custom action: the id shown with the custom action in Actito."</p>
                        <FieldNote problems field="customAction"/>
                    </div>
                </div>
                <p class="hint">"Passhook creates an API key with the ActitoListener.Write scope and gives it to Actito in the subscription's headers."</p>
                <button type="submit" class="button primary">{move || if pending.get() { "Subscribing…" } else { "Create subscription" }}</button>
            </fieldset>
        </form>
    }
}
