//! `fledge completions` and `fledge man`: what a shell offers after `fledge re<TAB>`, and a man page that names every
//! command.

use std::process::Command;

fn fledge(arguments: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_fledge")).args(arguments).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// What bash's completion function offers for `words`, completing the last one.
fn bash_offers(script: &str, words: &[&str]) -> Vec<String> {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("fledge.bash");
    std::fs::write(&path, script).unwrap();
    let quoted: Vec<String> = words.iter().map(|word| format!("'{word}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _fledge fledge '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display(),
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2]
    );
    let output = Command::new("bash").args(["-c", &program]).output().expect("bash runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_commands_and_their_flags() {
    let script = fledge(&["completions", "bash"]);
    assert_eq!(bash_offers(&script, &["fledge", "re"]), ["rehearse"]);
    assert_eq!(bash_offers(&script, &["fledge", "rehearse", "f.yaml", "--rep"]), ["--repeat", "--report-html"]);
    assert_eq!(bash_offers(&script, &["fledge", "wa"]), ["wait"]);
}

#[test]
fn zsh_and_fish_scripts_name_every_command() {
    let zsh = fledge(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef fledge\n"), "{zsh}");
    let fish = fledge(&["completions", "fish"]);
    for command in ["validate", "run", "plan", "status", "wait", "abort", "gate", "analyze", "rehearse", "demo", "sim"]
    {
        assert!(zsh.contains(&format!("'{command}:")), "zsh offers {command}");
        assert!(fish.contains(&format!("-a \"{command}\"")), "fish offers {command}: {fish}");
    }
}

#[test]
fn the_man_page_names_every_command() {
    let page = fledge(&["man"]);
    assert!(page.contains(".TH fledge 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for command in ["validate", "run", "plan", "status", "wait", "abort", "gate", "analyze", "rehearse", "completions"]
    {
        assert!(page.contains(&format!("fledge\\-{command}(1)")), "the man page lists {command}");
    }
}
