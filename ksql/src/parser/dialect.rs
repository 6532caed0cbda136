//! ksqlDB's lexical rules for sqlparser's tokenizer and expression parser.

use sqlparser::dialect::Dialect;

/// ksqlDB's dialect: identifiers quoted with backticks or double quotes (its grammar's
/// `BACKQUOTED_IDENTIFIER` and `QUOTED_IDENTIFIER`), `=>` for lambdas' named arguments, `->`
/// for struct fields.
#[derive(Debug, Default, Clone, Copy)]
pub struct KsqlDialect;

impl Dialect for KsqlDialect {
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || ch == '"'
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '@'
    }

    fn identifier_quote_style(&self, _identifier: &str) -> Option<char> {
        Some('`')
    }

    fn supports_named_fn_args_with_rarrow_operator(&self) -> bool {
        true
    }

    /// `->` (a struct field) binds as tightly as `.`: `s->a = 1` is `(s->a) = 1` (sqlparser
    /// gives PostgreSQL's JSON arrow a precedence below comparisons).
    fn get_next_precedence(
        &self,
        parser: &sqlparser::parser::Parser,
    ) -> Option<Result<u8, sqlparser::parser::ParserError>> {
        (parser.peek_token().token == sqlparser::tokenizer::Token::Arrow)
            .then(|| Ok(self.prec_value(sqlparser::dialect::Precedence::Period)))
    }
}
