//! Elasticsearch error responses: the `{"error":{...},"status":N}` envelope and the older
//! `{"error":"text","status":N}` form that the REST layer itself uses (no handler, bad method).

use serde_json::{Map, Value, json};

/// One exception as Elasticsearch renders it (`type`, `reason`, optional `caused_by`, `header`).
#[derive(Clone, Debug, PartialEq)]
pub struct EsError {
    pub status: u16,
    pub kind: String,
    pub reason: String,
    /// The rarely used parts, boxed to keep `Result<_, EsError>` small.
    pub more: Box<EsErrorMore>,
}

/// Optional parts of an [`EsError`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EsErrorMore {
    pub caused_by: Option<EsError>,
    /// Rendered as `"header": {name: [values]}` and also sent as HTTP headers.
    pub header: Vec<(String, Vec<String>)>,
    /// Extra fields rendered after `reason` (for example `additional_unsuccessful_credentials`).
    pub extra: Map<String, Value>,
    /// Further exceptions collected by a validation pass; rendered as `suppressed`.
    pub suppressed: Vec<EsError>,
    /// The REST layer's plain form: `{"error":"<reason>","status":N}`.
    pub plain: bool,
}

impl EsError {
    pub fn new(status: u16, kind: &str, reason: impl Into<String>) -> EsError {
        EsError {
            status,
            kind: kind.to_string(),
            reason: reason.into(),
            more: Box::default(),
        }
    }

    /// `illegal_argument_exception`, HTTP 400.
    pub fn illegal_argument(reason: impl Into<String>) -> EsError {
        EsError::new(400, "illegal_argument_exception", reason)
    }

    /// `action_request_validation_exception`: "Validation Failed: 1: a;2: b;".
    pub fn validation(messages: &[String]) -> EsError {
        let mut reason = String::from("Validation Failed: ");
        for (i, m) in messages.iter().enumerate() {
            reason.push_str(&format!("{}: {};", i + 1, m));
        }
        EsError::new(400, "action_request_validation_exception", reason)
    }

    /// `x_content_parse_exception`, HTTP 400.
    pub fn parse(reason: impl Into<String>) -> EsError {
        EsError::new(400, "x_content_parse_exception", reason)
    }

    /// `parse_exception` "request body is required".
    pub fn body_required() -> EsError {
        EsError::new(400, "parse_exception", "request body is required")
    }

    /// The REST layer's own plain error (`{"error":"...","status":N}`).
    pub fn plain(status: u16, reason: impl Into<String>) -> EsError {
        let mut e = EsError::new(status, "", reason);
        e.more.plain = true;
        e
    }

    pub fn with_cause(mut self, cause: EsError) -> EsError {
        self.more.caused_by = Some(cause);
        self
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> EsError {
        self.more.extra.insert(key.to_string(), value);
        self
    }

    fn render(&self, with_cause: bool) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.kind.clone()));
        m.insert("reason".into(), Value::String(self.reason.clone()));
        for (k, v) in &self.more.extra {
            m.insert(k.clone(), v.clone());
        }
        if !self.more.header.is_empty() {
            let mut h = Map::new();
            for (name, values) in &self.more.header {
                h.insert(name.clone(), json!(values));
            }
            m.insert("header".into(), Value::Object(h));
        }
        if with_cause {
            if let Some(c) = &self.more.caused_by {
                m.insert("caused_by".into(), c.render(true));
            }
            if !self.more.suppressed.is_empty() {
                let s: Vec<Value> = self
                    .more
                    .suppressed
                    .iter()
                    .map(|e| e.render(true))
                    .collect();
                m.insert("suppressed".into(), Value::Array(s));
            }
        }
        Value::Object(m)
    }

    /// The full response body.
    pub fn to_body(&self) -> Value {
        if self.more.plain {
            return json!({"error": self.reason, "status": self.status});
        }
        let mut inner = Map::new();
        inner.insert("root_cause".into(), Value::Array(vec![self.render(false)]));
        if let Value::Object(rest) = self.render(true) {
            inner.extend(rest);
        }
        json!({"error": Value::Object(inner), "status": self.status})
    }
}

impl std::fmt::Display for EsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}: {}", self.status, self.kind, self.reason)
    }
}

impl std::error::Error for EsError {}

/// The name of the parser token a JSON value starts with, as Elasticsearch's messages print it
/// (`VALUE_STRING`, `START_OBJECT`...).
pub(crate) fn token_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "VALUE_NULL",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}
