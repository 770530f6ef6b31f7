use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::server::{sso_available, Login};

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let sso = Resource::new(|| (), |_| sso_available());
    let sso_href = move || {
        let next = query.read().get("next").unwrap_or_default();
        format!(
            "/auth/sso/start?next={}",
            crate::pages::passes::urlencode(&next)
        )
    };
    let error = move || {
        match query.read().get("error").as_deref() {
        Some("sso-unknown") => Some("Your identity provider signed you in, but no Passhook account has that email. Ask an admin to add you.".to_string()),
        Some("sso-unavailable") => Some("Single sign-on is unavailable right now. Try again, or sign in with your password.".to_string()),
        Some("sso-failed") => Some("Single sign-on did not complete. Please try again.".to_string()),
        Some("locked") => Some(format!(
            "Too many failed sign-ins. Try again in {} minutes.",
            query.read().get("wait").unwrap_or_else(|| "15".into())
        )),
        Some(_) => Some("Wrong email or password.".to_string()),
        None => None,
    }
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
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        sso.await.unwrap_or(false).then(|| view! {
                            <div class="divider"><span>"or"</span></div>
                            <a class="button secondary wide" href=sso_href rel="external">"Sign in with SSO"</a>
                        })
                    })}
                </Suspense>
            </div>
        </main>
    }
}
