//! The operator's kit: shell completions and the manual page, both generated from the command-line definition so
//! they never drift from it.

use std::io::Write;

use clap::{Args, CommandFactory};

use super::Cli;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: CompletionsArgs) -> Result<(), String> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "workmail-pat", &mut out);
    write_stdout(&out)
}

/// Prints the manual page on stdout (roff, section 1): the tool's page, then one section per subcommand with its
/// options, so `man workmail-pat` shows every flag in one place.
pub fn man() -> Result<(), String> {
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .map_err(|e| e.to_string())?;
    for (path, sub) in leaf_commands(&command, "workmail-pat") {
        let mut options = Vec::new();
        clap_mangen::Man::new(sub.clone())
            .render_options_section(&mut options)
            .map_err(|e| e.to_string())?;
        let options = String::from_utf8_lossy(&options).replacen(".SH OPTIONS", ".SS Options", 1);
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.extend_from_slice(
            format!(
                ".SH \"{}\"\n{}\n{options}",
                roff_escape(&path.to_uppercase()),
                roff_escape(&about)
            )
            .as_bytes(),
        );
    }
    write_stdout(&out)
}

/// Every runnable subcommand with its full name (`workmail-pat token create`), depth first.
fn leaf_commands(command: &clap::Command, path: &str) -> Vec<(String, clap::Command)> {
    let mut found = Vec::new();
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("{path} {}", sub.get_name());
        if sub.has_subcommands() {
            found.extend(leaf_commands(sub, &name));
        } else {
            found.push((name, sub.clone()));
        }
    }
    found
}

/// Text as roff shows it literally: hyphens and backslashes escaped, no line starting with a control character.
fn roff_escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.chars().next() {
        Some('.' | '\'') => format!("\\&{escaped}"),
        _ => escaped,
    }
}

fn write_stdout(bytes: &[u8]) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}
