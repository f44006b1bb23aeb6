//! No input makes the parser panic, and every rejection is located inside the file.

use proptest::prelude::*;

const EXAMPLES: [&str; 5] = [
    include_str!("../../../examples/minimal.yaml"),
    include_str!("../../../examples/basic.yaml"),
    include_str!("../../../examples/custom-metrics.yaml"),
    include_str!("../../../examples/relative.yaml"),
    include_str!("../../../examples/approval.yaml"),
];

/// Parses `source` and checks the contract: Ok, or Err with at least one error, each inside the file.
fn check_contract(source: &str) -> Result<(), TestCaseError> {
    match fledge_manifest::parse(source) {
        Ok(_) => Ok(()),
        Err(diagnostics) => {
            prop_assert!(diagnostics.error_count() > 0, "rejected without an error");
            let lines = source.lines().count().max(1) as u32;
            for diagnostic in &diagnostics {
                prop_assert!(
                    diagnostic.location.line >= 1 && diagnostic.location.line <= lines + 1,
                    "{diagnostic:?} outside {lines} lines"
                );
                prop_assert!(diagnostic.location.column >= 1, "{diagnostic:?}");
                prop_assert!(!diagnostic.message.is_empty());
                // Rendering must not panic either, whatever the location.
                let rendered = diagnostic.render("fuzz.yaml", source);
                prop_assert!(rendered.starts_with("fuzz.yaml:"));
            }
            Ok(())
        }
    }
}

/// One edit of a valid manifest.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteRange { at: usize, length: usize },
    Insert { at: usize, text: String },
    DuplicateLine { line: usize },
    SwapLines { first: usize, second: usize },
    Indent { line: usize, spaces: usize },
    Dedent { line: usize },
    ReplaceValue { line: usize, value: String },
}

fn yaml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(":".to_owned()),
        Just("- ".to_owned()),
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: ".to_owned()),
        Just("{".to_owned()),
        Just("]".to_owned()),
        Just("---\n".to_owned()),
        Just("!!binary ".to_owned()),
        Just("%YAML 1.2\n".to_owned()),
        Just("{{version}}".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("é".to_owned()),
        "[a-zA-Z0-9_.%-]{1,12}",
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("~".to_owned()),
        Just("true".to_owned()),
        Just("yes".to_owned()),
        Just("-1".to_owned()),
        Just("0".to_owned()),
        Just("101".to_owned()),
        Just("1e400".to_owned()),
        Just(".nan".to_owned()),
        Just("-.inf".to_owned()),
        Just("99999999999999999999999999".to_owned()),
        Just("0x1F".to_owned()),
        Just("5min".to_owned()),
        Just("30s".to_owned()),
        Just("20%".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("[1, [2, {a: b}]]".to_owned()),
        Just("\"quoted: value\"".to_owned()),
        Just("|\n  block".to_owned()),
        "[a-zA-Z0-9 ._%/:-]{0,20}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, length)| Mutation::DeleteRange { at, length }),
        (any::<usize>(), yaml_fragment()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(first, second)| Mutation::SwapLines { first, second }),
        (any::<usize>(), 1usize..6).prop_map(|(line, spaces)| Mutation::Indent { line, spaces }),
        any::<usize>().prop_map(|line| Mutation::Dedent { line }),
        (any::<usize>(), scalar()).prop_map(|(line, value)| Mutation::ReplaceValue { line, value }),
    ]
}

fn apply(source: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
    let count = lines.len().max(1);
    match mutation {
        Mutation::DeleteRange { at, length } => {
            let chars: Vec<char> = source.chars().collect();
            let start = at % chars.len().max(1);
            let end = (start + length).min(chars.len());
            return chars[..start].iter().chain(&chars[end..]).collect();
        }
        Mutation::Insert { at, text } => {
            let chars: Vec<char> = source.chars().collect();
            let position = at % (chars.len() + 1);
            return chars[..position]
                .iter()
                .copied()
                .chain(text.chars())
                .chain(chars[position..].iter().copied())
                .collect();
        }
        Mutation::DuplicateLine { line } => {
            let line = lines[line % count].clone();
            lines.insert(0, line);
        }
        Mutation::SwapLines { first, second } => lines.swap(first % count, second % count),
        Mutation::Indent { line, spaces } => {
            let index = line % count;
            lines[index] = format!("{}{}", " ".repeat(*spaces), lines[index]);
        }
        Mutation::Dedent { line } => {
            let index = line % count;
            lines[index] = lines[index].trim_start().to_owned();
        }
        Mutation::ReplaceValue { line, value } => {
            let index = line % count;
            if let Some((key, _)) = lines[index].split_once(": ") {
                lines[index] = format!("{key}: {value}");
            }
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(source in any::<String>()) {
        check_contract(&source)?;
    }

    #[test]
    fn yaml_like_text_never_panics(parts in proptest::collection::vec(prop_oneof![yaml_fragment(), scalar()], 0..60)) {
        check_contract(&parts.concat())?;
    }

    #[test]
    fn mutated_examples_never_panic(example in 0..EXAMPLES.len(), mutations in proptest::collection::vec(mutation(), 1..6)) {
        let mut source = EXAMPLES[example].to_owned();
        for mutation in &mutations {
            source = apply(&source, mutation);
        }
        check_contract(&source)?;
    }
}

#[test]
fn oversized_input_is_refused_without_parsing() {
    let source = format!("apiVersion: fledge/v1\n# {}\n", "x".repeat(fledge_manifest::MAX_MANIFEST_BYTES));
    let diagnostics = fledge_manifest::parse(&source).unwrap_err();
    let first = diagnostics.iter().next().unwrap();
    assert_eq!((first.location.line, first.location.column), (1, 1));
    assert!(first.message.contains("more than the limit"), "{}", first.message);
}
