//! The two filter languages: `TMV1-Query` for search (`field:value`, `and` / `or` / `not` in any
//! case, parentheses, `*`) and `TMV1-Filter` for Workbench alerts (`field eq 'value'`,
//! `field contains 'value'`, `and` / `or` / `not`, parentheses).

use serde_json::Value;

/// A parsed `TMV1-Query`.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// `*`: every record.
    All,
    /// `field:value`: a substring match (case-insensitive), or a whole-value match for ports and
    /// hashes; on a list field, any element may match.
    Term {
        field: String,
        value: String,
        exact: bool,
    },
    Not(Box<Query>),
    And(Vec<Query>),
    Or(Vec<Query>),
}

/// Search fields matched whole rather than in part: ports and every hash.
fn is_exact_field(field: &str) -> bool {
    matches!(field, "dpt" | "spt" | "objectPort") || field.to_ascii_lowercase().contains("hash")
}

impl Query {
    pub fn parse(text: &str) -> Result<Query, String> {
        let tokens = tokenize(text, '"')?;
        let mut parser = Parser { tokens, at: 0 };
        let query = parser.or(&|parser: &mut Parser| parser.query_primary())?;
        match parser.tokens.get(parser.at) {
            None => Ok(query),
            Some(token) => Err(format!("unexpected `{}`", token.text())),
        }
    }

    pub fn matches(&self, record: &Value) -> bool {
        match self {
            Query::All => true,
            Query::Term {
                field,
                value,
                exact,
            } => {
                field_value(record, field).is_some_and(|found| value_matches(found, value, *exact))
            }
            Query::Not(inner) => !inner.matches(record),
            Query::And(all) => all.iter().all(|query| query.matches(record)),
            Query::Or(any) => any.iter().any(|query| query.matches(record)),
        }
    }
}

/// A top-level field, by exact name or else case-insensitively.
fn field_value<'a>(record: &'a Value, field: &str) -> Option<&'a Value> {
    let object = record.as_object()?;
    object.get(field).or_else(|| {
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(field))
            .map(|(_, value)| value)
    })
}

fn value_matches(found: &Value, wanted: &str, exact: bool) -> bool {
    let text = match found {
        Value::Array(items) => return items.iter().any(|item| value_matches(item, wanted, exact)),
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Null | Value::Object(_) => return false,
    };
    if wanted == "*" {
        return true;
    }
    if exact {
        text.eq_ignore_ascii_case(wanted)
    } else {
        text.to_lowercase().contains(&wanted.to_lowercase())
    }
}

/// A parsed `TMV1-Filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Eq(String, String),
    Contains(String, String),
    Not(Box<Filter>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let tokens = tokenize(text, '\'')?;
        let mut parser = Parser { tokens, at: 0 };
        let filter = parser.or(&|parser: &mut Parser| parser.filter_primary())?;
        match parser.tokens.get(parser.at) {
            None => Ok(filter),
            Some(token) => Err(format!("unexpected `{}`", token.text())),
        }
    }

    pub fn matches(&self, alert: &Value) -> bool {
        match self {
            Filter::Eq(field, wanted) => alert_values(alert, field)
                .iter()
                .any(|value| value.eq_ignore_ascii_case(wanted)),
            Filter::Contains(field, wanted) => {
                let wanted = wanted.to_lowercase();
                alert_values(alert, field)
                    .iter()
                    .any(|value| value.to_lowercase().contains(&wanted))
            }
            Filter::Not(inner) => !inner.matches(alert),
            Filter::And(all) => all.iter().all(|filter| filter.matches(alert)),
            Filter::Or(any) => any.iter().any(|filter| filter.matches(alert)),
        }
    }
}

