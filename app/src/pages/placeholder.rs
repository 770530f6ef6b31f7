//! Sections whose features arrive in later releases: they say so plainly.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::feedback::{EmptyState, PageHeader};

#[component]
pub fn PlaceholderPage(kind: &'static str) -> impl IntoView {
    let (title, subtitle, empty, hint) = match kind {
        "audit" => (
            "Audit",
            "Every request the listeners received, accepted or rejected.",
            "No inbound events yet",
            "Events appear here as soon as Actito or SFMC call this tenant's listeners.",
        ),
        _ => (
            "Push history",
            "Every delivery to Apple Wallet, Google Wallet and Actito callbacks.",
            "No pushes yet",
            "Deliveries appear here once passes change and wallets are notified.",
        ),
    };
    view! {
        <Title text=title/>
        <PageHeader title subtitle/>
        <EmptyState title=empty.to_string() hint=hint.to_string()/>
    }
}
