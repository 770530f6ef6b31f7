//! The integrations overview: where each connection is configured.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::feedback::PageHeader;

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    view! {
        <Title text="Integrations"/>
        <PageHeader title="Integrations" subtitle="Connect the marketing platforms that drive your passes."/>
        <div class="grid-2">
            <a class="card link-card" href="/integrations/actito">
                <h2>"Actito"</h2>
                <p class="muted">"API credentials, profile mappings, callback hosts, and the custom action and profile webhooks."</p>
                <span class="link-arrow" aria-hidden="true">"→"</span>
            </a>
            <a class="card link-card" href="/integrations/sfmc">
                <h2>"Salesforce Marketing Cloud"</h2>
                <p class="muted">"Journey Builder signing keys, the installed package's URLs, and a test call."</p>
                <span class="link-arrow" aria-hidden="true">"→"</span>
            </a>
            <a class="card link-card" href="/integrations/wallet">
                <h2>"Apple Wallet and Google Wallet"</h2>
                <p class="muted">"Signing certificate, service account, and each pass type's fields, change messages and colours, with a preview."</p>
                <span class="link-arrow" aria-hidden="true">"→"</span>
            </a>
        </div>
    }
}
