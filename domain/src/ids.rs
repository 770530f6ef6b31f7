//! Prefixed, time-sortable ids (`pass_01j…`, `key_01j…`): an id says what it names.

pub const PASS: &str = "pass";
pub const API_KEY: &str = "key";
pub const USER: &str = "usr";

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_carry_their_prefix_and_sort_by_time() {
        let a = super::new_id("pass");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new_id("pass");
        assert!(a.starts_with("pass_") && a.len() == 31);
        assert!(a < b);
    }
}
