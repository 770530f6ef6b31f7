//! The integrations overview: where each connection is configured, and how long
//! received requests keep their content.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::feedback::{ErrorNote, PageHeader, TableSkeleton};
use crate::components::forms::{take_outcome, toast, FieldNote, FormNote, HistoryList};
use crate::model::{FieldProblem, RetentionView};
use crate::server::{get_retention, SetRetention};

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let retention = Resource::new(|| (), |_| get_retention());
    let save = ServerAction::<SetRetention>::new();
    let problems = RwSignal::new(Vec::<FieldProblem>::new());
    Effect::new(move |_| {
        if let Some(result) = save.value().get() {
            if let Some(days) = take_outcome(result, problems) {
                toast(format!("Events now keep their content for {days} days"));
                retention.refetch();
            }
        }
    });
    view! {
        <Title text="Integrations"/>
        <PageHeader title="Integrations" subtitle="Connect the marketing platforms that drive your passes."/>
        <div class="grid-2 even">
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
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match retention.await {
                    Ok(view) => Either::Left(view! { <RetentionCard view save problems/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn RetentionCard(
    view: RetentionView,
    save: ServerAction<SetRetention>,
    problems: RwSignal<Vec<FieldProblem>>,
) -> impl IntoView {
    let days = RwSignal::new(view.days.to_string());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match days.get_untracked().trim().parse::<i64>() {
            Ok(days) => {
                save.dispatch(SetRetention { days });
            }
            Err(_) => problems.set(vec![FieldProblem {
                field: "retentionDays".into(),
                message: "give a whole number of days".into(),
            }]),
        }
    };
    view! {
        <section class="card" aria-labelledby="retention-title">
            <h2 id="retention-title">"Data retention"</h2>
            <p class="muted">
                "Received requests keep their payload and headers this long; afterwards only their summary and the daily counts remain. "
                {format!("{} older events have been emptied so far.", view.purged_events)}
            </p>
            <form class="form" on:submit=submit novalidate>
                <FormNote problems/>
                <div class="field">
                    <label for="retention-days">"Keep content for (days)"</label>
                    <input id="retention-days" type="number" min="1" max="3650" value=view.days bind:value=days
                        aria-describedby="retentionDays-error"/>
                    <FieldNote problems field="retentionDays"/>
                </div>
                <button type="submit" class="button primary" disabled=move || save.pending().get()>"Save retention"</button>
            </form>
        </section>
        <HistoryList rows=view.history/>
    }
}
