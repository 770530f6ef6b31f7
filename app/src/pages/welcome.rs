//! Where a newly added person chooses their own password, with the one-time link an
//! admin handed them. Nobody else ever sets it.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::forms::{FieldNote, FormNote};
use crate::model::{FieldProblem, Saved};
use crate::server::{setup_link_email, SetUpPassword};

#[component]
pub fn WelcomePage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let link = Resource::new(token, setup_link_email);
    view! {
        <Title text="Choose your password"/>
        <main class="login-page">
            <div class="login-card">
                <div class="brand large">
                    <span class="brand-mark" aria-hidden="true">"P"</span>
                    <span>"Passhook"</span>
                </div>
                <h1>"Choose your password"</h1>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        match link.await {
                            Ok(Some(email)) => Either::Left(view! { <SetUpForm email token=token()/> }),
                            _ => Either::Right(view! {
                                <div class="alert error" role="alert">
                                    "This link no longer works: it was used, it expired, or it was never valid. Ask your admin, or sign in."
                                </div>
                                <a class="button secondary wide" href="/login">"Sign in"</a>
                            }),
                        }
                    })}
                </Suspense>
            </div>
        </main>
    }
}

#[component]
fn SetUpForm(email: String, token: String) -> impl IntoView {
    let set_up = ServerAction::<SetUpPassword>::new();
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    let password = RwSignal::new(String::new());
    let pending = set_up.pending();
    Effect::new(move |_| {
        if let Some(Ok(Saved::Invalid(found))) = set_up.value().get() {
            problems.set(found);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        set_up.dispatch(SetUpPassword {
            token: token.clone(),
            password: password.get_untracked(),
        });
    };
    view! {
        <p class="muted">{format!("You were added to Passhook as {email}. Choose the password you will sign in with.")}</p>
        <form class="form" on:submit=submit novalidate>
            <FormNote problems/>
            <input type="text" name="username" autocomplete="username" value=email.clone() hidden/>
            <div class="field">
                <label for="new-password">"Password"</label>
                <input id="new-password" type="password" autocomplete="new-password" bind:value=password/>
                <p class="hint">"At least 10 characters."</p>
                <FieldNote problems field="password"/>
            </div>
            <button type="submit" class="button primary wide" prop:disabled=move || pending.get()>
                {move || if pending.get() { "Saving…" } else { "Set password and sign in" }}
            </button>
        </form>
    }
}
