//! The global allocator's one setting we change.
//!
//! mimalloc (the global allocator: see `main.rs`) keeps freed memory committed for a
//! second before giving it back. A BULK push frees tens of megabytes across threads
//! (the body's buffers, its items, SQLite's copies), and holding them that long took
//! a 10 000-item BULK's peak RSS past 150 MB; returned at once, it stays near 125 MB,
//! and the listener's throughput did not move in A/B runs (docs/PERFORMANCE.md).

use std::ffi::c_long;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (libmimalloc-sys 0.1.49,
/// `c_src/mimalloc/v3/include/mimalloc.h`); the Rust bindings don't name it. A test
/// checks that this index has the purge delay's documented default (1000 ms).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once instead of after a second.
pub fn return_freed_memory_at_once() {
    // SAFETY: mi_option_set stores a value in mimalloc's option table; any value is
    // valid for the purge delay (0: immediately).
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0 as c_long) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_the_purge_delay() {
        // SAFETY: reading an option has no precondition.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(default, 1000, "index {PURGE_DELAY} is not the purge delay");
        return_freed_memory_at_once();
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 0);
    }
}
