//! ARCHITECTURE.md against the code: `log-core`'s layers (each top-level module uses only
//! modules of lower layers) and the crate table's dependency lists (each crate's
//! `[dependencies]`, exactly). A change that breaks either fails here, so the map and the
//! territory change together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn architecture() -> String {
    read(&workspace_root().join("ARCHITECTURE.md"))
}

/// The rows of the Markdown table whose header row starts with `header`, as trimmed cells.
fn table(markdown: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = markdown.lines().skip_while(|l| !l.starts_with(header));
    assert!(
        lines.next().is_some(),
        "ARCHITECTURE.md has no table headed {header:?}"
    );
    lines
        .skip(1) // the |---| row
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

/// The `backticked` words of a cell, in order.
fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

// ---- log-core's layers ----

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
    /// A string literal's text (escapes left as written).
    Str(String),
}

/// Rust source as identifiers, `::`, punctuation and string literals; comments, char literals
/// and lifetimes are dropped (a path in a doc comment or a string is no dependency).
fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' || ((c == 'r' || c == 'b') && starts_string(&chars, i)) {
            let (text, end) = string_literal(&chars, i);
            out.push(Token::Str(text));
            i = end;
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                // An escaped char literal (`'\''`, `'\u{..}'`): past the escaped character,
                // then up to the closing quote.
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime or label.
                i += 1;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Token::Path);
            i += 2;
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

/// Whether a string literal with a prefix (`r"`, `r#"`, `b"`, `br"`, `br#"`) starts at `i`.
fn starts_string(chars: &[char], i: usize) -> bool {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false; // inside an identifier
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) == Some(&'r') {
        j += 1;
        while chars.get(j) == Some(&'#') {
            j += 1;
        }
    }
    j > i && chars.get(j) == Some(&'"')
}

/// The text of the string literal starting at `i` (plain, byte or raw) and the index just
/// past it.
fn string_literal(chars: &[char], mut i: usize) -> (String, usize) {
    if chars[i] == 'b' {
        i += 1;
    }
    let text = |from: usize, to: usize| chars[from..to.min(chars.len())].iter().collect();
    if chars.get(i) == Some(&'r') {
        i += 1;
        let mut hashes = 0;
        while chars.get(i) == Some(&'#') {
            hashes += 1;
            i += 1;
        }
        let start = i + 1; // past the opening quote
        let mut end = start;
        while end < chars.len() {
            if chars[end] == '"' && (1..=hashes).all(|k| chars.get(end + k) == Some(&'#')) {
                return (text(start, end), end + 1 + hashes);
            }
            end += 1;
        }
        return (text(start, end), end);
    }
    let start = i + 1;
    let mut end = start;
    while end < chars.len() {
        match chars[end] {
            '\\' => end += 2,
            '"' => return (text(start, end), end + 1),
            _ => end += 1,
        }
    }
    (text(start, end), end)
}

/// A source file of the crate and the path of the module it holds (`["client", "consumer"]`).
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
}

