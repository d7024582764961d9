//! Keeping only the records whose fields have given values (e.g. the Verkada seed's
//! INTERESTED_EVENTS: `event_name` is one of three).

use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid filter `{0}`: expected FIELD=VALUE[,VALUE...], e.g. event_name=login,logout")]
pub struct FilterError(String);

/// All conditions must hold; a condition holds when the field's value is one of its values.
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    conditions: Vec<Condition>,
}

#[derive(Clone, Debug)]
struct Condition {
    /// A dotted path into nested objects (`details.kind`).
    path: Vec<String>,
    values: Vec<String>,
}

impl RecordFilter {
    /// Adds `field` must be one of `values`.
    pub fn require(&mut self, field: &str, values: Vec<String>) {
        self.conditions.push(Condition {
            path: field.split('.').map(String::from).collect(),
            values,
        });
    }

    /// Adds a condition written `FIELD=VALUE[,VALUE...]`.
    pub fn require_spec(&mut self, spec: &str) -> Result<(), FilterError> {
        let (field, values) = spec
            .split_once('=')
            .filter(|(field, values)| !field.trim().is_empty() && !values.is_empty())
            .ok_or_else(|| FilterError(spec.to_string()))?;
        self.require(
            field.trim(),
            values
                .split(',')
                .map(|value| value.trim().to_string())
                .collect(),
        );
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Whether the record (a JSON object's text) passes; a record that is not JSON does not.
    /// Without conditions the text is not read at all: a record's text may be a piece of its
    /// page's body that is out of cache by the time it is committed.
    pub fn matches(&self, json: &(impl AsRef<str> + ?Sized)) -> bool {
        if self.conditions.is_empty() {
            return true;
        }
        let Ok(record) = serde_json::from_str::<Value>(json.as_ref()) else {
            return false;
        };
        self.conditions.iter().all(|condition| {
            let field = condition
                .path
                .iter()
                .try_fold(&record, |value, key| value.get(key));
            let text = match field {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => return false,
                Some(other) => other.to_string(),
            };
            condition.values.iter().any(|value| value == &text)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_matching_records() {
        let mut filter = RecordFilter::default();
        filter
            .require_spec("event_name=Archive Action Taken,Live Stream Started")
            .unwrap();
        assert!(filter.matches(r#"{"event_name":"Live Stream Started"}"#));
        assert!(!filter.matches(r#"{"event_name":"Public API Request"}"#));
        assert!(!filter.matches(r#"{"other":1}"#));

        filter.require_spec("details.code=7").unwrap();
        assert!(filter.matches(r#"{"event_name":"Live Stream Started","details":{"code":7}}"#));
        assert!(!filter.matches(r#"{"event_name":"Live Stream Started","details":{"code":8}}"#));
        assert!(RecordFilter::default().matches("not json either"));
    }

    #[test]
    fn bad_specs_are_explained() {
        let mut filter = RecordFilter::default();
        assert!(filter.require_spec("no-equals").is_err());
        assert!(filter.require_spec("=x").is_err());
        assert!(filter.require_spec("field=").is_err());
    }
}
