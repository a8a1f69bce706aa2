//! Assertions on text the tests read back (logs, a host's output, answers) that show the
//! whole text when they fail: a log line that is missing is found by reading the rest.

/// Asserts that `text` contains `part`.
#[track_caller]
pub fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} not in:\n{text}");
}

/// Asserts that `steps` occur in `text` in this order.
#[track_caller]
pub fn assert_in_order(text: &str, steps: &[&str]) {
    let mut at = 0;
    for step in steps {
        let found = text[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing (or out of order) in:\n{text}"));
        at += found + step.len();
    }
}