/// Every file of the module tree, from `lib.rs` through its `mod name;` declarations (with
/// `#[path]`), so that a file's module path is the compiler's.
fn module_files(src: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut pending = vec![(src.join("lib.rs"), Vec::<String>::new(), true)];
    while let Some((path, module, owns_dir)) = pending.pop() {
        let source = read(&path);
        let dir = path.parent().unwrap_or(src).to_path_buf();
        // Where this file's child modules live: beside a lib.rs / mod.rs, else in a directory
        // named after the file.
        let children_dir = if owns_dir {
            dir.clone()
        } else {
            dir.join(path.file_stem().unwrap_or_default())
        };
        let toks = tokens(&source);
        let mut depth = 0usize;
        let mut attr_path: Option<String> = None;
        for (i, tok) in toks.iter().enumerate() {
            match tok {
                Token::Punct('{') => depth += 1,
                Token::Punct('}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            // `#[path = "file.rs"]`: where the next `mod name;` is.
            let attribute =
                i >= 2 && toks[i - 2] == Token::Punct('#') && toks[i - 1] == Token::Punct('[');
            if attribute && tok == &Token::Ident("path".into()) {
                if let (Some(Token::Punct('=')), Some(Token::Str(relative))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    attr_path = Some(relative.clone());
                }
            }
            // `mod name;` at the file's top level (inline modules' files are not used here).
            if depth == 0 && tok == &Token::Ident("mod".into()) {
                if let (Some(Token::Ident(name)), Some(Token::Punct(';'))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    let mut child = module.clone();
                    child.push(name.clone());
                    let flat = children_dir.join(format!("{name}.rs"));
                    pending.push(match attr_path.take() {
                        Some(relative) => (dir.join(relative), child, false),
                        None if flat.exists() => (flat, child, false),
                        None => (children_dir.join(name).join("mod.rs"), child, true),
                    });
                }
            }
        }
        files.push(SourceFile { path, module });
    }
    files
}

/// The top-level modules a file names: `crate::x`, `crate::{x, y::z}`, and `super::...` paths
/// that climb to the crate root (inline modules counted).
fn top_level_uses(file: &SourceFile) -> Vec<String> {
    let toks = tokens(&read(&file.path));
    let mut uses = Vec::new();
    // Inline modules (`mod tests { ... }`) entered, with the brace depth they opened at.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let ident = |i: usize| match toks.get(i) {
        Some(Token::Ident(name)) => Some(name.as_str()),
        _ => None,
    };
    for i in 0..toks.len() {
        match &toks[i] {
            Token::Punct('{') => {
                depth += 1;
                if i >= 2 && ident(i - 2) == Some("mod") && ident(i - 1).is_some() {
                    inline.push(depth);
                }
            }
            Token::Punct('}') => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        // What follows a path prefix that reaches the crate root.
        let after_root = match ident(i) {
            Some("crate") if i == 0 || toks[i - 1] != Token::Path => Some(i + 1),
            Some("super") if i == 0 || toks[i - 1] != Token::Path => {
                let mut j = i;
                let mut climbs = 0;
                while ident(j) == Some("super") {
                    climbs += 1;
                    j += 1;
                    if toks.get(j) == Some(&Token::Path) && ident(j + 1) == Some("super") {
                        j += 1;
                    }
                }
                (climbs == file.module.len() + inline.len()).then_some(j)
            }
            _ => None,
        };
        let Some(at) = after_root else { continue };
        if toks.get(at) != Some(&Token::Path) {
            continue;
        }
        match toks.get(at + 1) {
            Some(Token::Ident(name)) => uses.push(name.clone()),
            Some(Token::Punct('{')) => {
                // The first name of each item of the group.
                let mut nesting = 0;
                let mut item_start = true;
                for tok in &toks[at + 1..] {
                    match tok {
                        Token::Punct('{') => {
                            nesting += 1;
                            if nesting == 1 {
                                item_start = true;
                            }
                        }
                        Token::Punct('}') => {
                            nesting -= 1;
                            if nesting == 0 {
                                break;
                            }
                        }
                        Token::Punct(',') if nesting == 1 => item_start = true,
                        Token::Ident(name) if nesting == 1 && item_start => {
                            uses.push(name.clone());
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    uses
}

/// The names `lib.rs` re-exports at the crate root (`pub use model::TopicPartition;`), with the
/// module each comes from: `crate::TopicPartition` is a use of `model`.
fn root_reexports(lib: &SourceFile) -> BTreeMap<String, String> {
    let toks = tokens(&read(&lib.path));
    let mut names = BTreeMap::new();
    let mut i = 0;
    while i + 2 < toks.len() {
        if toks[i] == Token::Ident("pub".into()) && toks[i + 1] == Token::Ident("use".into()) {
            let Token::Ident(module) = &toks[i + 2] else {
                i += 1;
                continue;
            };
            let mut j = i + 3;
            while j < toks.len() && toks[j] != Token::Punct(';') {
                if let Token::Ident(name) = &toks[j] {
                    let leaf = matches!(toks.get(j + 1), Some(Token::Punct(',' | '}' | ';')));
                    if leaf && name != "self" {
                        names.insert(name.clone(), module.clone());
                    }
                }
                j += 1;
            }
            i = j;
        }
        i += 1;
    }
    names
}

#[test]
fn each_log_core_module_uses_only_lower_layers() {
    let rows = table(&architecture(), "| layer | modules |");
    let mut layer_of: BTreeMap<String, u32> = BTreeMap::new();
    for cells in &rows {
        let layer: u32 = cells[0]
            .parse()
            .unwrap_or_else(|_| panic!("layer {:?} is not a number", cells[0]));
        let modules = cells.get(1).map(|c| backticked(c)).unwrap_or_default();
        assert!(!modules.is_empty(), "layer {layer} names no module");
        for module in modules {
            assert!(
                layer_of.insert(module.clone(), layer).is_none(),
                "{module} is in two layers"
            );
        }
    }

    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = module_files(&src);
    let lib = files
        .iter()
        .find(|f| f.module.is_empty())
        .expect("lib.rs is read first");
    let declared: BTreeSet<String> = files
        .iter()
        .filter(|f| f.module.len() == 1)
        .map(|f| f.module[0].clone())
        .collect();
    let listed: BTreeSet<String> = layer_of.keys().cloned().collect();
    assert_eq!(
        declared, listed,
        "the modules lib.rs declares and those ARCHITECTURE.md's layer table lists"
    );
    // Sanity: the walk found the files the module tree is made of.
    assert!(files.len() > 30, "only {} source files found", files.len());
    assert!(files
        .iter()
        .any(|f| f.path.ends_with("storage/log_tests.rs")));

    let reexports = root_reexports(lib);
    let mut wrong = Vec::new();
    for file in files.iter().filter(|f| !f.module.is_empty()) {
        let own = &file.module[0];
        let shown = file.path.strip_prefix(&src).unwrap_or(&file.path).display();
        for used in top_level_uses(file) {
            let target = if layer_of.contains_key(&used) {
                used.clone()
            } else if let Some(module) = reexports.get(&used) {
                module.clone()
            } else {
                wrong.push(format!(
                    "{shown}: crate::{used} is neither a module nor a root re-export"
                ));
                continue;
            };
            if &target != own && layer_of[&target] >= layer_of[own] {
                wrong.push(format!(
                    "{shown} ({own}, layer {}) uses {target} (layer {})",
                    layer_of[own], layer_of[&target]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "layering broken (ARCHITECTURE.md, the layer table):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_layer_check_sees_every_way_of_naming_a_module() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("x.rs");
    std::fs::write(
        &path,
        r##"
        //! Mentions crate::broker in a doc comment, which is no use.
        use crate::{error::{Error, Result}, model::TopicPartition};
        use crate::storage::batch;
        const S: &str = "crate::group";
        const R: &str = r#"crate::"group""#;
        fn f<'a>(c: char) -> bool { c == '{' || c == '\'' || super::protocol::x() }
        mod tests {
            use super::super::config::LogConfig;
            use super::f;
            fn g() { crate::client::Client::embedded(); }
        }
        "##,
    )
    .expect("write");
    let file = SourceFile {
        path,
        module: vec!["embedded".into()],
    };
    assert_eq!(
        top_level_uses(&file),
        ["error", "model", "storage", "protocol", "config", "client"]
    );
}

// ---- the crate table ----

/// `[dependencies]` (and any target-specific ones) of a Cargo.toml.
fn dependencies(manifest: &toml::Table) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|deps| deps.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for target in targets.values() {
            if let Some(deps) = target.get("dependencies").and_then(toml::Value::as_table) {
                names.extend(deps.keys().cloned());
            }
        }
    }
    names
}

fn manifest(path: &Path) -> toml::Table {
    read(path)
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A dependency cell: names separated by commas; text in parentheses says why and is no name.
fn listed_dependencies(cell: &str) -> BTreeSet<String> {
    let mut plain = String::new();
    let mut parens = 0;
    for c in cell.chars() {
        match c {
            '(' => parens += 1,
            ')' => parens -= 1,
            c if parens == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split(',')
        .map(|name| name.trim().trim_matches('`').to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn the_crate_table_lists_each_crates_dependencies() {
    let rows = table(&architecture(), "| crate | dir |");
    let root = workspace_root();
    let members: BTreeSet<String> = manifest(&root.join("Cargo.toml"))["workspace"]["members"]
        .as_array()
        .expect("workspace.members")
        .iter()
        .filter_map(|m| m.as_str())
        .map(str::to_string)
        .collect();
    let mut dirs = BTreeSet::new();
    let mut wrong = Vec::new();
    for cells in &rows {
        let name = backticked(&cells[0]).into_iter().next().unwrap_or_default();
        let dir = backticked(&cells[1])
            .into_iter()
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let cargo = manifest(&root.join(&dir).join("Cargo.toml"));
        let package = cargo["package"]["name"].as_str().unwrap_or_default();
        if package != name {
            wrong.push(format!(
                "{dir}/Cargo.toml is package {package}, the table says {name}"
            ));
        }
        let actual = dependencies(&cargo);
        let listed = listed_dependencies(cells.last().map(String::as_str).unwrap_or_default());
        for missing in actual.difference(&listed) {
            wrong.push(format!(
                "{name} depends on {missing}, which the table does not list"
            ));
        }
        for extra in listed.difference(&actual) {
            wrong.push(format!(
                "the table lists {extra} for {name}, which it does not depend on"
            ));
        }
        dirs.insert(dir);
    }
    assert_eq!(
        dirs, members,
        "the crate table's dirs and the workspace members"
    );
    assert!(
        wrong.is_empty(),
        "ARCHITECTURE.md's crate table and the Cargo.toml files differ:\n{}",
        wrong.join("\n")
    );
}
