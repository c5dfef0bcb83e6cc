//! Finding the `csp-harness` command lines in shell text (CI jobs, the scripts of Kubernetes
//! manifests), for the tests that check each one with the real command line's parser.

/// Shell lines with their backslash continuations joined.
pub fn logical_lines(script: &str) -> Vec<String> {
    script
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Shell words after which a new command starts (`exec` replaces the shell with the command).
const COMMAND_STARTS: [&str; 10] = [";", "&&", "||", "|", "&", "then", "do", "else", "!", "exec"];

/// The arguments of every `csp-harness` (or `.../csp-harness`) command on a line — a word in
/// command position, not e.g. the `csp-harness` of `cargo build -p csp-harness` — up to the end of
/// that command (`;`, `&&`, `||`, `|`, a redirection).
pub fn harness_commands(line: &str) -> Vec<Vec<String>> {
    let tokens = shlex::split(line).unwrap_or_else(|| panic!("unbalanced quotes: {line}"));
    let mut out = Vec::new();
    let mut i = 0;
    let mut command_position = true;
    while i < tokens.len() {
        let t = &tokens[i];
        let is_harness = command_position && t.rsplit('/').next() == Some("csp-harness");
        command_position = COMMAND_STARTS.contains(&t.as_str()) || t.ends_with(';');
        i += 1;
        if !is_harness {
            continue;
        }
        let mut args = Vec::new();
        while i < tokens.len() {
            let t = &tokens[i];
            if ["&&", "||", "|", ";", "&"].contains(&t.as_str()) || t.starts_with('>') {
                break;
            }
            i += 1;
            match t.strip_suffix(';') {
                Some(last) => {
                    args.push(last.to_string());
                    break;
                }
                None => args.push(t.clone()),
            }
        }
        out.push(args);
        command_position = true;
    }
    out
}
