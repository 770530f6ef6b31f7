use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::server::Login;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let failed = move || query.read().get("error").is_some();
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
                <Show when=failed>
                    <div class="alert error" role="alert">"Wrong email or password."</div>
                </Show>
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