/// The texts a filter field stands for in an alert.
fn alert_values(alert: &Value, field: &str) -> Vec<String> {
    let mut values = Vec::new();
    match field {
        "impactScopeEntityValue" => {
            for entity in alert["impactScope"]["entities"]
                .as_array()
                .into_iter()
                .flatten()
            {
                collect_texts(&entity["entityValue"], &mut values);
            }
        }
        "indicatorValue" => {
            for indicator in alert["indicators"].as_array().into_iter().flatten() {
                collect_texts(&indicator["value"], &mut values);
            }
        }
        _ => collect_texts(&alert[field], &mut values),
    }
    values
}

fn collect_texts(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(text) => into.push(text.clone()),
        Value::Number(number) => into.push(number.to_string()),
        Value::Bool(flag) => into.push(flag.to_string()),
        Value::Array(items) => items.iter().for_each(|item| collect_texts(item, into)),
        Value::Object(fields) => fields.values().for_each(|item| collect_texts(item, into)),
        Value::Null => {}
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    /// A word, quotes kept (`field:"a b"`), or a quoted string (`'high'`) with its quotes.
    Word(String),
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Token::Open => "(",
            Token::Close => ")",
            Token::Word(word) => word,
        }
    }

    fn keyword(&self, keyword: &str) -> bool {
        matches!(self, Token::Word(word) if word.eq_ignore_ascii_case(keyword))
    }
}

fn tokenize(text: &str, quote: char) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' {
                        break;
                    }
                    chars.next();
                    word.push(c);
                    if c == quote {
                        // A quoted part runs to the next quote, spaces and parentheses included.
                        loop {
                            match chars.next() {
                                Some(c) if c == quote => {
                                    word.push(c);
                                    break;
                                }
                                Some(c) => word.push(c),
                                None => return Err("unterminated quote".into()),
                            }
                        }
                    }
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    if tokens.is_empty() {
        return Err("empty query".into());
    }
    Ok(tokens)
}

