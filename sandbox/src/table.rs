//! Server-side printing: `meta.k8s.io/v1` `Table` answers, which `kubectl get` asks for.
//! Columns follow the real printers (`pkg/printers/internalversion/printers.go`) for built-in
//! types, and the CRD's `additionalPrinterColumns` for Elasticsearch
//! (`apiextensions-apiserver/pkg/registry/customresource/tableconvertor`).

use serde_json::{Value, json};

use crate::resources::{ResourceInfo, ResourceKey};

fn col(name: &str, ty: &str, format: &str, description: &str) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": 0})
}

fn name_col() -> Value {
    col(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    )
}

fn age_col() -> Value {
    col(
        "Age",
        "string",
        "",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    )
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let m = s / 60;
    let h = m / 60;
    let d = h / 24;
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

/// The time since an RFC 3339 timestamp, as `kubectl` prints ages.
fn since(ts: Option<&Value>) -> String {
    match ts
        .and_then(Value::as_str)
        .map(str::parse::<jiff::Timestamp>)
    {
        Some(Ok(t)) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        _ => "<unknown>".into(),
    }
}

fn age(obj: &Value) -> String {
    since(obj.pointer("/metadata/creationTimestamp"))
}

/// A cell: the value as it is, `null` when absent.
fn s(v: Option<&Value>) -> Value {
    v.cloned().unwrap_or(Value::Null)
}

/// A CRD printer column's `jsonPath` (`.status.health`) as a JSON pointer.
fn pointer_of(json_path: &str) -> String {
    json_path.replace('.', "/")
}

/// The CRD's printer columns (name, type, JSON pointer, description).
fn printer_columns() -> Vec<(String, String, String, String)> {
    let text = |c: &Value, k: &str| c[k].as_str().unwrap_or("").to_string();
    crate::schema::printer_columns()
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                text(c, "name"),
                text(c, "type"),
                pointer_of(c["jsonPath"].as_str().unwrap_or("")),
                text(c, "description"),
            )
        })
        .collect()
}

fn columns(info: &ResourceInfo) -> Vec<Value> {
    match info.key.plural {
        // The table convertor of custom resources: the name, then the CRD's printer columns.
        "elasticsearches" => std::iter::once(name_col())
            .chain(
                printer_columns()
                    .iter()
                    .map(|(name, ty, _, description)| col(name, ty, "", description)),
            )
            .collect(),
        "secrets" => vec![
            name_col(),
            col("Type", "string", "", "The type of the secret"),
            col("Data", "string", "", "The number of entries in the secret"),
            age_col(),
        ],
        "configmaps" => vec![
            name_col(),
            col(
                "Data",
                "string",
                "",
                "The number of entries in the configmap",
            ),
            age_col(),
        ],
        "services" => vec![
            name_col(),
            col("Type", "string", "", "The type of the service"),
            col("Cluster-IP", "string", "", "The cluster IP of the service"),
            col(
                "External-IP",
                "string",
                "",
                "The external IP of the service",
            ),
            col("Port(s)", "string", "", "The ports of the service"),
            age_col(),
        ],
        "pods" => vec![
            name_col(),
            col(
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted.",
            ),
            age_col(),
        ],
        "namespaces" => vec![
            name_col(),
            col("Status", "string", "", "The status of the namespace"),
            age_col(),
        ],
        "events" => vec![
            col(
                "Last Seen",
                "string",
                "",
                "Time since the most recent occurrence",
            ),
            col("Type", "string", "", "Type of this event"),
            col("Reason", "string", "", "Why the action was taken"),
            col("Object", "string", "", "The object this event is about"),
            col(
                "Message",
                "string",
                "",
                "A human-readable description of the status",
            ),
        ],
        "customresourcedefinitions" => vec![
            name_col(),
            col(
                "Created At",
                "date",
                "",
                "CreationTimestamp of the resource",
            ),
        ],
        _ => vec![name_col(), age_col()],
    }
}

