//! The CLI's own commands (not SQL, no `;` needed, any case), as ksqlDB's CLI has them:
//! `help`, `clear`, `output [JSON|TABULAR]`, `history`, `version`, `exit`, `server [url]`,
//! `spool <file>|OFF`, `run script <file>`, `set cli WRAP|COLUMN-WIDTH <value>`.

/// A CLI command and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum CliCommand {
    Help,
    Clear,
    Output(Option<String>),
    History,
    Version,
    Exit,
    Server(Option<String>),
    Spool(String),
    RunScript(String),
    SetCli(String, String),
}

/// The commands: their words, and how many arguments they take (at least, at most).
const COMMANDS: [(&[&str], usize, usize); 10] = [
    (&["help"], 0, 0),
    (&["clear"], 0, 0),
    (&["output"], 0, 1),
    (&["history"], 0, 0),
    (&["version"], 0, 0),
    (&["exit"], 0, 0),
    (&["server"], 0, 1),
    (&["spool"], 1, 1),
    (&["run", "script"], 1, 1),
    (&["set", "cli"], 2, 2),
];

/// `line` as a CLI command, if it is one: its words first (any case, trailing `;` ignored),
/// then its arguments (single quotes group words, `''` is a quote). An error names a wrong
/// number of arguments.
pub fn parse(line: &str) -> Option<Result<CliCommand, String>> {
    let line = line.trim().trim_end_matches(';').trim_end();
    let words = words(line);
    let (names, min, max) = COMMANDS.iter().find(|(names, _, _)| {
        names.len() <= words.len()
            && names
                .iter()
                .zip(&words)
                .all(|(name, (word, quoted))| !quoted && word.eq_ignore_ascii_case(name))
    })?;
    let args: Vec<String> = words[names.len()..]
        .iter()
        .map(|(w, _)| w.clone())
        .collect();
    let usage = usage(names);
    if args.len() < *min {
        return Some(Err(format!("Too few parameters\n{usage}")));
    }
    if args.len() > *max {
        return Some(Err(format!("Too many parameters\n{usage}")));
    }
    let arg = |i: usize| args.get(i).cloned();
    Some(Ok(match names[0] {
        "help" => CliCommand::Help,
        "clear" => CliCommand::Clear,
        "output" => CliCommand::Output(arg(0)),
        "history" => CliCommand::History,
        "version" => CliCommand::Version,
        "exit" => CliCommand::Exit,
        "server" => CliCommand::Server(arg(0)),
        "spool" => CliCommand::Spool(arg(0).unwrap_or_default()),
        "run" => CliCommand::RunScript(arg(0).unwrap_or_default()),
        _ => CliCommand::SetCli(arg(0).unwrap_or_default(), arg(1).unwrap_or_default()),
    }))
}

/// The words of `line`, each with whether it was quoted.
fn words(line: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '\'' {
            chars.next();
            let mut word = String::new();
            while let Some(c) = chars.next() {
                if c == '\'' {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        break;
                    }
                }
                word.push(c);
            }
            out.push((word, true));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push((word, false));
        }
    }
    out
}

/// A command's part of the help text.
fn usage(names: &[&str]) -> String {
    let name = names.join(" ");
    HELP.split("\n\n")
        .find(|part| part.starts_with(&name))
        .unwrap_or(&name)
        .to_string()
}

/// `help`.
pub const HELP: &str = "
Description:
\tThe ksql CLI is an interactive shell for a ksql server: type ksqlDB statements, ended by \
a semicolon, and see their answers. Statements may span several lines; CLI commands (below) \
need no semicolon and may be typed in any case.

help:
\tShow this message.

clear:
\tClear the current terminal.

output:
\tView the current output format.

output <format>:
\tSet the output format to <format> (valid formats: 'JSON', 'TABULAR')
\tFor example: \"output JSON\"

history:
\tShow the lines entered during this session. The up and down arrow keys scroll through \
them (kept in ~/.ksql-history).

version:
\tGet the server's ksqlDB version.

exit:
\tExit the CLI (Ctrl-D does too).

server:
\tShow the current server.

server <server>:
\tChange the current server to <server>
\tFor example: \"server http://127.0.0.1:8088\"

spool <path_to_file>|OFF:
\tStore the commands issued and their results in a file, each command after \"ksql> \", \
until SPOOL OFF.

run script <path_to_sql_file>:
\tRun the statements of the file (UTF-8), as if typed.

set cli <property> <value>:
\tSet a property of this CLI (not of the server: that is SET 'property'='value';):
\tWRAP ON|OFF (long values of query rows on several lines, or cut) or COLUMN-WIDTH <n> \
(the width of a query row's cells; 0: the terminal's width shared by the columns).

Keyboard shortcuts:

    Ctrl-D: end the session.
    Ctrl-C: stop the running query (or drop what was typed).
    Ctrl-R: search the history.
    Up and Down arrow keys: scroll through the history.

Default behaviour:

    Lines are read one at a time and sent to the server as SQL unless:
    1. The line is empty or only blanks: nothing is sent.
    2. The line is a CLI command (above): it runs here.
    3. The statement does not end with a semicolon yet: more lines are read (prompt \">\") \
until one ends it; a line ending in a backslash continues on the next.
    SELECT streams its rows until the query ends, its LIMIT, or Ctrl-C.

";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_match_in_any_case_with_their_arguments() {
        assert_eq!(parse("EXIT;"), Some(Ok(CliCommand::Exit)));
        assert_eq!(
            parse("output json"),
            Some(Ok(CliCommand::Output(Some("json".into()))))
        );
        assert_eq!(
            parse("RUN SCRIPT '/tmp/my script.sql';"),
            Some(Ok(CliCommand::RunScript("/tmp/my script.sql".into())))
        );
        assert_eq!(
            parse("set cli wrap off"),
            Some(Ok(CliCommand::SetCli("wrap".into(), "off".into())))
        );
        assert_eq!(parse("SET 'auto.offset.reset'='earliest';"), None);
        assert_eq!(parse("SHOW STREAMS;"), None);
        assert_eq!(parse("exiting"), None);
        let Some(Err(message)) = parse("help me") else {
            panic!("help takes no arguments");
        };
        assert_eq!(message, "Too many parameters\nhelp:\n\tShow this message.");
        assert!(
            matches!(parse("spool"), Some(Err(m)) if m.starts_with("Too few parameters\nspool"))
        );
    }
}
