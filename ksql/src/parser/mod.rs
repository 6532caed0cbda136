//! ksqlDB's statements, parsed on sqlparser's tokenizer and expression parser.
//!
//! sqlparser knows SQL's expressions, select items and literals but not ksqlDB's statements
//! and clauses, so this module parses those itself, token by token, and hands each
//! expression (and each select list) to sqlparser. Errors carry the line and column of the
//! token at fault.

pub mod ast;
pub(crate) mod dialect;

use std::time::Duration;

use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::error::{KsqlError, Result};
use ast::*;
pub use dialect::KsqlDialect;

/// Every statement of `sql` (separated by `;`; the last one's `;` may be left out).
pub fn parse(sql: &str) -> Result<Vec<ParsedStatement>> {
    let dialect = KsqlDialect;
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| {
            KsqlError::parse(
                e.location.line,
                e.location.column,
                strip_location(&e.message),
            )
        })?;
    let mut parser = StatementParser {
        p: Parser::new(&dialect).with_tokens_with_locations(tokens),
        sql,
        lines: line_starts(sql),
        pending_gt: 0,
    };
    let mut statements = Vec::new();
    loop {
        while parser.p.consume_token(&Token::SemiColon) {}
        let first = parser.p.peek_token();
        if first.token == Token::EOF {
            return Ok(statements);
        }
        let statement = parser.statement()?;
        let end = parser.p.peek_token();
        match end.token {
            Token::SemiColon | Token::EOF => {}
            _ => return Err(parser.error_at(&end, "expected ';' at the end of the statement")),
        }
        let from = parser.offset(first.span.start);
        let to = match end.token {
            Token::EOF => sql.len(),
            _ => parser.offset(end.span.start),
        };
        statements.push(ParsedStatement {
            text: sql.get(from..to).unwrap_or_default().trim_end().to_string(),
            line: first.span.start.line,
            column: first.span.start.column,
            statement,
        });
    }
}

/// One statement's text in a request, as [`split_statements`] cuts it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatementText<'a> {
    /// Where it starts in the request (a byte offset).
    pub start: usize,
    /// The text, its `;` included.
    pub text: &'a str,
    /// Whether its `;` came: false for the last piece of a statement still being typed.
    pub terminated: bool,
}

/// `sql` cut into statements at each `;` outside string literals, quoted identifiers and
/// comments, without parsing them (the CLI's and the variables' view); pieces of nothing but
/// blanks and comments are left out.
pub fn split_statements(sql: &str) -> Vec<StatementText<'_>> {
    #[derive(PartialEq)]
    enum In {
        Code,
        Quote(u8),
        LineComment,
        BlockComment,
    }
    let mut state = In::Code;
    let mut out = Vec::new();
    let mut start = 0;
    // Whether the piece has anything but blanks and comments.
    let mut has_code = false;
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            In::Code => match b {
                b'\'' | b'"' | b'`' => {
                    state = In::Quote(b);
                    has_code = true;
                }
                b'-' if next == Some(b'-') => state = In::LineComment,
                b'/' if next == Some(b'*') => {
                    i += 1;
                    state = In::BlockComment;
                }
                b';' => {
                    if has_code {
                        out.push(StatementText {
                            start,
                            text: &sql[start..=i],
                            terminated: true,
                        });
                    }
                    start = i + 1;
                    has_code = false;
                }
                b if b.is_ascii_whitespace() => {}
                _ => has_code = true,
            },
            In::Quote(q) => {
                if b == q {
                    // A doubled quote stays inside.
                    if next == Some(q) {
                        i += 1;
                    } else {
                        state = In::Code;
                    }
                }
            }
            In::LineComment => {
                if b == b'\n' {
                    state = In::Code;
                }
            }
            In::BlockComment => {
                if b == b'*' && next == Some(b'/') {
                    i += 1;
                    state = In::Code;
                }
            }
        }
        i += 1;
    }
    // An open quote or block comment leaves the statement unfinished.
    if has_code || matches!(state, In::BlockComment) {
        out.push(StatementText {
            start,
            text: &sql[start..],
            terminated: false,
        });
    }
    out
}

