//! The console's live connection: one `EventSource` on `/console/live` per page
//! load, a "live / reconnecting" badge, and a hook that refreshes a view when
//! something happens in the tenant.

use std::time::Duration;

use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveState {
    Connecting,
    Live,
    Reconnecting,
}

/// Shared by every page below the layout.
#[derive(Clone, Copy)]
pub struct Live {
    pub state: RwSignal<LiveState>,
    /// Counts events received; views watch it to refresh.
    pub received: RwSignal<u64>,
}

/// Opens the live connection (in the browser only) and shares it with the pages.
pub fn provide_live() -> Live {
    let live = Live {
        state: RwSignal::new(LiveState::Connecting),
        received: RwSignal::new(0),
    };
    provide_context(live);
    Effect::new(move |_| browser::connect(live));
    live
}

/// Calls `refresh` shortly after live events arrive while `enabled()` holds; a burst of
/// events leads to one refresh.
pub fn use_live_refresh(
    enabled: impl Fn() -> bool + 'static,
    refresh: impl Fn() + Clone + 'static,
) {
    let Some(live) = use_context::<Live>() else {
        return;
    };
    let waiting = StoredValue::new(false);
    Effect::new(move |seen: Option<u64>| {
        let received = live.received.get();
        if seen.is_some_and(|seen| seen != received) && enabled() && !waiting.get_value() {
            waiting.set_value(true);
            let refresh = refresh.clone();
            set_timeout(
                move || {
                    waiting.set_value(false);
                    refresh();
                },
                Duration::from_millis(200),
            );
        }
        received
    });
}

#[component]
pub fn LiveBadge() -> impl IntoView {
    let state = use_context::<Live>().map(|l| l.state);
    let current = move || state.map_or(LiveState::Connecting, |s| s.get());
    view! {
        <span class=move || match current() {
                LiveState::Live => "live-badge live",
                LiveState::Connecting => "live-badge",
                LiveState::Reconnecting => "live-badge down",
            }
            role="status" data-testid="live-badge">
            <span class="dot" aria-hidden="true"></span>
            {move || match current() {
                LiveState::Live => "Live",
                LiveState::Connecting => "Connecting…",
                LiveState::Reconnecting => "Reconnecting…",
            }}
        </span>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::{Live, LiveState};
    use leptos::prelude::*;
    use leptos::wasm_bindgen::closure::Closure;
    use leptos::wasm_bindgen::JsCast;
    use leptos::web_sys::{Event, EventSource};
    use std::time::Duration;

    const KINDS: [&str; 4] = ["inbound", "pass", "delivery", "reset"];

    /// Connects; the browser resumes a dropped stream by itself (sending
    /// `Last-Event-ID`); a stream the server closed for good is reopened after a pause.
    pub fn connect(live: Live) {
        let Ok(source) = EventSource::new("/console/live") else {
            live.state.set(LiveState::Reconnecting);
            return;
        };
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| live.state.set(LiveState::Live));
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        on_open.forget();
        let on_event = Closure::<dyn FnMut(Event)>::new(move |_| {
            live.received.update(|n| *n += 1);
        });
        for kind in KINDS {
            let _ =
                source.add_event_listener_with_callback(kind, on_event.as_ref().unchecked_ref());
        }
        on_event.forget();
        let stream = source.clone();
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_| {
            live.state.set(LiveState::Reconnecting);
            if stream.ready_state() == EventSource::CLOSED {
                set_timeout(move || connect(live), Duration::from_secs(5));
            }
        });
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
    }
}

#[cfg(not(feature = "hydrate"))]
mod browser {
    pub fn connect(_: super::Live) {}
}
