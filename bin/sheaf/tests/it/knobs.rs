//! Every knob where an operator looks for it, read from the built `sheaf` as a user sees it:
//! every option of every command (found by walking `--help`) is named in the README, with the
//! environment variable `--help` shows for it; and every option of the services an operator
//! runs and configures (`coordinator`, `prover`, `chain`, `devnet`) has an environment variable.

use std::collections::BTreeSet;

use crate::common::sheaf;

/// The services: every option of theirs is a knob that a unit file or a container sets, so each
/// has an environment variable.
const SERVICES: [&str; 4] = ["coordinator", "prover", "chain", "devnet"];

/// Options that are no knob: clap's own, and `--json`, which says how a report is printed, not
/// how anything runs.
const NOT_KNOBS: [&str; 3] = ["--help", "--version", "--json"];

/// One option as `--help` shows it.
#[derive(Debug)]
struct CliOption {
    /// `--name`.
    flag: String,
    /// The environment variable, if `--help` names one.
    env: Option<String>,
}

fn help(command: &[String]) -> String {
    let output = sheaf().args(command).arg("--help").output().unwrap();
    assert!(output.status.success(), "{command:?} --help failed");
    String::from_utf8(output.stdout).unwrap()
}

/// The lines of a `--help` section (`Commands:`, `Options:`), up to the next section.
fn section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| l.trim_end() != title)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

/// Every command path, depth first: `[]`, `["coordinator"]`, `["bench", "store"]`, ….
fn commands(path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let text = help(&path);
    out.push(path.clone());
    for line in section(&text, "Commands:") {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        // Two spaces of indentation: a command, not a wrapped description.
        if name == "help" || !line.starts_with("  ") || line.starts_with("   ") {
            continue;
        }
        let mut sub = path.clone();
        sub.push(name.to_owned());
        commands(sub, out);
    }
}

/// The options of one `--help`: each starts on a line whose first word is a flag; the lines
/// below it, up to the next option, are its description.
fn options(help: &str) -> Vec<CliOption> {
    let mut out: Vec<CliOption> = Vec::new();
    for line in section(help, "Options:") {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with('-') && indent <= 6 {
            let flag = trimmed
                .split([' ', ',', '=', '<', '['])
                .find(|w| w.starts_with("--"))
                .unwrap_or_else(|| panic!("an option without a long name: {line}"))
                .to_owned();
            out.push(CliOption { flag, env: None });
        }
        if let (Some(option), Some(at)) = (out.last_mut(), line.find("[env: ")) {
            let name = &line[at + "[env: ".len()..];
            let name = name.split(['=', ']']).next().unwrap_or_default();
            option.env = Some(name.to_owned());
        }
    }
    out
}

/// Whether `text` names `word` as a whole (`--key` is not named by `--key-file`).
fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let next = text[at + word.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

#[test]
fn every_option_is_in_the_readme_with_its_environment_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let mut all = Vec::new();
    commands(Vec::new(), &mut all);
    assert!(
        all.iter()
            .any(|c| c == &["bench".to_owned(), "store".to_owned()]),
        "nested commands are found: {all:?}"
    );
    let mut missing = BTreeSet::new();
    let mut seen = 0;
    for command in &all {
        let text = help(command);
        let options = options(&text);
        let is_service = command.len() == 1 && SERVICES.contains(&command[0].as_str());
        if is_service {
            assert!(options.len() > 5, "{command:?}: options are found: {text}");
        }
        for option in options {
            if NOT_KNOBS.contains(&option.flag.as_str()) {
                continue;
            }
            seen += 1;
            let name = format!("sheaf {}: {}", command.join(" "), option.flag);
            if !mentions(&readme, &option.flag) {
                missing.insert(format!("{name} is not in the README"));
            }
            match &option.env {
                Some(env) if !mentions(&readme, env) => {
                    missing.insert(format!("{name}: {env} is not in the README"));
                }
                None if is_service => {
                    missing.insert(format!("{name} has no environment variable"));
                }
                _ => {}
            }
        }
    }
    assert!(seen > 100, "the options are read from --help ({seen})");
    assert!(missing.is_empty(), "{missing:#?}");
}
