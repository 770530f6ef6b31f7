//! Small building blocks every page uses: headers, empty states, loading and errors.

use leptos::prelude::*;

#[component]
pub fn PageHeader(
    title: &'static str,
    subtitle: &'static str,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="page-header">
            <div>
                <h1>{title}</h1>
                <p class="subtitle">{subtitle}</p>
            </div>
            <div class="page-actions">{children.map(|c| c())}</div>
        </div>
    }
}

#[component]
pub fn EmptyState(title: String, hint: String) -> impl IntoView {
    view! {
        <div class="empty-state" role="status">
            <svg aria-hidden="true" viewBox="0 0 24 24" width="40" height="40">
                <rect x="3" y="5" width="18" height="14" rx="3" fill="none" stroke="currentColor" stroke-width="1.5"/>
                <path d="M3 10h18" stroke="currentColor" stroke-width="1.5"/>
            </svg>
            <h2>{title}</h2>
            <p>{hint}</p>
        </div>
    }
}

/// Placeholder rows while a table loads.
#[component]
pub fn TableSkeleton() -> impl IntoView {
    view! {
        <div class="skeleton" aria-busy="true" aria-label="Loading">
            {(0..5).map(|_| view! { <div class="skeleton-row"></div> }).collect_view()}
        </div>
    }
}

#[component]
pub fn ErrorNote(error: ServerFnError) -> impl IntoView {
    let text = match error {
        ServerFnError::ServerError(message) => message,
        other => format!("The console could not reach the server ({other})."),
    };
    view! { <div class="alert error" role="alert">{text}</div> }
}
