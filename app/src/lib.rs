//! The Passhook console: pages, components and the server functions behind them.
//!
//! Rendered on the server (`ssr`) and hydrated in the browser (`hydrate`). Server
//! functions check the session, the tenant and the role before calling `domain`.

#![recursion_limit = "256"]

pub mod components;
pub mod model;
pub mod pages;
pub mod server;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

use crate::components::layout::Layout;
use crate::pages::{
    actito::ActitoPage,
    api_keys::ApiKeysPage,
    audit::{AuditPage, EventPage},
    dashboard::DashboardPage,
    integrations::IntegrationsPage,
    journeys::{JourneyPage, JourneysPage},
    login::LoginPage,
    not_found::NotFound,
    pass_detail::PassPage,
    passes::PassesPage,
    people::{AccountPage, PeoplePage},
    push_history::PushHistoryPage,
    sfmc::SfmcPage,
    wallet::WalletPage,
    welcome::WelcomePage,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Runs in the browser only: marks the page once the WASM bundle has hydrated it,
    // which end-to-end tests wait for (a broken optimiser shows up here).
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/passhook.css"/>
        <Title formatter=|page: String| format!("{page} · Passhook")/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=LoginPage/>
                <Route path=path!("/welcome") view=WelcomePage/>
                <ParentRoute path=path!("") view=Layout>
                    <Route path=path!("") view=DashboardPage/>
                    <Route path=path!("passes") view=PassesPage/>
                    <Route path=path!("integrations") view=IntegrationsPage/>
                    <Route path=path!("integrations/actito") view=ActitoPage/>
                    <Route path=path!("integrations/sfmc") view=SfmcPage/>
                    <Route path=path!("integrations/wallet") view=WalletPage/>
                    <Route path=path!("api-keys") view=ApiKeysPage/>
                    <Route path=path!("people") view=PeoplePage/>
                    <Route path=path!("account") view=AccountPage/>
                    <Route path=path!("passes/:id") view=PassPage/>
                    <Route path=path!("audit") view=AuditPage/>
                    <Route path=path!("audit/:id") view=EventPage/>
                    <Route path=path!("push-history") view=PushHistoryPage/>
                    <Route path=path!("journeys") view=JourneysPage/>
                    <Route path=path!("journeys/:id") view=JourneyPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