/// Exactly one statement.
pub fn parse_one(sql: &str) -> Result<ParsedStatement> {
    let mut statements = parse(sql)?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        0 => Err(KsqlError::parse(
            1,
            1,
            "expected a statement, found nothing",
        )),
        n => {
            let second = &statements[1];
            Err(KsqlError::parse(
                second.line,
                second.column,
                format!("expected one statement, found {n}"),
            ))
        }
    }
}

/// The byte offset of each line's start.
fn line_starts(sql: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// sqlparser's message without its " at Line: l, Column: c" (the error says where).
fn strip_location(message: &str) -> String {
    match message.rfind(" at Line: ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// How deep types may nest (`ARRAY<ARRAY<...>>`): the parser recurses once per level, and a
/// request must not be able to exhaust a thread's stack.
const MAX_TYPE_DEPTH: usize = 64;

/// The words that end a relation in `FROM` / `JOIN` (so they are not taken as its alias).
const CLAUSES: &[&str] = &[
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "WINDOW",
    "WHERE",
    "GROUP",
    "HAVING",
    "PARTITION",
    "EMIT",
    "LIMIT",
    "ON",
    "WITHIN",
];

struct StatementParser<'a> {
    p: Parser<'a>,
    sql: &'a str,
    lines: Vec<usize>,
    /// `>`s still owed by a `>>` token (nested `ARRAY<ARRAY<INT>>`).
    pending_gt: usize,
}

impl StatementParser<'_> {
    /// The byte offset of `at` in the statement text.
    fn offset(&self, at: Location) -> usize {
        let line = (at.line.max(1) - 1) as usize;
        let Some(&start) = self.lines.get(line) else {
            return self.sql.len();
        };
        let rest = &self.sql[start..];
        rest.char_indices()
            .nth((at.column.max(1) - 1) as usize)
            .map_or(self.sql.len(), |(i, _)| start + i)
    }

    fn error_at(&self, token: &TokenWithSpan, message: impl Into<String>) -> KsqlError {
        let at = token.span.start;
        if token.token == Token::EOF {
            // The end of the input: the position just past its last character.
            let line = self.lines.len() as u64;
            let last = self.sql[self.lines[self.lines.len() - 1]..].chars().count() as u64;
            return KsqlError::parse(line, last + 1, message);
        }
        KsqlError::parse(at.line, at.column, message)
    }

    /// An error at the next token: "expected X, found 'Y'".
    fn expected(&self, what: &str) -> KsqlError {
        let found = self.p.peek_token();
        let shown = match &found.token {
            Token::EOF => "the end of the statement".to_string(),
            token => format!("'{token}'"),
        };
        self.error_at(&found, format!("expected {what}, found {shown}"))
    }

    /// sqlparser's error, at the token it stopped on.
    fn sqlparser_error(&self, err: ParserError) -> KsqlError {
        let message = match &err {
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
            ParserError::RecursionLimitExceeded => "the statement nests too deeply".to_string(),
        };
        // sqlparser says where as text; take it from there when it does.
        if let Some(at) = message.rfind(" at Line: ") {
            let place = &message[at + " at Line: ".len()..];
            if let Some((line, column)) = place.split_once(", Column: ") {
                if let (Ok(line), Ok(column)) = (line.trim().parse(), column.trim().parse()) {
                    return KsqlError::parse(line, column, strip_location(&message));
                }
            }
        }
        let token = self.p.peek_token();
        self.error_at(&token, message)
    }

    /// The next token's word (upper-cased), if it is an unquoted word.
    fn peek_word(&self) -> Option<String> {
        self.word_at(0)
    }

    fn word_at(&self, n: usize) -> Option<String> {
        match self.p.peek_nth_token(n).token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn peek_is(&self, word: &str) -> bool {
        self.peek_word().as_deref() == Some(word)
    }

    /// Takes `word` if it is next.
    fn eat(&mut self, word: &str) -> bool {
        if self.peek_is(word) {
            self.p.next_token();
            true
        } else {
            false
        }
    }

    /// Takes `words` if they are next, in order.
    fn eat_all(&mut self, words: &[&str]) -> bool {
        let matches = words
            .iter()
            .enumerate()
            .all(|(n, w)| self.word_at(n).as_deref() == Some(*w));
        if matches {
            for _ in words {
                self.p.next_token();
            }
        }
        matches
    }

    fn expect(&mut self, word: &str) -> Result<()> {
        if self.eat(word) {
            Ok(())
        } else {
            Err(self.expected(word))
        }
    }

    fn expect_token(&mut self, token: Token, shown: &str) -> Result<()> {
        if self.p.consume_token(&token) {
            Ok(())
        } else {
            Err(self.expected(shown))
        }
    }

    fn identifier(&mut self) -> Result<Ident> {
        match self.p.peek_token().token {
            Token::Word(_) => self
                .p
                .parse_identifier()
                .map_err(|e| self.sqlparser_error(e)),
            _ => Err(self.expected("an identifier")),
        }
    }

    fn string(&mut self) -> Result<String> {
        match self.p.peek_token().token {
            Token::SingleQuotedString(s) => {
                self.p.next_token();
                Ok(s)
            }
            _ => Err(self.expected("a quoted string")),
        }
    }

    fn number(&mut self) -> Result<u64> {
        match self.p.peek_token().token {
            Token::Number(n, _) => match n.parse() {
                Ok(v) => {
                    self.p.next_token();
                    Ok(v)
                }
                Err(_) => Err(self.expected("a whole number")),
            },
            _ => Err(self.expected("a number")),
        }
    }

    fn expr(&mut self) -> Result<Expr> {
        self.p.parse_expr().map_err(|e| self.sqlparser_error(e))
    }

    fn exprs(&mut self) -> Result<Vec<Expr>> {
        let mut out = vec![self.expr()?];
        while self.p.consume_token(&Token::Comma) {
            out.push(self.expr()?);
        }
        Ok(out)
    }

    fn statement(&mut self) -> Result<Statement> {
        let Some(word) = self.peek_word() else {
            return Err(self.expected("a statement"));
        };
        match word.as_str() {
            "CREATE" => self.create(),
            "INSERT" => self.insert(),
            "SELECT" => Ok(Statement::Query(Box::new(self.query()?))),
            "DROP" => self.drop(),
            "ALTER" => self.alter(),
            "SHOW" | "LIST" => self.show(),
            "DESCRIBE" => self.describe(),
            "EXPLAIN" => self.explain(),
            "PRINT" => self.print(),
            "SET" => {
                self.p.next_token();
                let name = self.string()?;
                self.expect_token(Token::Eq, "'='")?;
                let value = self.string()?;
                Ok(Statement::Set { name, value })
            }
            "UNSET" => {
                self.p.next_token();
                Ok(Statement::Unset(self.string()?))
            }
            "DEFINE" => {
                self.p.next_token();
                let name = self.identifier()?.value;
                self.expect_token(Token::Eq, "'='")?;
                let value = self.string()?;
                Ok(Statement::Define { name, value })
            }
            "UNDEFINE" => {
                self.p.next_token();
                Ok(Statement::Undefine(self.identifier()?.value))
            }
            "RUN" => {
                self.p.next_token();
                self.expect("SCRIPT")?;
                Ok(Statement::RunScript(self.string()?))
            }
            "TERMINATE" => {
                self.p.next_token();
                if self.eat("ALL") {
                    Ok(Statement::Terminate(None))
                } else {
                    Ok(Statement::Terminate(Some(self.identifier()?.value)))
                }
            }
            _ => Err(self.expected(
                "a statement (CREATE, INSERT, SELECT, DROP, ALTER, SHOW, LIST, DESCRIBE, EXPLAIN, PRINT, SET, UNSET, DEFINE, UNDEFINE, RUN SCRIPT, TERMINATE)",
            )),
        }
    }

    fn source_kind(&mut self, after: &str) -> Result<SourceKind> {
        if self.eat("STREAM") {
            Ok(SourceKind::Stream)
        } else if self.eat("TABLE") {
            Ok(SourceKind::Table)
        } else {
            Err(self.expected(&format!("STREAM or TABLE after {after}")))
        }
    }

    fn create(&mut self) -> Result<Statement> {
        self.expect("CREATE")?;
        let or_replace = self.eat_all(&["OR", "REPLACE"]);
        if self.eat("TYPE") {
            let if_not_exists = self.eat_all(&["IF", "NOT", "EXISTS"]);
            let name = self.identifier()?;
            self.expect("AS")?;
            let ty = self.sql_type()?;
            return Ok(Statement::CreateType {
                name,
                if_not_exists,
                ty,
            });
        }
        let source = self.eat("SOURCE");
        let kind = if self.peek_is("STREAM") || self.peek_is("TABLE") {
            self.source_kind("CREATE")?
        } else {
            return Err(self.expected("STREAM, TABLE or TYPE after CREATE"));
        };
        let if_not_exists = self.eat_all(&["IF", "NOT", "EXISTS"]);
        let name = self.identifier()?;
        let columns = if self.p.peek_token().token == Token::LParen {
            self.columns()?
        } else {
            Vec::new()
        };
        let properties = self.properties()?;
        if self.peek_is("AS") {
            if source {
                return Err(self.expected(
                    "WITH (...) or the end of the statement: a SOURCE stream or table cannot be created AS SELECT",
                ));
            }
            if !columns.is_empty() {
                return Err(self.expected(
                    "the end of the statement: a stream or table created AS SELECT takes its columns from the query",
                ));
            }
            self.p.next_token();
            let query = Box::new(self.query()?);
            return Ok(Statement::CreateAsSelect(CreateAsSelect {
                kind,
                name,
                or_replace,
                if_not_exists,
                properties,
                query,
            }));
        }
        Ok(Statement::CreateSource(CreateSource {
            kind,
            name,
            or_replace,
            if_not_exists,
            source,
            columns,
            properties,
        }))
    }

    /// `(name type [KEY | PRIMARY KEY | HEADERS | HEADER('k')], ...)`.
    fn columns(&mut self) -> Result<Vec<ColumnDef>> {
        self.expect_token(Token::LParen, "'('")?;
        let mut columns = Vec::new();
        loop {
            let name = self.identifier()?;
            let ty = self.sql_type()?;
            let constraint = if self.eat_all(&["PRIMARY", "KEY"]) {
                ColumnConstraint::PrimaryKey
            } else if self.eat("KEY") {
                ColumnConstraint::Key
            } else if self.eat("HEADERS") {
                ColumnConstraint::Headers
            } else if self.eat("HEADER") {
                self.expect_token(Token::LParen, "'('")?;
                let key = self.string()?;
                self.expect_token(Token::RParen, "')'")?;
                ColumnConstraint::Header(key)
            } else {
                ColumnConstraint::None
            };
            columns.push(ColumnDef {
                name,
                ty,
                constraint,
            });
            if !self.p.consume_token(&Token::Comma) {
                break;
            }
        }
        self.expect_token(Token::RParen, "',' or ')'")?;
        Ok(columns)
    }

    /// A type: ksqlDB's names, `ARRAY<T>`, `MAP<K, V>`, `STRUCT<name T, ...>`, `DECIMAL(p, s)`
    /// or a type made with `CREATE TYPE`.
    fn sql_type(&mut self) -> Result<SqlType> {
        self.pending_gt = 0;
        let ty = self.nested_type(0)?;
        if self.pending_gt > 0 {
            // `ARRAY<INT>>`: the second `>` of the `>>` closes nothing.
            let token = self.p.get_current_token().clone();
            return Err(self.error_at(&token, "expected the end of the type, found '>'"));
        }
        Ok(ty)
    }

    /// A type inside `depth` others.
    fn nested_type(&mut self, depth: usize) -> Result<SqlType> {
        if depth >= MAX_TYPE_DEPTH {
            return Err(self.expected(&format!("a type nested at most {MAX_TYPE_DEPTH} deep")));
        }
        let Some(word) = self.peek_word() else {
            return match self.p.peek_token().token {
                Token::Word(_) => Ok(SqlType::Named(self.identifier()?.value)),
                _ => Err(self.expected("a type")),
            };
        };
        self.p.next_token();
        Ok(match word.as_str() {
            "BOOLEAN" => SqlType::Boolean,
            "INT" | "INTEGER" => SqlType::Int,
            "BIGINT" => SqlType::Bigint,
            "DOUBLE" => SqlType::Double,
            "STRING" => SqlType::String,
            "VARCHAR" => {
                // VARCHAR(n): ksqlDB ignores the length.
                if self.p.consume_token(&Token::LParen) {
                    self.number()?;
                    self.expect_token(Token::RParen, "')'")?;
                }
                SqlType::String
            }
            "BYTES" => SqlType::Bytes,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            "TIMESTAMP" => SqlType::Timestamp,
            "DECIMAL" => {
                self.expect_token(Token::LParen, "'(' and the decimal's precision")?;
                let precision = self.number()?;
                self.expect_token(Token::Comma, "',' and the decimal's scale")?;
                let scale = self.number()?;
                self.expect_token(Token::RParen, "')'")?;
                if precision == 0 || precision > 1000 || scale > precision {
                    return Err(KsqlError::parse(
                        self.p.peek_token().span.start.line,
                        self.p.peek_token().span.start.column,
                        format!("DECIMAL({precision}, {scale}): the precision must be 1 to 1000 and the scale at most the precision"),
                    ));
                }
                SqlType::Decimal {
                    precision: precision as u32,
                    scale: scale as u32,
                }
            }
            "ARRAY" => {
                self.expect_token(Token::Lt, "'<'")?;
                let item = self.nested_type(depth + 1)?;
                self.close_angle()?;
                SqlType::Array(Box::new(item))
            }
            "MAP" => {
                self.expect_token(Token::Lt, "'<'")?;
                let key = self.nested_type(depth + 1)?;
                self.expect_token(Token::Comma, "','")?;
                let value = self.nested_type(depth + 1)?;
                self.close_angle()?;
                SqlType::Map(Box::new(key), Box::new(value))
            }
            "STRUCT" => {
                self.expect_token(Token::Lt, "'<'")?;
                let mut fields = Vec::new();
                // STRUCT<> has no fields.
                if !self.try_close_angle() {
                    loop {
                        // ksqlDB upper-cases unquoted field names, as column names.
                        let ident = self.identifier()?;
                        let name = match ident.quote_style {
                            Some(_) => ident.value,
                            None => ident.value.to_ascii_uppercase(),
                        };
                        let ty = self.nested_type(depth + 1)?;
                        fields.push((name, ty));
                        if !self.p.consume_token(&Token::Comma) {
                            break;
                        }
                    }
                    self.close_angle()?;
                }
                SqlType::Struct(fields)
            }
            _ => {
                self.p.prev_token();
                SqlType::Named(self.identifier()?.value)
            }
        })
    }

    /// Takes a `>` (one half of a `>>`, which the tokenizer reads as a shift).
    fn try_close_angle(&mut self) -> bool {
        if self.pending_gt > 0 {
            self.pending_gt -= 1;
            return true;
        }
        if self.p.consume_token(&Token::Gt) {
            return true;
        }
        if self.p.consume_token(&Token::ShiftRight) {
            self.pending_gt += 1;
            return true;
        }
        false
    }

    fn close_angle(&mut self) -> Result<()> {
        if self.try_close_angle() {
            Ok(())
        } else {
            Err(self.expected("'>'"))
        }
    }

    /// `[WITH (NAME = value, ...)]`.
    fn properties(&mut self) -> Result<Properties> {
        let mut properties = Properties::default();
        if !self.eat("WITH") {
            return Ok(properties);
        }
        self.expect_token(Token::LParen, "'('")?;
        loop {
            let name = match self.p.peek_token().token {
                Token::SingleQuotedString(s) => {
                    self.p.next_token();
                    s
                }
                _ => self.identifier()?.value,
            }
            .to_ascii_uppercase();
            self.expect_token(Token::Eq, "'='")?;
            let value = match self.p.next_token().token {
                Token::SingleQuotedString(s) => PropertyValue::String(s),
                Token::Number(n, _) => PropertyValue::Number(n),
                Token::Word(w) if w.value.eq_ignore_ascii_case("true") => {
                    PropertyValue::Boolean(true)
                }
                Token::Word(w) if w.value.eq_ignore_ascii_case("false") => {
                    PropertyValue::Boolean(false)
                }
                _ => {
                    self.p.prev_token();
                    return Err(self.expected(&format!(
                        "a value for {name} (a quoted string, a number, true or false)"
                    )));
                }
            };
            if properties.get(&name).is_some() {
                self.p.prev_token();
                return Err(self.expected(&format!("{name} once, not twice")));
            }
            properties.0.push((name, value));
            if !self.p.consume_token(&Token::Comma) {
                break;
            }
        }
        self.expect_token(Token::RParen, "',' or ')'")?;
        Ok(properties)
    }

    fn insert(&mut self) -> Result<Statement> {
        self.expect("INSERT")?;
        self.expect("INTO")?;
        let target = self.identifier()?;
        if self.peek_is("SELECT") || self.peek_is("WITH") {
            let properties = self.properties()?;
            let query = Box::new(self.query()?);
            return Ok(Statement::InsertSelect {
                target,
                properties,
                query,
            });
        }
        let mut columns = Vec::new();
        if self.p.consume_token(&Token::LParen) {
            loop {
                columns.push(self.identifier()?);
                if !self.p.consume_token(&Token::Comma) {
                    break;
                }
            }
            self.expect_token(Token::RParen, "',' or ')'")?;
        }
        self.expect("VALUES")?;
        self.expect_token(Token::LParen, "'('")?;
        let values = self.exprs()?;
        self.expect_token(Token::RParen, "',' or ')'")?;
        Ok(Statement::InsertValues {
            target,
            columns,
            values,
        })
    }

    fn query(&mut self) -> Result<Query> {
        self.expect("SELECT")?;
        let projection = self
            .p
            .parse_projection()
            .map_err(|e| self.sqlparser_error(e))?;
        self.expect("FROM")?;
        let from = self.relation()?;
        let mut joins = Vec::new();
        loop {
            let kind = if self.eat("JOIN") || self.eat_all(&["INNER", "JOIN"]) {
                JoinKind::Inner
            } else if self.eat_all(&["LEFT", "JOIN"]) || self.eat_all(&["LEFT", "OUTER", "JOIN"]) {
                JoinKind::Left
            } else if self.eat_all(&["RIGHT", "JOIN"]) || self.eat_all(&["RIGHT", "OUTER", "JOIN"])
            {
                JoinKind::Right
            } else if self.eat_all(&["FULL", "JOIN"]) || self.eat_all(&["FULL", "OUTER", "JOIN"]) {
                JoinKind::Full
            } else {
                break;
            };
            let relation = self.relation()?;
            let within = if self.eat("WITHIN") {
                Some(self.within()?)
            } else {
                None
            };
            self.expect("ON")?;
            let on = self.expr()?;
            joins.push(Join {
                kind,
                relation,
                within,
                on,
            });
        }
        let window = if self.eat("WINDOW") {
            Some(self.window()?)
        } else {
            None
        };
        let selection = if self.eat("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let group_by = if self.eat_all(&["GROUP", "BY"]) {
            self.exprs()?
        } else {
            Vec::new()
        };
        let having = if self.eat("HAVING") {
            Some(self.expr()?)
        } else {
            None
        };
        let partition_by = if self.eat_all(&["PARTITION", "BY"]) {
            self.exprs()?
        } else {
            Vec::new()
        };
        let emit = if self.eat("EMIT") {
            if self.eat("CHANGES") {
                Some(Emit::Changes)
            } else if self.eat("FINAL") {
                Some(Emit::Final)
            } else {
                return Err(self.expected("CHANGES or FINAL after EMIT"));
            }
        } else {
            None
        };
        let limit = if self.eat("LIMIT") {
            Some(self.number()?)
        } else {
            None
        };
        Ok(Query {
            projection,
            from,
            joins,
            window,
            selection,
            group_by,
            having,
            partition_by,
            emit,
            limit,
        })
    }

    fn relation(&mut self) -> Result<Relation> {
        let name = self.identifier()?;
        let alias = if self.eat("AS") {
            Some(self.identifier()?)
        } else {
            match self.p.peek_token().token {
                Token::Word(w)
                    if w.quote_style.is_some()
                        || !CLAUSES.contains(&w.value.to_ascii_uppercase().as_str()) =>
                {
                    Some(self.identifier()?)
                }
                _ => None,
            }
        };
        Ok(Relation { name, alias })
    }

    /// `n unit`.
    fn duration(&mut self) -> Result<Duration> {
        let n = self.number()?;
        let Some(unit) = self.peek_word() else {
            return Err(self.expected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)"));
        };
        let ms: u64 = match unit.as_str() {
            "MILLISECOND" | "MILLISECONDS" => 1,
            "SECOND" | "SECONDS" => 1000,
            "MINUTE" | "MINUTES" => 60_000,
            "HOUR" | "HOURS" => 3_600_000,
            "DAY" | "DAYS" => 86_400_000,
            _ => {
                return Err(
                    self.expected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")
                )
            }
        };
        self.p.next_token();
        Ok(Duration::from_millis(n.saturating_mul(ms)))
    }

    /// After `WITHIN`: `n unit` or `(before, after)`, then `[GRACE PERIOD n unit]`.
    fn within(&mut self) -> Result<Within> {
        let (before, after) = if self.p.consume_token(&Token::LParen) {
            let before = self.duration()?;
            self.expect_token(Token::Comma, "','")?;
            let after = self.duration()?;
            self.expect_token(Token::RParen, "')'")?;
            (before, after)
        } else {
            let both = self.duration()?;
            (both, both)
        };
        let grace = if self.eat_all(&["GRACE", "PERIOD"]) {
            Some(self.duration()?)
        } else {
            None
        };
        Ok(Within {
            before,
            after,
            grace,
        })
    }

    /// After `WINDOW`: `TUMBLING|HOPPING|SESSION (...)`.
    fn window(&mut self) -> Result<Window> {
        let Some(kind) = self.peek_word() else {
            return Err(self.expected("TUMBLING, HOPPING or SESSION"));
        };
        if !matches!(kind.as_str(), "TUMBLING" | "HOPPING" | "SESSION") {
            return Err(self.expected("TUMBLING, HOPPING or SESSION"));
        }
        self.p.next_token();
        self.expect_token(Token::LParen, "'('")?;
        let kind = match kind.as_str() {
            "TUMBLING" => {
                self.expect("SIZE")?;
                WindowKind::Tumbling {
                    size: self.duration()?,
                }
            }
            "HOPPING" => {
                self.expect("SIZE")?;
                let size = self.duration()?;
                self.expect_token(Token::Comma, "',' and ADVANCE BY")?;
                self.expect("ADVANCE")?;
                self.expect("BY")?;
                WindowKind::Hopping {
                    size,
                    advance: self.duration()?,
                }
            }
            _ => WindowKind::Session {
                gap: self.duration()?,
            },
        };
        let mut window = Window {
            kind,
            retention: None,
            grace: None,
        };
        while self.p.consume_token(&Token::Comma) {
            if self.eat("RETENTION") && window.retention.is_none() {
                window.retention = Some(self.duration()?);
            } else if self.eat_all(&["GRACE", "PERIOD"]) && window.grace.is_none() {
                window.grace = Some(self.duration()?);
            } else {
                return Err(self.expected("RETENTION or GRACE PERIOD (each once)"));
            }
        }
        self.expect_token(Token::RParen, "',' or ')'")?;
        Ok(window)
    }

    fn drop(&mut self) -> Result<Statement> {
        self.expect("DROP")?;
        if self.eat("TYPE") {
            let if_exists = self.eat_all(&["IF", "EXISTS"]);
            return Ok(Statement::DropType {
                if_exists,
                name: self.identifier()?,
            });
        }
        let kind = self.source_kind("DROP")?;
        let if_exists = self.eat_all(&["IF", "EXISTS"]);
        let name = self.identifier()?;
        let delete_topic = self.eat_all(&["DELETE", "TOPIC"]);
        Ok(Statement::Drop {
            kind,
            name,
            if_exists,
            delete_topic,
        })
    }

    fn alter(&mut self) -> Result<Statement> {
        self.expect("ALTER")?;
        let kind = self.source_kind("ALTER")?;
        let name = self.identifier()?;
        let mut columns = Vec::new();
        loop {
            self.expect("ADD")?;
            self.eat("COLUMN");
            let column = self.identifier()?;
            let ty = self.sql_type()?;
            columns.push(ColumnDef {
                name: column,
                ty,
                constraint: ColumnConstraint::None,
            });
            if !self.p.consume_token(&Token::Comma) {
                break;
            }
        }
        Ok(Statement::Alter {
            kind,
            name,
            columns,
        })
    }

    fn show(&mut self) -> Result<Statement> {
        self.p.next_token();
        let what = match self.peek_word().as_deref() {
            Some("STREAMS") => Listing::Streams,
            Some("TABLES") => Listing::Tables,
            Some("QUERIES") => Listing::Queries,
            Some("TOPICS") => Listing::Topics { all: false },
            Some("ALL") if self.word_at(1).as_deref() == Some("TOPICS") => {
                self.p.next_token();
                Listing::Topics { all: true }
            }
            Some("PROPERTIES") => Listing::Properties,
            Some("FUNCTIONS") => Listing::Functions,
            Some("TYPES") => Listing::Types,
            Some("VARIABLES") => Listing::Variables,
            Some("CONNECTORS") => Listing::Connectors,
            _ => {
                return Err(self.expected(
                    "STREAMS, TABLES, QUERIES, [ALL] TOPICS, PROPERTIES, FUNCTIONS, TYPES, VARIABLES or CONNECTORS",
                ))
            }
        };
        self.p.next_token();
        let extended = self.eat("EXTENDED");
        Ok(Statement::Show { what, extended })
    }

    fn describe(&mut self) -> Result<Statement> {
        self.expect("DESCRIBE")?;
        if self.eat("FUNCTION") {
            return Ok(Statement::DescribeFunction(self.identifier()?));
        }
        let mut extended = self.eat("EXTENDED");
        let (name, all) = if self.eat("STREAMS") {
            (None, Some(SourceKind::Stream))
        } else if self.eat("TABLES") {
            (None, Some(SourceKind::Table))
        } else {
            (Some(self.identifier()?), None)
        };
        extended |= self.eat("EXTENDED");
        Ok(Statement::Describe {
            name,
            all,
            extended,
        })
    }

    fn explain(&mut self) -> Result<Statement> {
        self.expect("EXPLAIN")?;
        match self.peek_word().as_deref() {
            Some("SELECT" | "CREATE" | "INSERT") => Ok(Statement::Explain(Explained::Statement(
                Box::new(self.statement()?),
            ))),
            _ => Ok(Statement::Explain(Explained::QueryId(
                self.identifier()?.value,
            ))),
        }
    }

    fn print(&mut self) -> Result<Statement> {
        self.expect("PRINT")?;
        let topic = match self.p.peek_token().token {
            Token::SingleQuotedString(s) => {
                self.p.next_token();
                s
            }
            _ => self.identifier()?.value,
        };
        let from_beginning = self.eat_all(&["FROM", "BEGINNING"]);
        let mut interval = None;
        let mut limit = None;
        loop {
            if interval.is_none() && (self.eat("INTERVAL") || self.eat("SAMPLE")) {
                interval = Some(self.number()?);
            } else if limit.is_none() && self.eat("LIMIT") {
                limit = Some(self.number()?);
            } else {
                break;
            }
        }
        Ok(Statement::Print {
            topic,
            from_beginning,
            interval,
            limit,
        })
    }
}

#[cfg(test)]
mod tests;
