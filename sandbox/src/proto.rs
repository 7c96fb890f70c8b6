//! Decoding of the protobuf request bodies kubectl sends for built-in types
//! (`kubectl create secret|configmap|namespace` use `application/vnd.kubernetes.protobuf`).
//!
//! Format: the 4-byte magic `k8s\0`, then a `runtime.Unknown` message
//! (`k8s.io/apimachinery/pkg/runtime/generated.proto`: 1 typeMeta{1 apiVersion, 2 kind},
//! 2 raw, 3 contentEncoding, 4 contentType) whose `raw` is the object
//! (`k8s.io/api/core/v1/generated.proto`, `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`).
//! Only Secret, ConfigMap, Namespace and SelfSubjectAccessReview are decoded, and of ObjectMeta only what a client sets
//! (name, generateName, namespace, resourceVersion, labels, annotations, finalizers); other
//! types answer 415.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::resources::ResourceInfo;
use crate::status::ApiError;

const MAGIC: &[u8] = b"k8s\0";

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn malformed() -> ApiError {
    ApiError::bad_request("the protobuf body could not be decoded")
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(malformed)?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(malformed())
    }

    /// The next field number and value, or `None` at the end.
    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ApiError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.pos += 8;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| malformed())?;
                let end = self.pos.checked_add(len).ok_or_else(malformed)?;
                let bytes = self.buf.get(self.pos..end).ok_or_else(malformed)?;
                self.pos = end;
                Field::Bytes(bytes)
            }
            5 => {
                self.pos += 4;
                Field::Fixed
            }
            _ => return Err(malformed()),
        };
        if self.pos > self.buf.len() {
            return Err(malformed());
        }
        Ok(Some((tag >> 3, field)))
    }
}

fn string(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed())
}

/// A `map<string, string|bytes>` entry: 1 key, 2 value.
fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), ApiError> {
    let mut r = Reader::new(b);
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(b)) => k = string(b)?,
            (2, Field::Bytes(b)) if bytes_value => v = B64.encode(b).into(),
            (2, Field::Bytes(b)) => v = string(b)?.into(),
            _ => {}
        }
    }
    Ok((k, v))
}

