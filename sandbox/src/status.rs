//! `metav1.Status` error bodies, built the way `k8s.io/apimachinery/pkg/api/errors` builds them
//! (`NewNotFound`, `NewAlreadyExists`, `NewConflict`, `NewInvalid`, `NewForbidden`,
//! `NewBadRequest`, `NewUnsupportedMediaType`...).

use serde_json::{Map, Value, json};

use crate::resources::ResourceKey;

/// One field error of an `Invalid` answer (`metav1.StatusCause`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueTypeInvalid`, ...
    pub reason: &'static str,
    /// The message after the field path, e.g. `Required value`.
    pub message: String,
    /// Field path, e.g. `spec.nodeSets[0].count`.
    pub field: String,
}

impl Cause {
    pub fn required(field: impl Into<String>) -> Cause {
        Cause {
            reason: "FieldValueRequired",
            message: "Required value".into(),
            field: field.into(),
        }
    }

    /// `field.Invalid(path, value, detail)`: message `Invalid value: <value>: <detail>`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {}: {detail}", go_value(value)),
            field: field.into(),
        }
    }

    /// `field.TypeInvalid`, as apiextensions reports a wrong JSON type.
    pub fn type_invalid(field: impl Into<String>, value: &Value, expected: &str) -> Cause {
        let field = field.into();
        let actual = json_type_name(value);
        Cause {
            reason: "FieldValueTypeInvalid",
            message: format!(
                "Invalid value: \"{actual}\": {field} in body must be of type {expected}: \"{actual}\""
            ),
            field,
        }
    }

    pub fn unsupported(field: impl Into<String>, value: &Value, allowed: &[String]) -> Cause {
        let quoted: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        Cause {
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {}: supported values: {}",
                go_value(value),
                quoted.join(", ")
            ),
            field: field.into(),
        }
    }

    /// `field.Forbidden(path, detail)`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {detail}"),
            field: field.into(),
        }
    }

    /// `path: message`, as `field.Error.Error()` prints it.
    pub fn full(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

pub(crate) fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// An API error, answered as a `Status` object with `code` as HTTP status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

fn details(key: &ResourceKey, name: &str) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), name.into());
    }
    if !key.group.is_empty() {
        d.insert("group".into(), key.group.into());
    }
    d.insert("kind".into(), key.plural.into());
    Value::Object(d)
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(key: &ResourceKey, name: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", key.group_resource()),
            details: Some(details(key, name)),
        }
    }

    /// The generic answer for a URL the server does not serve (unknown group, version or
    /// resource): `genericapiserver`'s NotFound handler.
    pub fn no_route() -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: Some(json!({})),
        }
    }

    pub fn already_exists(key: &ResourceKey, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", key.group_resource()),
            details: Some(details(key, name)),
        }
    }

    pub fn conflict(key: &ResourceKey, name: &str, why: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                key.group_resource()
            ),
            details: Some(details(key, name)),
        }
    }

    pub fn modified_conflict(key: &ResourceKey, name: &str) -> ApiError {
        ApiError::conflict(
            key,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `NewInvalid(GroupKind, name, errs)`: message `Kind.group "name" is invalid: ...`.
    pub fn invalid(key: &ResourceKey, name: &str, causes: Vec<Cause>) -> ApiError {
        let gk = if key.group.is_empty() {
            key.kind().to_string()
        } else {
            format!("{}.{}", key.kind(), key.group)
        };
        let joined = if causes.len() == 1 {
            causes[0].full()
        } else {
            let all: Vec<String> = causes.iter().map(Cause::full).collect();
            format!("[{}]", all.join(", "))
        };
        let mut d = Map::new();
        d.insert("name".into(), name.into());
        if !key.group.is_empty() {
            d.insert("group".into(), key.group.into());
        }
        d.insert("kind".into(), key.kind().into());
        d.insert(
            "causes".into(),
            Value::Array(
                causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect(),
            ),
        );
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{gk} \"{name}\" is invalid: {joined}"),
            details: Some(Value::Object(d)),
        }
    }

    /// `NewForbidden(qualifiedResource, name, err)`.
    pub fn forbidden(key: &ResourceKey, name: &str, why: &str) -> ApiError {
        let message = if name.is_empty() {
            format!("{} is forbidden: {why}", key.group_resource())
        } else {
            format!("{} \"{name}\" is forbidden: {why}", key.group_resource())
        };
        ApiError {
            code: 403,
            reason: "Forbidden",
            message,
            details: Some(details(key, name)),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: message.into(),
            details: Some(json!({})),
        }
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: message.into(),
            details: Some(json!({})),
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 500,
            reason: "InternalError",
            message: message.into(),
            details: None,
        }
    }

    /// A failure that a fault hook asks for, with the reason the real server uses for that code.
    pub fn from_code(code: u16) -> ApiError {
        let (reason, message) = match code {
            400 => (
                "BadRequest",
                "the server rejected our request for an unknown reason",
            ),
            401 => ("Unauthorized", "Unauthorized"),
            403 => ("Forbidden", "forbidden"),
            404 => (
                "NotFound",
                "the server could not find the requested resource",
            ),
            409 => ("Conflict", "the server reported a conflict"),
            410 => ("Expired", "the resource version is too old"),
            422 => (
                "Invalid",
                "the server rejected our request due to an error in our request",
            ),
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ),
            500 => (
                "InternalError",
                "an error on the server (\"sandbox fault\") has prevented the request from succeeding",
            ),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
            ),
            _ => ("", "sandbox injected fault"),
        };
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// The JSON `Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}
