//! Timestamps as pages show them. Their own module, below the components and pages
//! that use them, so that a component showing a time need not import a page.

/// `2026-11-23T10:15:30.123Z` → `2026-11-23 10:15 UTC`.
pub fn short_time(rfc3339: &str) -> String {
    joined(rfc3339, day_and_time(rfc3339, false))
}

/// `2026-11-23T10:15:30.123Z` → `2026-11-23 10:15:30 UTC`, for activity to the second.
pub fn exact_time(rfc3339: &str) -> String {
    joined(rfc3339, day_and_time(rfc3339, true))
}

/// `2026-11-23T10:15:30.123Z` → (`2026-11-23`, `10:15 UTC`), or `10:15:30 UTC` with
/// `seconds`; `None` for text that is not such a timestamp.
pub fn day_and_time(rfc3339: &str, seconds: bool) -> Option<(&str, String)> {
    let end = if seconds { 19 } else { 16 };
    Some((rfc3339.get(..10)?, format!("{} UTC", rfc3339.get(11..end)?)))
}

fn joined(rfc3339: &str, parts: Option<(&str, String)>) -> String {
    match parts {
        Some((day, time)) => format!("{day} {time}"),
        None => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_shortened() {
        assert_eq!(
            super::short_time("2026-11-23T10:15:30.123Z"),
            "2026-11-23 10:15 UTC"
        );
        assert_eq!(
            super::exact_time("2026-11-23T10:15:30.123Z"),
            "2026-11-23 10:15:30 UTC"
        );
    }
}
