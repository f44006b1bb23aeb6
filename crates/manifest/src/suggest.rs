//! "Did you mean" suggestions for misspelled field names and words.

/// The candidate closest to `typed`, if one is close enough to be a plausible typo.
///
/// Spelling variants count as exact: `scale_down_delay`, `scale-down-delay` and `ScaleDownDelay` all suggest
/// `scaleDownDelay`. Otherwise the edit distance must be small relative to the word's length.
pub(crate) fn closest<'c>(typed: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let normalized_typed = normalize(typed);
    let mut best: Option<(&str, usize)> = None;
    for candidate in candidates {
        let distance = if normalize(candidate) == normalized_typed {
            0
        } else {
            strsim::damerau_levenshtein(&typed.to_lowercase(), &candidate.to_lowercase())
        };
        let allowed = (candidate.chars().count().max(typed.chars().count()) / 3).clamp(1, 4);
        if distance <= allowed && best.is_none_or(|(_, best_distance)| distance < best_distance) {
            best = Some((candidate, distance));
        }
    }
    best.map(|(candidate, _)| candidate)
}

fn normalize(word: &str) -> String {
    word.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_typos_and_spelling_variants() {
        let fields = ["name", "namespace", "version", "previousVersion"];
        assert_eq!(closest("verison", fields), Some("version"));
        assert_eq!(closest("namespce", fields), Some("namespace"));
        assert_eq!(closest("previous_version", fields), Some("previousVersion"));
        assert_eq!(closest("PreviousVersion", fields), Some("previousVersion"));
        assert_eq!(closest("nmae", fields), Some("name"));
    }

    #[test]
    fn suggests_nothing_for_unrelated_words() {
        let fields = ["name", "namespace", "version"];
        assert_eq!(closest("image", fields), None);
        assert_eq!(closest("x", fields), None);
        assert_eq!(closest("replicas", fields), None);
    }
}
