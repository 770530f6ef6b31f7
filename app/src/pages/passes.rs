use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::components::cells::{ShortId, When};
use crate::components::feedback::{EmptyState, ErrorNote, PageHeader, TableSkeleton};
use crate::model::{PassList, PassRow};
use crate::server::list_passes;

#[component]
pub fn PassesPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default();
    let page = move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(1)
    };
    let passes = Resource::new(move || (q(), page()), |(q, page)| list_passes(q, page));
    view! {
        <Title text="Passes"/>
        <PageHeader title="Passes" subtitle="Every wallet pass of this tenant. Search by pass id, email or customer id."/>
        <Form action="/passes" attr:class="toolbar" attr:role="search">
            <label class="sr-only" for="pass-search">"Search passes"</label>
            <input id="pass-search" type="search" name="q" prop:value=q placeholder="Search by pass id, email or customer id"/>
            <button type="submit" class="button primary">"Search"</button>
        </Form>
        <Transition fallback=|| view! { <TableSkeleton/> }>
            {move || Suspend::new(async move {
                match passes.await {
                    Ok(list) => Either::Left(view! { <PassListView list q=q()/> }),
                    Err(error) => Either::Right(view! { <ErrorNote error/> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn PassListView(list: PassList, q: String) -> impl IntoView {
    if list.items.is_empty() {
        let (title, hint) = if q.is_empty() {
            (
                "No passes yet",
                "Passes created through the API or the listeners appear here.".to_string(),
            )
        } else {
            (
                "No pass matches",
                format!(
                    "Nothing matches “{q}”. Check the spelling or search by another identifier."
                ),
            )
        };
        return Either::Left(view! { <EmptyState title=title.to_string() hint/> });
    }
    let pages = list.pages();
    let first = (list.page - 1) * list.page_size + 1;
    let last = first + list.items.len() as u32 - 1;
    let link = move |page: u32| {
        let q = urlencode(&q);
        format!("/passes?q={q}&page={page}")
    };
    Either::Right(view! {
        <PassTable rows=list.items compact=false/>
        <nav class="pagination" aria-label="Pages">
            <span class="muted" data-testid="pass-count">
                {format!("{first}–{last} of {}", list.total)}
            </span>
            <div class="pager">
                {(list.page > 1).then(|| view! {
                    <a class="button small secondary" href=link(list.page - 1) rel="prev">"Previous"</a>
                })}
                <span class="muted">{format!("Page {} of {pages}", list.page)}</span>
                {(list.page < pages).then(|| view! {
                    <a class="button small secondary" href=link(list.page + 1) rel="next">"Next"</a>
                })}
            </div>
        </nav>
    })
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
pub fn PassTable(rows: Vec<PassRow>, compact: bool) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="pass-table">
                <thead>
                    <tr>
                        <th scope="col">"Pass and type"</th>
                        <th scope="col">"Identifiers"</th>
                        {(!compact).then(|| view! { <th scope="col">"Data"</th> })}
                        <th scope="col">{if compact { "Version" } else { "Updated" }}</th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|row| {
                            let href = format!("/passes/{}", row.id);
                            view! {
                                <tr>
                                    <td>
                                        <ShortId id=row.id href/>
                                        <div><span class="tag">{row.pass_type}</span></div>
                                    </td>
                                    <td><KeyValues pairs=row.identifiers/></td>
                                    {(!compact).then(|| view! { <td><KeyValues pairs=row.data/></td> })}
                                    <td class="muted">
                                        {(!compact).then(|| view! { <When at=row.updated_at/> })}
                                        <div class="small">{format!("version {}", row.version)}</div>
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn KeyValues(pairs: Vec<(String, String)>) -> impl IntoView {
    view! {
        <dl class="kv">
            {pairs
                .into_iter()
                .map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> })
                .collect_view()}
        </dl>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_encoded() {
        assert_eq!(super::urlencode("a b&c=d@x.io"), "a%20b%26c%3Dd%40x.io");
    }
}