fn unquote(text: &str, quote: char) -> &str {
    text.strip_prefix(quote)
        .and_then(|inner| inner.strip_suffix(quote))
        .unwrap_or(text)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

type Primary<T> = dyn Fn(&mut Parser) -> Result<T, String>;

trait Combine: Sized {
    fn not(inner: Self) -> Self;
    fn and(all: Vec<Self>) -> Self;
    fn or(any: Vec<Self>) -> Self;
}

impl Combine for Query {
    fn not(inner: Self) -> Self {
        Query::Not(Box::new(inner))
    }
    fn and(all: Vec<Self>) -> Self {
        Query::And(all)
    }
    fn or(any: Vec<Self>) -> Self {
        Query::Or(any)
    }
}

impl Combine for Filter {
    fn not(inner: Self) -> Self {
        Filter::Not(Box::new(inner))
    }
    fn and(all: Vec<Self>) -> Self {
        Filter::And(all)
    }
    fn or(any: Vec<Self>) -> Self {
        Filter::Or(any)
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn or<T: Combine>(&mut self, primary: &Primary<T>) -> Result<T, String> {
        let mut any = vec![self.and(primary)?];
        while self.peek().is_some_and(|token| token.keyword("or")) {
            self.at += 1;
            any.push(self.and(primary)?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            T::or(any)
        })
    }

    fn and<T: Combine>(&mut self, primary: &Primary<T>) -> Result<T, String> {
        let mut all = vec![self.not(primary)?];
        while self.peek().is_some_and(|token| token.keyword("and")) {
            self.at += 1;
            all.push(self.not(primary)?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            T::and(all)
        })
    }

    fn not<T: Combine>(&mut self, primary: &Primary<T>) -> Result<T, String> {
        if self.peek().is_some_and(|token| token.keyword("not")) {
            self.at += 1;
            return Ok(T::not(self.not(primary)?));
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or(primary)?;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                _ => Err("missing `)`".into()),
            };
        }
        primary(self)
    }

    fn query_primary(&mut self) -> Result<Query, String> {
        match self.next() {
            Some(Token::Word(word)) if word == "*" => Ok(Query::All),
            Some(Token::Word(word)) => {
                let (field, value) = word
                    .split_once(':')
                    .ok_or_else(|| format!("`{word}` is not field:value"))?;
                let value = unquote(value, '"');
                let valid_field = !field.is_empty()
                    && field
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
                if !valid_field || value.is_empty() {
                    return Err(format!("`{word}` is not field:value"));
                }
                Ok(Query::Term {
                    exact: is_exact_field(field),
                    field: field.to_string(),
                    value: value.to_string(),
                })
            }
            Some(token) => Err(format!("unexpected `{}`", token.text())),
            None => Err("the query ends too early".into()),
        }
    }

    fn filter_primary(&mut self) -> Result<Filter, String> {
        let field = match self.next() {
            Some(Token::Word(word)) if word.chars().all(|c| c.is_ascii_alphanumeric()) => word,
            Some(token) => return Err(format!("unexpected `{}`", token.text())),
            None => return Err("the filter ends too early".into()),
        };
        let operator = match self.next() {
            Some(Token::Word(word)) => word.to_ascii_lowercase(),
            _ => return Err(format!("`{field}` needs eq or contains")),
        };
        let value = match self.next() {
            Some(Token::Word(word)) if word.len() >= 2 && word.starts_with('\'') => {
                unquote(&word, '\'').to_string()
            }
            _ => return Err(format!("`{field} {operator}` needs a quoted value")),
        };
        match operator.as_str() {
            "eq" => Ok(Filter::Eq(field, value)),
            "contains" => Ok(Filter::Contains(field, value)),
            other => Err(format!("unknown operator `{other}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detection() -> Value {
        json!({
            "productCode": "ptp",
            "act": ["Block", "Notify"],
            "dpt": 443,
            "fileHashSha256": "ABCDEF",
            "endpointHostName": "LAPTOP-7QK2M1",
            "processCmd": "cmd.exe /c \"a b\""
        })
    }

    #[test]
    fn seed_filter_and_case_insensitive_operators() {
        let record = detection();
        for text in [
            "productCode:PTP AND act:Block",
            "productCode:ptp and act:block",
            "(productCode:PTP) And (act:Notify)",
            "*",
            "endpointHostName:laptop",
            "dpt:443",
            "fileHashSha256:abcdef",
            "processCmd:\"/c \"",
            "not productCode:sao",
            "productCode:sao OR act:Block",
            "not (productCode:sao or act:Permit)",
        ] {
            let query = Query::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(query.matches(&record), "{text}");
        }
        for text in [
            "productCode:PTP AND act:Permit",
            "dpt:44",
            "fileHashSha256:ABC",
            "missingField:x",
            "not act:block",
        ] {
            assert!(!Query::parse(text).unwrap().matches(&record), "{text}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_parse() {
        for text in [
            "",
            "   ",
            "productCode",
            "productCode:",
            ":x",
            "(productCode:ptp",
            "productCode:ptp)",
            "productCode:ptp act:Block",
            "productCode:ptp and",
            "a:\"open",
        ] {
            assert!(Query::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn alert_filters() {
        let alert = json!({
            "severity": "high",
            "status": "Open",
            "impactScope": {"entities": [{"entityValue": {"name": "srv-db-01", "ips": ["10.1.2.3"]}}]},
            "indicators": [{"value": "powershell.exe -enc"}]
        });
        for text in [
            "severity eq 'high'",
            "severity eq 'HIGH' and status eq 'Open'",
            "not (severity eq 'low') or status eq 'Closed'",
            "impactScopeEntityValue eq 'srv-db-01'",
            "impactScopeEntityValue contains '10.1.2'",
            "indicatorValue contains 'PowerShell'",
        ] {
            assert!(Filter::parse(text).unwrap().matches(&alert), "{text}");
        }
        assert!(!Filter::parse("severity eq 'low'").unwrap().matches(&alert));
        for text in [
            "severity",
            "severity eq high",
            "severity is 'high'",
            "(severity eq 'high'",
        ] {
            assert!(Filter::parse(text).is_err(), "{text}");
        }
    }
}
