//! What table cells show in little room: long ids cut to their distinctive end (the
//! whole in a tooltip, with a copy button) and timestamps that may wrap between
//! their date and their time.

use leptos::prelude::*;

use crate::components::forms::copier;
use crate::components::time::day_and_time;

/// `pass_01m94fvtx219vb47wnh50kmvc7` → `pass_…h50kmvc7`: the prefix says what it is,
/// the end tells ids of the same second apart (the start of a ULID is its time).
pub fn shorten(id: &str) -> String {
    const TAIL: usize = 8;
    let chars: Vec<char> = id.chars().collect();
    let prefix = id.find('_').map(|i| i + 1).filter(|&n| n <= 8).unwrap_or(0);
    // Ids up to twice the shown tail stay whole: cutting them would save little.
    if chars.len() <= prefix + 2 * TAIL {
        return id.to_string();
    }
    let tail: String = chars[chars.len() - TAIL..].iter().collect();
    format!("{}…{tail}", &id[..prefix])
}

/// A long id, shortened, linking to `href` when given; the full id is in the tooltip
/// and the copy button copies it.
#[component]
pub fn ShortId(id: String, #[prop(optional, into)] href: Option<String>) -> impl IntoView {
    let short = shorten(&id);
    let (copied, copy) = copier(id.clone());
    let code = view! { <code title=id.clone()>{short}</code> };
    view! {
        <span class="short-id">
            {match href {
                Some(href) => leptos::either::Either::Left(view! { <a href=href>{code}</a> }),
                None => leptos::either::Either::Right(code),
            }}
            <button type="button" class="copy-id" on:click=copy title="Copy the whole id"
                aria-label=move || if copied.get() { format!("Copied {id}") } else { format!("Copy {id}") }>
                <svg viewBox="0 0 16 16" width="13" height="13" aria-hidden="true">
                    <rect x="5" y="5" width="9" height="9" rx="1.5" fill="none" stroke="currentColor" stroke-width="1.5"/>
                    <path d="M3 11V3.5A1.5 1.5 0 0 1 4.5 2H11" fill="none" stroke="currentColor" stroke-width="1.5"/>
                </svg>
            </button>
        </span>
    }
}

/// A timestamp (`2026-11-23T10:15:30.123Z`) as `2026-11-23 10:15 UTC`, or to the
/// second with `seconds`; a narrow column wraps it between the date and the time.
#[component]
pub fn When(at: String, #[prop(optional)] seconds: bool) -> impl IntoView {
    match day_and_time(&at, seconds) {
        Some((day, time)) => {
            let day = day.to_string();
            leptos::either::Either::Left(view! {
                <time class="when" datetime=at.clone()><span>{day}</span>" "<span>{time}</span></time>
            })
        }
        None => leptos::either::Either::Right(at),
    }
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn ids_keep_their_prefix_and_distinctive_end() {
        assert_eq!(shorten("pass_01m94fvtx219vb47wnh50kmvc7"), "pass_…h50kmvc7");
        assert_eq!(shorten("evt_01m94fz83se7z9m0rc29pw1e8e"), "evt_…29pw1e8e");
        // Short ids, and ids without a short prefix, stay whole or lose only their start.
        assert_eq!(shorten("console-test"), "console-test");
        assert_eq!(shorten("1a2b3c4d-0000-4000-8000-123456789abc"), "…56789abc");
    }
}