fn cells(key: &ResourceKey, obj: &Value) -> Vec<Value> {
    let name = s(obj.pointer("/metadata/name"));
    match key.plural {
        // Date columns print the time since, as `kubectl` does for the CRD's `age`.
        "elasticsearches" => std::iter::once(name)
            .chain(printer_columns().iter().map(|(_, ty, pointer, _)| {
                let v = obj.pointer(pointer);
                if ty == "date" { since(v).into() } else { s(v) }
            }))
            .collect(),
        "secrets" => {
            let n = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            vec![name, s(obj.get("type")), n.into(), age(obj).into()]
        }
        "configmaps" => {
            let n = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + obj
                    .get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, n.into(), age(obj).into()]
        }
        "services" => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                p.get("port").map(|v| v.to_string()).unwrap_or_default(),
                                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let external = obj
                .pointer("/status/loadBalancer/ingress/0/ip")
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            vec![
                name,
                s(obj.pointer("/spec/type")),
                s(obj.pointer("/spec/clusterIP")),
                external.into(),
                if ports.is_empty() {
                    "<none>".into()
                } else {
                    ports.join(",").into()
                },
                age(obj).into(),
            ]
        }
        "pods" => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(statuses.len(), |c| c.len());
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool).unwrap_or(false))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum();
            vec![
                name,
                format!("{ready}/{total}").into(),
                s(obj.pointer("/status/phase")),
                restarts.into(),
                age(obj).into(),
            ]
        }
        "namespaces" => vec![name, s(obj.pointer("/status/phase")), age(obj).into()],
        "events" => {
            let object = format!(
                "{}/{}",
                obj.pointer("/involvedObject/kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase(),
                obj.pointer("/involvedObject/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            );
            vec![
                age(obj).into(),
                s(obj.get("type")),
                s(obj.get("reason")),
                object.into(),
                s(obj.get("message")),
            ]
        }
        "customresourcedefinitions" => vec![name, s(obj.pointer("/metadata/creationTimestamp"))],
        _ => vec![name, age(obj).into()],
    }
}

fn row_object(key: &ResourceKey, obj: &Value, include: &str) -> Value {
    match include {
        "None" => Value::Null,
        "Object" => {
            let mut o = obj.clone();
            if o.get("kind").is_none() {
                o["kind"] = key.kind().into();
                o["apiVersion"] = key.api_version().into();
            }
            o
        }
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

/// Converts an object or a list answer into a Table.
pub(crate) fn to_table(info: &ResourceInfo, body: &Value, is_list: bool, include: &str) -> Value {
    let items: Vec<&Value> = if is_list {
        body.get("items")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    } else {
        vec![body]
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(&info.key, o)});
            let obj = row_object(&info.key, o, include);
            if !obj.is_null() {
                row["object"] = obj;
            }
            row
        })
        .collect();
    let mut metadata = json!({});
    if let Some(rv) = body.pointer("/metadata/resourceVersion") {
        metadata["resourceVersion"] = rv.clone();
    }
    if let Some(c) = body.pointer("/metadata/continue") {
        metadata["continue"] = c.clone();
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(info),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{human_duration, to_table};
    use crate::resources::ResourceKey;

    #[test]
    fn elasticsearch_rows_follow_the_crd_printer_columns() {
        let info = ResourceKey::ELASTICSEARCHES.info().unwrap();
        let es = json!({
            "metadata": {"name": "logs", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "status": {"health": "yellow", "availableNodes": 2, "version": "8.17.0", "phase": "Ready"},
        });
        let table = to_table(info, &es, false, "None");
        let names: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["Name", "health", "nodes", "version", "phase", "age"]
        );
        assert_eq!(table["columnDefinitions"][2]["type"], "integer");
        assert_eq!(
            table["columnDefinitions"][2]["description"],
            "Available nodes"
        );
        let cells = &table["rows"][0]["cells"];
        assert_eq!(
            cells.as_array().unwrap()[..5],
            json!(["logs", "yellow", 2, "8.17.0", "Ready"])
                .as_array()
                .unwrap()[..]
        );
        assert!(cells[5].as_str().unwrap().ends_with('y'), "{}", cells[5]);
        assert_eq!(table["rows"][0].get("object"), None);
    }

    #[test]
    fn durations_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(24 * 3600), "24h");
        assert_eq!(human_duration(3 * 86400), "3d");
    }
}
