//! The frame around every signed-in page: navigation, tenant switcher, account.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

use crate::components::forms::{provide_toasts, ToastRegion};
use crate::components::live::provide_live;
use crate::model::{Role, SessionInfo};
use crate::server::{get_session_info, Logout, SwitchTenant};

/// The pages, and whether only admins may open them.
const NAV: [(&str, &str, bool); 8] = [
    ("/", "Dashboard", false),
    ("/passes", "Passes", false),
    ("/journeys", "Journeys", false),
    ("/integrations", "Integrations", true),
    ("/api-keys", "API keys", true),
    ("/people", "People", true),
    ("/audit", "Audit", false),
    ("/push-history", "Push history", false),
];

#[component]
pub fn Layout() -> impl IntoView {
    let info = Resource::new(|| (), |_| get_session_info());
    let toasts = provide_toasts();
    provide_live();
    view! {
        <a class="skip-link" href="#content">"Skip to content"</a>
        <div class="shell">
            <aside class="sidebar">
                <a class="brand" href="/">
                    <span class="brand-mark" aria-hidden="true">"P"</span>
                    <span>"Passhook"</span>
                </a>
                <nav aria-label="Main">
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            let admin = matches!(info.await, Ok(Some(i)) if i.role == Role::Admin);
                            view! { <NavList admin/> }
                        })}
                    </Suspense>
                </nav>
            </aside>
            <div class="main">
                <header class="topbar">
                    <Suspense fallback=|| view! { <span class="muted">"Loading…"</span> }>
                        {move || Suspend::new(async move {
                            match info.await {
                                Ok(Some(info)) => Either::Left(view! { <AccountBar info/> }),
                                _ => Either::Right(view! {
                                    <a class="button" href="/login">"Sign in"</a>
                                }),
                            }
                        })}
                    </Suspense>
                </header>
                <main id="content" class="content" tabindex="-1">
                    <Outlet/>
                </main>
                <ToastRegion toasts/>
            </div>
        </div>
    }
}

#[component]
fn NavList(admin: bool) -> impl IntoView {
    view! {
        <ul>
            {NAV
                .iter()
                .filter(|(_, _, admin_only)| admin || !admin_only)
                .map(|(href, label, _)| {
                    let exact = *href == "/";
                    view! {
                        <li>
                            <A href=*href exact=exact>
                                {*label}
                            </A>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}

#[component]
fn AccountBar(info: SessionInfo) -> impl IntoView {
    let switch = ServerAction::<SwitchTenant>::new();
    let logout = ServerAction::<Logout>::new();
    let several = info.tenants.len() > 1;
    let current = info.tenant_id.clone();
    view! {
        <div class="tenant">
            {if several {
                Either::Left(view! {
                    <ActionForm action=switch attr:class="tenant-switch">
                        <label for="tenant-select">"Tenant"</label>
                        <select id="tenant-select" name="tenant_id">
                            {info
                                .tenants
                                .iter()
                                .map(|t| {
                                    let selected = t.id == current;
                                    view! {
                                        <option value=t.id.clone() selected=selected>
                                            {format!("{} ({})", t.name, t.role.label())}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                        <button type="submit" class="button small secondary">"Switch"</button>
                    </ActionForm>
                })
            } else {
                Either::Right(view! {
                    <span class="tenant-name" data-testid="tenant-name">{info.tenant_name.clone()}</span>
                })
            }}
        </div>
        <div class="account">
            <span class="role-badge">{info.role.label()}</span>
            <a class="email" href="/account" data-testid="user-email">{info.email.clone()}</a>
            <ActionForm action=logout>
                <button type="submit" class="button small secondary">"Sign out"</button>
            </ActionForm>
        </div>
    }
}
