//! People of the tenant and their roles (admins only), and the account page where
//! anyone changes their password or signs out everywhere.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::feedback::{ErrorNote, PageHeader, TableSkeleton};
use crate::components::forms::{take_outcome, toast, CopyField, FieldNote, FormNote, HistoryList};
use crate::model::{FieldProblem, MemberRow, PeopleView, PersonAdded, Role};
use crate::server::{
    people_page, AddPerson, ChangePassword, SetPersonDisabled, SetPersonRole, SignOutEverywhere,
};

#[component]
pub fn PeoplePage() -> impl IntoView {
    let add = ServerAction::<AddPerson>::new();
    let role = ServerAction::<SetPersonRole>::new();
    let access = ServerAction::<SetPersonDisabled>::new();
    let data = Resource::new(|| (), |_| people_page());
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    let add_problems = RwSignal::new(Vec::<FieldProblem>::new());
    let added = RwSignal::new(None::<PersonAdded>);
    Effect::new(move |_| {
        if let Some(result) = add.value().get() {
            if let Some(person) = take_outcome(result, add_problems) {
                toast("Person added");
                added.set(Some(person));
                data.refetch();
            }
        }
    });
    for (value, message) in [
        (role.value(), "Role changed"),
        (access.value(), "Access changed"),
    ] {
        Effect::new(move |_| {
            if let Some(result) = value.get() {
                // A refused change (the last admin) is shown; the table reloads either way.
                if take_outcome(result, problems).is_some() {
                    toast(message);
                }
                data.refetch();
            }
        });
    }
    view! {
        <Title text="People"/>
        <PageHeader title="People" subtitle="Who can use this tenant's console. Admins configure integrations; marketers see passes, events and pushes, never secrets."/>
        <FormNote problems/>
        {move || added.get().map(|person| view! { <AddedPerson person added/> })}
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => Either::Left(view! { <PeopleBody page add role access add_problems/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn PeopleBody(
    page: PeopleView,
    add: ServerAction<AddPerson>,
    role: ServerAction<SetPersonRole>,
    access: ServerAction<SetPersonDisabled>,
    add_problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    view! {
        <div class="stack">
            <section class="card" aria-labelledby="people-title">
                <h2 id="people-title">"Members"</h2>
                <div class="table-wrap">
                    <table class="table" data-testid="people-table">
                        <thead><tr>
                            <th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Sign-in"</th>
                            <th scope="col">"Access"</th>
                        </tr></thead>
                        <tbody>
                            {page.members.into_iter().map(|m| view! { <MemberLine m role access/> }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </section>
            <AddPersonForm add sso=page.sso_configured problems=add_problems/>
        </div>
        <HistoryList rows=page.history/>
    }
}

#[component]
fn MemberLine(
    m: MemberRow,
    role: ServerAction<SetPersonRole>,
    access: ServerAction<SetPersonDisabled>,
) -> impl IntoView {
    let (role_id, access_id) = (m.user_id.clone(), m.user_id.clone());
    // Buttons rather than a select: a refused change leaves nothing half-chosen.
    // The accessible name starts with the visible text (WCAG 2.5.3, Label in Name).
    let (badge, other, other_value) = match m.role {
        Role::Admin => ("Admin", "marketer", "marketer"),
        Role::Marketer => ("Marketer", "admin", "admin"),
    };
    let disabled = m.disabled;
    view! {
        <tr data-email=m.email.clone()>
            <td>{m.email.clone()}{m.is_you.then(|| view! { <span class="muted">" (you)"</span> })}</td>
            <td>
                <span class="tag" data-testid="role">{badge}</span>
                " "
                <button type="button" class="button small secondary"
                    aria-label=format!("Make {other}: {}", m.email)
                    on:click=move |_| {
                        role.dispatch(SetPersonRole { user_id: role_id.clone(), role: other_value.into() });
                    }>
                    {format!("Make {other}")}
                </button>
            </td>
            <td class="muted">{m.sign_in}</td>
            <td>
                {if disabled { Either::Left(view! { <span class="status bad">"Disabled"</span> }) } else { Either::Right(view! { <span class="status good">"Active"</span> }) }}
                " "
                <button type="button" class="button small secondary"
                    aria-label=format!("{} {}", if disabled { "Enable" } else { "Disable" }, m.email)
                    on:click=move |_| { access.dispatch(SetPersonDisabled { user_id: access_id.clone(), disabled: !disabled }); }>
                    {if disabled { "Enable" } else { "Disable" }}
                </button>
            </td>
        </tr>
    }
}

/// What the admin does next: hand over a new account's set-up link (shown once), or
/// nothing for someone who already had an account.
#[component]
fn AddedPerson(person: PersonAdded, added: RwSignal<Option<PersonAdded>>) -> impl IntoView {
    let PersonAdded { email, setup_link } = person;
    view! {
        <section class="card reveal" aria-labelledby="added-title" data-testid="person-added">
            <h2 id="added-title">{format!("{email} was added")}</h2>
            {match setup_link {
                Some(link) => Either::Left(view! {
                    <p>"Send them this link: with it they choose their own password (it works once, for 7 days). Passhook cannot show it again."</p>
                    <CopyField label="Set-up link".to_string() value=link testid="setup-link"/>
                }),
                None => Either::Right(view! {
                    <p>"They already have a Passhook account: they sign in as before and find this tenant in their tenant menu. Their password and other tenants are unchanged."</p>
                }),
            }}
            <button type="button" class="button secondary" on:click=move |_| added.set(None)>"Done"</button>
        </section>
    }
}

#[component]
fn AddPersonForm(
    add: ServerAction<AddPerson>,
    sso: bool,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let role = RwSignal::new("marketer".to_string());
    let pending = add.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        add.dispatch(AddPerson {
            email: email.get_untracked(),
            role: role.get_untracked(),
        });
    };
    view! {
        <section class="card" aria-labelledby="add-person-title">
            <h2 id="add-person-title">"Add a person"</h2>
            <form class="form" on:submit=submit novalidate>
                <FormNote problems/>
                <fieldset prop:disabled=move || pending.get()>
                    <div class="field-row">
                        <div class="field grow">
                            <label for="person-email">"Email"</label>
                            <input id="person-email" type="email" bind:value=email/>
                            <FieldNote problems field="email"/>
                        </div>
                        <div class="field grow">
                            <label for="person-role">"Role"</label>
                            <select id="person-role" bind:value=role>
                                <option value="marketer">"Marketer: reads passes, events and pushes"</option>
                                <option value="admin">"Admin: also configures integrations and keys"</option>
                            </select>
                            <FieldNote problems field="role"/>
                        </div>
                    </div>
                    <p class="hint">{if sso {
                        "New people get a one-time link to choose their password, or sign in with SSO. Someone who already has an account just joins this tenant."
                    } else {
                        "New people get a one-time link to choose their password. Someone who already has an account just joins this tenant."
                    }}</p>
                    <button type="submit" class="button primary">{move || if pending.get() { "Adding…" } else { "Add person" }}</button>
                </fieldset>
            </form>
        </section>
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let pending = change.pending();
    Effect::new(move |_| {
        if let Some(result) = change.value().get() {
            if take_outcome(result, problems).is_some() {
                toast("Password changed; other sessions were signed out");
                current.set(String::new());
                new.set(String::new());
            }
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        change.dispatch(ChangePassword {
            current: current.get_untracked(),
            new: new.get_untracked(),
        });
    };
    view! {
        <Title text="Your account"/>
        <PageHeader title="Your account" subtitle="Your password and your sessions."/>
        <div class="grid-2">
            <section class="card" aria-labelledby="password-title">
                <h2 id="password-title">"Change password"</h2>
                <form class="form" on:submit=submit novalidate>
                    <FormNote problems/>
                    <fieldset prop:disabled=move || pending.get()>
                        <div class="field">
                            <label for="current-password">"Current password"</label>
                            <input id="current-password" type="password" autocomplete="current-password" bind:value=current/>
                            <FieldNote problems field="current"/>
                        </div>
                        <div class="field">
                            <label for="new-password">"New password"</label>
                            <input id="new-password" type="password" autocomplete="new-password" bind:value=new/>
                            <FieldNote problems field="new"/>
                        </div>
                        <button type="submit" class="button primary">{move || if pending.get() { "Saving…" } else { "Change password" }}</button>
                    </fieldset>
                </form>
            </section>
            <section class="card" aria-labelledby="sessions-title">
                <h2 id="sessions-title">"Sessions"</h2>
                <p class="muted">"Signed in on a computer you no longer use? End every session of your account, this one included."</p>
                <ActionForm action=everywhere>
                    <button type="submit" class="button secondary">"Sign out everywhere"</button>
                </ActionForm>
            </section>
        </div>
    }
}
