use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::server::Login;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let error = move || match query.read().get("error").as_deref() {
        Some("locked") => Some(format!(
            "Too many failed sign-ins. Try again in {} minutes.",
            query.read().get("wait").unwrap_or_else(|| "15".into())
        )),
        Some(_) => Some("Wrong email or password.".to_string()),
        None => None,
    };
    let next = move || query.read().get("next").unwrap_or_default();
    let pending = login.pending();
    view! {
        <Title text="Sign in"/>
        <main class="login-page">
            <div class="login-card">
                <div class="brand large">
                    <span class="brand-mark" aria-hidden="true">"P"</span>
                    <span>"Passhook"</span>
                </div>
                <h1>"Sign in to the console"</h1>
                <p class="muted">"Wallet passes kept in step with Actito and Salesforce Marketing Cloud."</p>
                {move || error().map(|e| view! { <div class="alert error" role="alert">{e}</div> })}
                <ActionForm action=login attr:class="form">
                    <input type="hidden" name="next" value=next/>
                    <div class="field">
                        <label for="email">"Email"</label>
                        <input id="email" name="email" type="email" autocomplete="username" required/>
                    </div>
                    <div class="field">
                        <label for="password">"Password"</label>
                        <input id="password" name="password" type="password" autocomplete="current-password" required/>
                    </div>
                    <button type="submit" class="button primary wide" prop:disabled=move || pending.get()>
                        {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
            </div>
        </main>
    }
}
