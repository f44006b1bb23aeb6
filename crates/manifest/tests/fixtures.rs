//! Every fixture under tests/fixtures: valid ones produce a release (snapshot of the release with its defaults),
//! invalid ones produce located errors (snapshot of the exact messages, plus the expectations written in each
//! fixture's `# expect: LINE:COLUMN text` header lines).

use std::path::Path;

fn name_of(path: &Path) -> String {
    let folder = path.parent().and_then(Path::file_name).unwrap_or_default().to_string_lossy();
    format!("{folder}/{}", path.file_name().unwrap_or_default().to_string_lossy())
}

/// `(line, column, text)` from `# expect: 12:3 text` lines.
fn expectations(source: &str) -> Vec<(u32, u32, String)> {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .filter_map(|expectation| {
            let (position, text) = expectation.split_once(' ')?;
            let (line, column) = position.split_once(':')?;
            Some((line.parse().ok()?, column.parse().ok()?, text.to_owned()))
        })
        .collect()
}

#[test]
fn invalid_manifests_report_located_errors() {
    insta::glob!("fixtures/invalid/*.yaml", |path| {
        let source = std::fs::read_to_string(path).unwrap();
        let name = name_of(path);
        let diagnostics = match fledge_manifest::parse(&source) {
            Ok(_) => panic!("{name} is meant to be invalid but parsed"),
            Err(diagnostics) => diagnostics,
        };
        assert!(diagnostics.error_count() > 0, "{name}: no errors");
        let line_count = source.lines().count() as u32;
        for diagnostic in &diagnostics {
            assert!(
                diagnostic.location.line >= 1 && diagnostic.location.line <= line_count.max(1),
                "{name}: {diagnostic:?}"
            );
            assert!(diagnostic.location.column >= 1, "{name}: {diagnostic:?}");
            assert!(diagnostic.hint.is_some(), "{name}: every error has a hint: {diagnostic:?}");
        }
        for (line, column, text) in expectations(&source) {
            let found = diagnostics.iter().any(|diagnostic| {
                diagnostic.location.line == line
                    && diagnostic.location.column == column
                    && (diagnostic.message.contains(&text)
                        || diagnostic.hint.as_deref().is_some_and(|hint| hint.contains(&text)))
            });
            assert!(
                found,
                "{name}: expected an error at {line}:{column} containing {text:?}, got:\n{}",
                diagnostics.render(&name, &source)
            );
        }
        insta::assert_snapshot!(diagnostics.render(&name, &source));
    });
}

#[test]
fn valid_manifests_produce_a_release_with_defaults_filled_in() {
    insta::glob!("fixtures/valid/*.yaml", |path| {
        let source = std::fs::read_to_string(path).unwrap();
        let name = name_of(path);
        let validated = match fledge_manifest::parse(&source) {
            Ok(validated) => validated,
            Err(diagnostics) => panic!("{name} is meant to be valid:\n{}", diagnostics.render(&name, &source)),
        };
        let mut snapshot = serde_json::to_string_pretty(&validated.release).unwrap();
        if !validated.warnings.is_empty() {
            snapshot.push_str("\n\n");
            snapshot.push_str(&validated.warnings.render(&name, &source));
        }
        insta::assert_snapshot!(snapshot);
    });
}

#[test]
fn examples_are_valid() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut count = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "yaml") {
            if let Err(error) = fledge_manifest::load(&path) {
                panic!("{} is invalid: {error:?}", path.display());
            }
            count += 1;
        }
    }
    assert!(count >= 5, "expected at least five examples, found {count}");
}
