//! `RegexRouter`: renames topics that match a regex.

use regex::Regex;

use super::{TransformConfig, Transformation};
use crate::error::Result;
use crate::record::ConnectRecord;

/// Kafka's `RegexRouter`: a topic that `regex` matches as a whole (Java's `Matcher.matches`)
/// becomes `replacement`, with Java's `$1` / `${name}` group references; other topics are
/// left alone.
pub struct RegexRouter {
    regex: Regex,
    replacement: String,
}

impl RegexRouter {
    /// From `regex` and `replacement` (both required).
    pub fn new(config: &TransformConfig) -> Result<RegexRouter> {
        let pattern = config.required("regex")?;
        let regex = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| config.error("regex", pattern, &format!("not a valid regex: {e}")))?;
        let java = config
            .get("replacement")
            .ok_or_else(|| config.error("replacement", "", "is required"))?;
        let replacement = java_replacement(java, &regex)
            .map_err(|reason| config.error("replacement", java, &reason))?;
        Ok(RegexRouter { regex, replacement })
    }
}

/// A Java `Matcher.replaceFirst` replacement in the regex crate's syntax: `$n` takes as many
/// digits as still name a group (as Java does), `\x` is a literal `x`, and `$` is escaped.
fn java_replacement(java: &str, regex: &Regex) -> Result<String, String> {
    let groups = regex.captures_len() - 1;
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => return Err("ends with an escaping backslash".into()),
            },
            '$' => match chars.next() {
                Some('{') => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if !regex.capture_names().flatten().any(|n| n == name) {
                        return Err(format!("the regex has no group named {name:?}"));
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                Some(digit @ '0'..='9') => {
                    let mut group = digit.to_digit(10).unwrap_or(0) as usize;
                    while let Some(next) = chars.peek().and_then(|c| c.to_digit(10)) {
                        let longer = group * 10 + next as usize;
                        if longer > groups {
                            break;
                        }
                        group = longer;
                        chars.next();
                    }
                    if group > groups {
                        return Err(format!("the regex has no group {group}"));
                    }
                    out.push_str(&format!("${{{group}}}"));
                }
                _ => return Err("`$` must be followed by a group number or {name}".into()),
            },
            other => out.push(other),
        }
    }
    Ok(out)
}

impl Transformation for RegexRouter {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        if let Some(captures) = self.regex.captures(&record.topic) {
            let mut topic = String::new();
            captures.expand(&self.replacement, &mut topic);
            record.topic = topic;
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_config;
    use super::*;
    use crate::data::{Schema, Type, Value};

    fn route(regex: &str, replacement: &str, topic: &str) -> String {
        let router = RegexRouter::new(&test_config(&[
            ("regex", regex),
            ("replacement", replacement),
        ]))
        .unwrap();
        let record = ConnectRecord::new(topic, Some(Schema::primitive(Type::String)), "v".into());
        let out = router.apply(record).unwrap().unwrap();
        assert_eq!(out.value, Value::String("v".into()));
        out.topic
    }

    #[test]
    fn whole_matches_are_replaced_with_java_group_references() {
        assert_eq!(route("(.*)", "copy-$1", "orders"), "copy-orders");
        assert_eq!(route(r"(\w+)\.(\w+)", "$2_$1", "db.users"), "users_db");
        // Only a whole match counts: `ord` is in `orders` but does not match it.
        assert_eq!(route("ord", "x", "orders"), "orders");
        // `$12` with one group is group 1 then `2`; `\$` is a dollar.
        assert_eq!(route("(a)", r"$12\$", "a"), "a2$");
        assert_eq!(
            route("(?P<t>.+)-raw", "${t}-clean", "clicks-raw"),
            "clicks-clean"
        );
    }

    #[test]
    fn bad_regexes_and_replacements_are_config_errors() {
        let err = RegexRouter::new(&test_config(&[("regex", "("), ("replacement", "x")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("transforms.t.regex"), "{err}");
        for bad in ["$2", "$x", "${nope}", "tail\\"] {
            let err = RegexRouter::new(&test_config(&[("regex", "(a)"), ("replacement", bad)]))
                .err()
                .unwrap();
            assert!(
                err.to_string().contains("transforms.t.replacement"),
                "{err}"
            );
        }
        assert!(RegexRouter::new(&test_config(&[("regex", "a")])).is_err());
    }
}