fn object_meta(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader::new(b);
    let mut m = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    while let Some((n, f)) = r.next()? {
        let Field::Bytes(b) = f else { continue };
        match n {
            1 => {
                m.insert("name".into(), string(b)?.into());
            }
            2 => {
                m.insert("generateName".into(), string(b)?.into());
            }
            3 => {
                m.insert("namespace".into(), string(b)?.into());
            }
            6 => {
                m.insert("resourceVersion".into(), string(b)?.into());
            }
            11 => {
                let (k, v) = map_entry(b, false)?;
                labels.insert(k, v);
            }
            12 => {
                let (k, v) = map_entry(b, false)?;
                annotations.insert(k, v);
            }
            14 => finalizers.push(Value::String(string(b)?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(m))
}

/// `SelfSubjectAccessReview` (`k8s.io/api/authorization/v1/generated.proto`): 2 spec
/// {1 resourceAttributes {1 namespace, 2 verb, 3 group, 4 version, 5 resource, 6 subresource,
/// 7 name}, 2 nonResourceAttributes {1 path, 2 verb}}.
fn access_review_spec(raw: &[u8]) -> Result<Value, ApiError> {
    const RESOURCE: [&str; 7] = [
        "namespace",
        "verb",
        "group",
        "version",
        "resource",
        "subresource",
        "name",
    ];
    let mut spec = Map::new();
    let mut r = Reader::new(raw);
    while let Some((n, f)) = r.next()? {
        let (2, Field::Bytes(b)) = (n, f) else {
            continue;
        };
        let mut sr = Reader::new(b);
        while let Some((n, f)) = sr.next()? {
            let Field::Bytes(attrs) = f else { continue };
            let (name, fields): (&str, &[&str]) = match n {
                1 => ("resourceAttributes", &RESOURCE),
                2 => ("nonResourceAttributes", &["path", "verb"]),
                _ => continue,
            };
            let mut m = Map::new();
            let mut ar = Reader::new(attrs);
            while let Some((n, f)) = ar.next()? {
                if let Field::Bytes(v) = f
                    && let Some(key) = usize::try_from(n)
                        .ok()
                        .and_then(|i| fields.get(i.wrapping_sub(1)))
                {
                    m.insert((*key).into(), string(v)?.into());
                }
            }
            spec.insert(name.into(), Value::Object(m));
        }
    }
    Ok(Value::Object(spec))
}

fn unsupported(kind: &str) -> ApiError {
    ApiError::unsupported_media_type(format!(
        "the sandbox decodes protobuf bodies for Secret, ConfigMap, Namespace and SelfSubjectAccessReview only (got {kind}); send application/json"
    ))
}

/// Decodes a protobuf request body into the JSON form of the object.
pub(crate) fn decode(body: &[u8], info: &ResourceInfo) -> Result<Value, ApiError> {
    let rest = body.strip_prefix(MAGIC).ok_or_else(malformed)?;
    let mut r = Reader::new(rest);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                let mut t = Reader::new(tm);
                while let Some((n, f)) = t.next()? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => api_version = string(b)?,
                        (2, Field::Bytes(b)) => kind = string(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    if kind.is_empty() {
        kind = info.kind.to_string();
    }
    if api_version.is_empty() {
        api_version = info.key.api_version();
    }
    let mut obj = json!({"apiVersion": api_version, "kind": kind});
    let mut maps: [Map<String, Value>; 2] = [Map::new(), Map::new()];
    let mut r = Reader::new(raw);
    match kind.as_str() {
        "Secret" | "ConfigMap" | "Namespace" => {}
        "SelfSubjectAccessReview" => {
            obj["spec"] = access_review_spec(raw)?;
            return Ok(obj);
        }
        other => return Err(unsupported(other)),
    }
    while let Some((n, f)) = r.next()? {
        match (kind.as_str(), n, f) {
            (_, 1, Field::Bytes(b)) => obj["metadata"] = object_meta(b)?,
            ("Secret", 2, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, true)?;
                maps[0].insert(k, v);
            }
            ("Secret", 3, Field::Bytes(b)) => obj["type"] = string(b)?.into(),
            ("Secret", 4, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, false)?;
                maps[1].insert(k, v);
            }
            ("Secret", 5, Field::Varint(v)) | ("ConfigMap", 4, Field::Varint(v)) => {
                obj["immutable"] = (v != 0).into();
            }
            ("ConfigMap", 2, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, false)?;
                maps[0].insert(k, v);
            }
            ("ConfigMap", 3, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, true)?;
                maps[1].insert(k, v);
            }
            ("Namespace", 2, Field::Bytes(b)) => {
                let mut spec = Reader::new(b);
                let mut finalizers = Vec::new();
                while let Some((n, f)) = spec.next()? {
                    if let (1, Field::Bytes(b)) = (n, f) {
                        finalizers.push(Value::String(string(b)?));
                    }
                }
                obj["spec"] = json!({"finalizers": finalizers});
            }
            _ => {}
        }
    }
    let [first, second] = maps;
    let names = match kind.as_str() {
        "Secret" => ("data", "stringData"),
        _ => ("data", "binaryData"),
    };
    if !first.is_empty() {
        obj[names.0] = Value::Object(first);
    }
    if !second.is_empty() {
        obj[names.1] = Value::Object(second);
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ResourceKey;

    fn field(n: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_secret_like_kubectl_sends_it() {
        let meta = [
            field(1, b"s1"),
            field(3, b"ns"),
            field(11, &[field(1, b"app"), field(2, b"x")].concat()),
        ]
        .concat();
        let secret = [
            field(1, &meta),
            field(2, &[field(1, b"a"), field(2, b"b")].concat()),
            field(3, b"Opaque"),
        ]
        .concat();
        let unknown = [
            field(1, &[field(1, b"v1"), field(2, b"Secret")].concat()),
            field(2, &secret),
        ]
        .concat();
        let body = [MAGIC, &unknown[..]].concat();
        let v = decode(&body, ResourceKey::SECRETS.info().unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "s1", "namespace": "ns", "labels": {"app": "x"}},
                   "data": {"a": "Yg=="}})
        );
    }
}
