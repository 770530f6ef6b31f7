//! Charts drawn as inline SVG on the server (no chart library, nothing from a CDN).

use leptos::prelude::*;

use crate::model::Bar;

/// Stacked columns (good at the bottom, bad on top), one per bucket, as inline SVG.
#[component]
pub fn StackChart(
    bars: Vec<Bar>,
    labels: (&'static str, &'static str),
    title: &'static str,
    /// Drawing units across (the height is fixed): wider for a chart across the page.
    #[prop(default = 400.0)]
    width: f64,
) -> impl IntoView {
    const HEIGHT: f64 = 120.0;
    let max = bars
        .iter()
        .map(|b| b.good + b.bad)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = width / bars.len().max(1) as f64;
    let summary = bars
        .iter()
        .filter(|b| b.good + b.bad > 0)
        .map(|b| {
            format!(
                "{}: {} {}, {} {}",
                b.label, b.good, labels.0, b.bad, labels.1
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let aria = if summary.is_empty() {
        format!("{title}: nothing yet")
    } else {
        format!("{title}: {summary}")
    };
    let every = (bars.len() / 6).max(1);
    view! {
        <svg class="column-chart" viewBox=format!("0 0 {width} 140") role="img" aria-label=aria>
            <line x1="0" y1=HEIGHT x2=width y2=HEIGHT class="axis"/>
            {bars
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let (good, bad) = (b.good, b.bad);
                    let x = i as f64 * step + 2.0;
                    let w = (step - 4.0).max(1.0);
                    let hg = HEIGHT * good as f64 / max;
                    let hb = HEIGHT * bad as f64 / max;
                    view! {
                        <rect x=format!("{x:.1}") y=format!("{:.1}", HEIGHT - hg) width=format!("{w:.1}") height=format!("{hg:.1}") class="seg-ok">
                            <title>{format!("{}: {good} {}", b.label, labels.0)}</title>
                        </rect>
                        <rect x=format!("{x:.1}") y=format!("{:.1}", HEIGHT - hg - hb) width=format!("{w:.1}") height=format!("{hb:.1}") class="seg-bad">
                            <title>{format!("{}: {bad} {}", b.label, labels.1)}</title>
                        </rect>
                        {(i % every == 0).then(|| view! {
                            <text x=format!("{x:.1}") y="136" class="tick">{b.label.clone()}</text>
                        })}
                    }
                })
                .collect_view()}
        </svg>
        <p class="legend"><span class="swatch seg-ok"></span>{labels.0}" "<span class="swatch seg-bad"></span>{labels.1}</p>
    }
}
