//! "Did you mean": the known name closest to a misspelt one. A typo in a
//! safety setting must be refused with the fix, not ignored, and a user
//! fixing a name wants the one they meant, not the whole list.

/// The candidate `word` most likely misspells, if any is close: the same
/// but for case, `-`/`_`, or at most two edits (one for short names), so
/// unrelated names are not suggested.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let folded = fold(word);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (distance(&folded, &fold(c)), c))
        .filter(|(d, c)| *d <= allowed(c))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Whether `word` is `name` misspelt (close, and not equal).
pub fn misspells(word: &str, name: &str) -> bool {
    closest(word, [name]).is_some()
}

/// `closest` as the end of a message: ` (did you mean 'x'?)`, or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}

fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn distance(a: &str, b: &str) -> usize {
    strsim::osa_distance(a, b)
}

fn allowed(candidate: &str) -> usize {
    match candidate.chars().count() {
        0..=4 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        assert!(misspells("turbulance", "turbulence"));
        assert!(misspells("Turbulence", "turbulence"));
        assert!(misspells("turbulnece", "turbulence"));
        assert!(misspells("turbulence-", "turbulence"));
        assert!(!misspells("turbulence", "turbulence"));
        assert!(!misspells("chaosiq", "turbulence"));
        assert!(!misspells("reliably", "turbulence"));
        assert_eq!(
            closest("rollback", ["method", "rollbacks", "runtime"]),
            Some("rollbacks")
        );
        assert_eq!(
            closest("steady_state_hypothesis", ["steady-state-hypothesis"]),
            Some("steady-state-hypothesis")
        );
        assert_eq!(closest("authors", ["title", "tags", "runtime"]), None);
        // Short names allow one edit only: "tag" is "tags", "lag" is not "tags".
        assert_eq!(closest("tag", ["tags"]), Some("tags"));
        assert_eq!(closest("lag", ["tags"]), None);
        assert_eq!(
            did_you_mean("stop_random_task", ["stop_random_tasks", "stop_task"]),
            " (did you mean 'stop_random_tasks'?)"
        );
    }
}
