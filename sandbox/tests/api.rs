//! The fake API server answers like the real one (see `kubernetes-api-behaviour.md` in the
//! shared docs), checked over HTTPS with client certificates.

use std::time::Duration;

use remote_cluster_sandbox::{
    ApiClient, ClusterConfig, ClusterHandle, ContextConfig, EsSeed, Fault, ResourceKey, Rule,
    Sandbox, Sub,
};
use serde_json::{Value, json};

const ES_GROUP: &str = "elasticsearch.k8s.elastic.co";
const ES_PATH: &str = "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/search/elasticsearches";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

fn sandbox() -> Sandbox {
    Sandbox::builder()
        .cluster(
            ClusterConfig::new("east")
                .namespace("team-a")
                .elasticsearch(
                    EsSeed::new("search", "products", "9.1.0").remote_cluster_server(true),
                )
                .elasticsearch(
                    EsSeed::new("search", "catalog", "8.19.2")
                        .label("tier", "hot")
                        .label("team", "search"),
                )
                .elasticsearch(EsSeed::new("logging", "logs", "8.17.0").label("tier", "warm"))
                .user(
                    "restricted",
                    vec![Rule::read_only_in("team-a", ES_GROUP, "elasticsearches")],
                ),
        )
        .cluster(ClusterConfig::new("plain").without_eck())
        .context(ContextConfig::new("east-restricted", "east", "restricted"))
        .start()
        .expect("sandbox starts")
}

fn admin(c: &ClusterHandle) -> ApiClient {
    c.client("admin", false).unwrap()
}

fn es(name: &str, version: &str) -> Value {
    json!({
        "apiVersion": "elasticsearch.k8s.elastic.co/v1",
        "kind": "Elasticsearch",
        "metadata": {"name": name, "namespace": "search"},
        "spec": {"version": version, "nodeSets": [{"name": "default", "count": 1}]},
    })
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn create_sets_server_metadata_and_refuses_duplicates() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let c = admin(&east);
    let r = c.post(ES_PATH, &es("new", "9.1.0")).await.unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let obj = r.json();
    let m = &obj["metadata"];
    assert_eq!(m["generation"], 1);
    assert!(m["uid"].as_str().unwrap().len() == 36);
    assert!(
        m["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert!(m["creationTimestamp"].as_str().unwrap().ends_with('Z'));

    let again = c.post(ES_PATH, &es("new", "9.1.0")).await.unwrap();
    assert_eq!(again.status, 409);
    let s = again.json();
    assert_eq!(s["kind"], "Status");
    assert_eq!(s["apiVersion"], "v1");
    assert_eq!(s["status"], "Failure");
    assert_eq!(s["reason"], "AlreadyExists");
    assert_eq!(s["code"], 409);
    assert_eq!(
        s["message"],
        "elasticsearches.elasticsearch.k8s.elastic.co \"new\" already exists"
    );
    assert_eq!(
        s["details"],
        json!({"name": "new", "group": ES_GROUP, "kind": "elasticsearches"})
    );
}

#[tokio::test]
async fn both_http1_and_h2_are_served() {
    let sb = sandbox();
    let east = sb.cluster("east");
    for h2 in [false, true] {
        let c = east.client("admin", h2).unwrap();
        let r = c.get("/version").await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["major"], "1");
    }
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let other = sb.cluster("plain");
    // Trust east's CA but present plain's admin certificate.
    let id = other.identity("admin").unwrap();
    let rogue_cfg = remote_cluster_sandbox::pki::client_config(east.ca_pem(), &id, false).unwrap();
    let port: u16 = east.url().rsplit(':').next().unwrap().parse().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(rogue_cfg));
    let name =
        rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
    let result = async {
        let mut tls = connector.connect(name, tcp).await?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tls.write_all(b"GET /version HTTP/1.1\r\nhost: x\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    }
    .await;
    match result {
        Err(_) => {}
        Ok(buf) => assert!(
            buf.is_empty(),
            "got an answer: {}",
            String::from_utf8_lossy(&buf)
        ),
    }
}

#[tokio::test]
async fn stale_put_conflicts_and_put_without_resource_version_is_invalid() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let c = admin(&east);
    let path = format!("{ES_PATH}/products");
    let current = c.get(&path).await.unwrap().json();

    let mut fresh = current.clone();
    fresh["spec"]["version"] = "9.1.1".into();
    let ok = c.put(&path, &fresh).await.unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["metadata"]["generation"], 2);

    // `current` still carries the old resourceVersion.
    let mut stale = current.clone();
    stale["spec"]["version"] = "9.1.2".into();
    let r = c.put(&path, &stale).await.unwrap();
    assert_eq!(r.status, 409);
    assert_eq!(r.reason(), "Conflict");
    assert_eq!(
        r.message(),
        "Operation cannot be fulfilled on elasticsearches.elasticsearch.k8s.elastic.co \"products\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let mut unconditional = current;
    unconditional["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let r = c.put(&path, &unconditional).await.unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(r.reason(), "Invalid");
    assert_eq!(
        r.json()["details"]["causes"][0]["field"],
        "metadata.resourceVersion"
    );
}

#[tokio::test]
async fn merge_patch_prunes_unknown_fields_and_tracks_generation() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let c = admin(&east);
    let path = format!("{ES_PATH}/catalog");
    let before = c.get(&path).await.unwrap().json();

    // Unknown field: pruned, nothing changes, generation and resourceVersion stay.
    let r = c
        .patch(&path, MERGE, &json!({"spec": {"notAField": true}}))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let after = r.json();
    assert!(after["spec"].get("notAField").is_none());
    assert_eq!(after["metadata"]["generation"], 1);
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    let warning = r
        .headers
        .get("warning")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        warning.contains("unknown field \\\"spec.notAField\\\""),
        "{warning}"
    );

    // Label change: new resourceVersion, same generation.
    let r = c
        .patch(
            &path,
            MERGE,
            &json!({"metadata": {"labels": {"owner": "me"}}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let labelled = r.json();
    assert_eq!(labelled["metadata"]["generation"], 1);
    assert_ne!(
        labelled["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );

    // Spec change: generation + 1.
    let r = c
        .patch(&path, MERGE, &json!({"spec": {"version": "8.19.3"}}))
        .await
        .unwrap();
    assert_eq!(r.json()["metadata"]["generation"], 2);

    // A status change through the main resource is ignored.
    let r = c
        .patch(&path, MERGE, &json!({"status": {"health": "red"}}))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"]["health"], "green");

    // Strict field validation refuses unknown fields.
    let r = c
        .patch(
            &format!("{path}?fieldValidation=Strict"),
            MERGE,
            &json!({"spec": {"notAField": true}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.message()
            .contains("strict decoding error: unknown field \"spec.notAField\"")
    );
}

#[tokio::test]
async fn resource_version_in_a_merge_patch_is_a_precondition() {
    let sb = sandbox();
    let c = admin(&sb.cluster("east"));
    let path = format!("{ES_PATH}/catalog");
    let rv = c.get(&path).await.unwrap().json()["metadata"]["resourceVersion"].clone();
    let stale = json!({"metadata": {"resourceVersion": "1"}, "spec": {"version": "8.19.9"}});
    let r = c.patch(&path, MERGE, &stale).await.unwrap();
    assert_eq!(r.status, 409);
    assert_eq!(r.reason(), "Conflict");
    let good = json!({"metadata": {"resourceVersion": rv}, "spec": {"version": "8.19.9"}});
    assert_eq!(c.patch(&path, MERGE, &good).await.unwrap().status, 200);
}

#[tokio::test]
async fn json_patch_test_guards_and_strategic_merge_is_unsupported() {
    let sb = sandbox();
    let c = admin(&sb.cluster("east"));
    let path = format!("{ES_PATH}/products");
    let failing = json!([
        {"op": "test", "path": "/spec/version", "value": "1.0.0"},
        {"op": "replace", "path": "/spec/version", "value": "9.2.0"}
    ]);
    let r = c.patch(&path, JSON_PATCH, &failing).await.unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(r.reason(), "Invalid");

    let holding = json!([
        {"op": "test", "path": "/spec/version", "value": "9.1.0"},
        {"op": "add", "path": "/spec/remoteClusters", "value": [{"name": "west", "elasticsearchRef": {"name": "x", "namespace": "y"}}]}
    ]);
    let r = c.patch(&path, JSON_PATCH, &holding).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["spec"]["remoteClusters"][0]["name"], "west");
    assert_eq!(r.json()["metadata"]["generation"], 2);

    let r = c
        .patch(
            &path,
            "application/strategic-merge-patch+json",
            &json!({"spec": {"version": "9.2.0"}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 415);
    assert_eq!(r.reason(), "UnsupportedMediaType");
    assert_eq!(
        r.message(),
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );
    // Not implemented here, so refused rather than accepted silently.
    let r = c
        .request(
            "PATCH",
            &path,
            Some("application/apply-patch+yaml"),
            Some(b"{}".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 415);
    // On built-in types made of maps, a strategic merge patch is a merge patch...
    let smp = "application/strategic-merge-patch+json";
    let r = c
        .patch(
            "/api/v1/namespaces/default",
            smp,
            &json!({"metadata": {"labels": {"a": "b"}}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["metadata"]["labels"]["a"], "b");
    // ...but directives and other types are refused, not half-applied.
    let r = c
        .patch(
            "/api/v1/namespaces/default",
            smp,
            &json!({"metadata": {"$setElementOrder/finalizers": []}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 415);
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 9200}]}});
    assert_eq!(
        c.post("/api/v1/namespaces/default/services", &svc)
            .await
            .unwrap()
            .status,
        201
    );
    let r = c
        .patch(
            "/api/v1/namespaces/default/services/s",
            smp,
            &json!({"spec": {"type": "LoadBalancer"}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 415);
}

#[tokio::test]
async fn dry_run_validates_without_persisting() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let c = admin(&east);
    let rv_before = c.get(ES_PATH).await.unwrap().json()["metadata"]["resourceVersion"].clone();

    let r = c
        .post(&format!("{ES_PATH}?dryRun=All"), &es("dry", "9.1.0"))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["metadata"]["name"], "dry");
    assert!(
        east.get(&ResourceKey::ELASTICSEARCHES, Some("search"), "dry")
            .is_none()
    );

    let r = c
        .patch(
            &format!("{ES_PATH}/products?dryRun=All"),
            MERGE,
            &json!({"spec": {"version": "9.2.0"}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["spec"]["version"], "9.2.0");
    let stored = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "products")
        .unwrap();
    assert_eq!(stored["spec"]["version"], "9.1.0");

    // Admission still runs on a dry run.
    let r = c
        .patch(
            &format!("{ES_PATH}/products?dryRun=All"),
            MERGE,
            &json!({"spec": {"version": "8.9.0"}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);

    let rv_after = c.get(ES_PATH).await.unwrap().json()["metadata"]["resourceVersion"].clone();
    assert_eq!(rv_before, rv_after, "nothing was written");
}

#[tokio::test]
async fn schema_errors_are_invalid_with_field_paths() {
    let sb = sandbox();
    let c = admin(&sb.cluster("east"));
    let mut bad = es("bad", "9.1.0");
    bad["spec"]["nodeSets"] = json!([{"name": "default", "count": "three"}, {"count": 1}]);
    bad["spec"]["remoteClusters"] =
        json!([{"elasticsearchRef": {"name": "x"}}, {"name": "a", "apiKey": {}}]);
    let r = c.post(ES_PATH, &bad).await.unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(r.reason(), "Invalid");
    let s = r.json();
    let fields: Vec<&str> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    for want in [
        "spec.nodeSets[0].count",
        "spec.nodeSets[1].name",
        "spec.remoteClusters[0].name",
        "spec.remoteClusters[1].apiKey.access",
    ] {
        assert!(fields.contains(&want), "{want} not in {fields:?}");
    }
    assert_eq!(s["details"]["kind"], "Elasticsearch");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("Elasticsearch.elasticsearch.k8s.elastic.co \"bad\" is invalid: ["),
        "{}",
        s["message"]
    );
    let count = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "spec.nodeSets[0].count")
        .unwrap()
        .clone();
    assert_eq!(count["reason"], "FieldValueTypeInvalid");
    assert_eq!(
        count["message"],
        "Invalid value: \"string\": spec.nodeSets[0].count in body must be of type integer: \"string\""
    );
}

#[tokio::test]
async fn the_eck_webhook_refuses_api_keys_before_8_10() {
    let sb = sandbox();
    let c = admin(&sb.cluster("east"));
    let mut old = es("old", "8.9.2");
    old["spec"]["remoteClusterServer"] = json!({"enabled": true});
    let r = c.post(ES_PATH, &old).await.unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.reason(), "Forbidden");
    assert_eq!(
        r.message(),
        "admission webhook \"elastic-es-validation-v1.k8s.elastic.co\" denied the request: Elasticsearch.elasticsearch.k8s.elastic.co \"old\" is invalid: spec.remoteClusterServer: Invalid value: \"8.9.2\": minimum required version for remote cluster server is 8.10.0-1 but desired version is 8.9.2"
    );

    let mut keyed = es("keyed", "8.9.2");
    keyed["spec"]["remoteClusters"] =
        json!([{"name": "x", "apiKey": {"access": {"search": {"names": ["*"]}}}}]);
    let r = c.post(ES_PATH, &keyed).await.unwrap();
    assert_eq!(r.status, 403);
    assert!(r.message().contains("spec.remoteClusters.*[apiKey]"));

    let mut fine = es("fine", "8.10.0");
    fine["spec"]["remoteClusterServer"] = json!({"enabled": true});
    assert_eq!(c.post(ES_PATH, &fine).await.unwrap().status, 201);
}

#[tokio::test]
async fn rbac_denials_read_like_the_real_ones() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let r_client = east.client("restricted", false).unwrap();
    let r = r_client
        .get("/apis/elasticsearch.k8s.elastic.co/v1/elasticsearches")
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let s = r.json();
    assert_eq!(s["reason"], "Forbidden");
    assert_eq!(
        s["message"],
        "elasticsearches.elasticsearch.k8s.elastic.co is forbidden: User \"restricted\" cannot list resource \"elasticsearches\" in API group \"elasticsearch.k8s.elastic.co\" at the cluster scope"
    );
    assert_eq!(
        s["details"],
        json!({"group": ES_GROUP, "kind": "elasticsearches"})
    );

    let r = r_client.get(&format!("{ES_PATH}/products")).await.unwrap();
    assert_eq!(
        r.message(),
        "elasticsearches.elasticsearch.k8s.elastic.co \"products\" is forbidden: User \"restricted\" cannot get resource \"elasticsearches\" in API group \"elasticsearch.k8s.elastic.co\" in the namespace \"search\""
    );
    let r = r_client
        .get("/api/v1/namespaces/team-a/secrets")
        .await
        .unwrap();
    assert_eq!(
        r.message(),
        "secrets is forbidden: User \"restricted\" cannot list resource \"secrets\" in API group \"\" in the namespace \"team-a\""
    );
    // Allowed where the rule applies.
    let ok = r_client
        .get("/apis/elasticsearch.k8s.elastic.co/v1/namespaces/team-a/elasticsearches")
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    // Discovery is open to every authenticated user.
    assert_eq!(r_client.get("/apis").await.unwrap().status, 200);
    // Writes are denied.
    let w = r_client
        .patch(
            "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/team-a/elasticsearches/x/status",
            MERGE,
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(w.status, 403);
    assert!(
        w.message()
            .contains("cannot patch resource \"elasticsearches/status\""),
        "{}",
        w.message()
    );
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let sb = sandbox();
    let c = admin(&sb.cluster("east"));
    let all = "/apis/elasticsearch.k8s.elastic.co/v1/elasticsearches";
    let q = |s: &str| format!("{all}?labelSelector={s}");
    let list = c.get(&q("tier%3Dhot")).await.unwrap().json();
    assert_eq!(list["kind"], "ElasticsearchList");
    assert_eq!(list["apiVersion"], "elasticsearch.k8s.elastic.co/v1");
    assert!(list["metadata"]["resourceVersion"].is_string());
    assert_eq!(names(&list), ["catalog"]);
    assert_eq!(
        names(&c.get(&q("tier%21%3Dhot")).await.unwrap().json()),
        ["logs", "products"]
    );
    assert_eq!(
        names(&c.get(&q("tier+in+(hot,warm)")).await.unwrap().json()),
        ["logs", "catalog"]
    );
    assert_eq!(
        names(&c.get(&q("tier+notin+(hot)")).await.unwrap().json()),
        ["logs", "products"]
    );
    assert_eq!(
        names(&c.get(&q("tier")).await.unwrap().json()),
        ["logs", "catalog"]
    );
    assert_eq!(
        names(&c.get(&q("!tier")).await.unwrap().json()),
        ["products"]
    );
    assert_eq!(
        names(&c.get(&q("tier==hot,team=search")).await.unwrap().json()),
        ["catalog"]
    );
    let by_name = c
        .get(&format!("{all}?fieldSelector=metadata.name%3Dlogs"))
        .await
        .unwrap()
        .json();
    assert_eq!(names(&by_name), ["logs"]);
    let by_ns = c
        .get(&format!("{all}?fieldSelector=metadata.namespace!%3Dsearch"))
        .await
        .unwrap()
        .json();
    assert_eq!(names(&by_ns), ["logs"]);
    let bad = c
        .get(&format!("{all}?fieldSelector=spec.version%3Dx"))
        .await
        .unwrap();
    assert_eq!(bad.status, 400);

    // Pagination.
    let page = c.get(&format!("{all}?limit=2")).await.unwrap().json();
    assert_eq!(names(&page).len(), 2);
    let token = page["metadata"]["continue"].as_str().unwrap();
    let rest = c
        .get(&format!("{all}?limit=2&continue={token}"))
        .await
        .unwrap()
        .json();
    assert_eq!(names(&rest), ["products"]);
}

#[tokio::test]
async fn status_subresource_only_changes_status() {
    let sb = sandbox();
    let c = admin(&sb.cluster("east"));
    let path = format!("{ES_PATH}/products/status");
    let r = c
        .patch(
            &path,
            MERGE,
            &json!({"spec": {"version": "9.9.9"}, "status": {"health": "yellow", "phase": "ApplyingChanges"}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.message());
    let obj = r.json();
    assert_eq!(obj["status"]["health"], "yellow");
    assert_eq!(obj["spec"]["version"], "9.1.0");
    assert_eq!(obj["metadata"]["generation"], 1);
    // GET on /status answers the whole object.
    assert_eq!(
        c.get(&path).await.unwrap().json()["status"]["phase"],
        "ApplyingChanges"
    );
}

#[tokio::test]
async fn secrets_merge_string_data_into_data() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let c = admin(&east);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "search"},
        "data": {"a": "YQ=="},
        "stringData": {"b": "bee", "a": "override"},
    });
    let r = c
        .post("/api/v1/namespaces/search/secrets", &secret)
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.message());
    let s = r.json();
    assert!(s.get("stringData").is_none());
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["data"], json!({"a": "b3ZlcnJpZGU=", "b": "YmVl"}));
    assert!(s["metadata"].get("generation").is_none());

    let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}, "data": {"x": "not base64!"}});
    assert_eq!(
        c.post("/api/v1/namespaces/search/secrets", &bad)
            .await
            .unwrap()
            .status,
        400
    );

    // List items of built-in types carry no apiVersion/kind.
    let list = c
        .get("/api/v1/namespaces/search/secrets")
        .await
        .unwrap()
        .json();
    assert_eq!(list["kind"], "SecretList");
    assert!(list["items"][0].get("kind").is_none());

    // Delete answers a Status for secrets, then the object is gone.
    let d = c
        .delete("/api/v1/namespaces/search/secrets/creds")
        .await
        .unwrap();
    assert_eq!(d.status, 200);
    assert_eq!(d.json()["status"], "Success");
    let g = c
        .get("/api/v1/namespaces/search/secrets/creds")
        .await
        .unwrap();
    assert_eq!(g.status, 404);
    assert_eq!(g.message(), "secrets \"creds\" not found");
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_not_found() {
    let sb = sandbox();
    let c = admin(&sb.cluster("east"));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}});
    let r = c
        .post("/api/v1/namespaces/nowhere/configmaps", &cm)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), "namespaces \"nowhere\" not found");
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nowhere"}});
    assert_eq!(c.post("/api/v1/namespaces", &ns).await.unwrap().status, 201);
    assert_eq!(
        c.post("/api/v1/namespaces/nowhere/configmaps", &cm)
            .await
            .unwrap()
            .status,
        201
    );
}

#[tokio::test]
async fn delete_then_get_is_not_found() {
    let sb = sandbox();
    let c = admin(&sb.cluster("east"));
    let path = format!("{ES_PATH}/catalog");
    let d = c.delete(&path).await.unwrap();
    assert_eq!(d.status, 200);
    assert_eq!(d.json()["kind"], "Elasticsearch");
    let g = c.get(&path).await.unwrap();
    assert_eq!(g.status, 404);
    assert_eq!(g.reason(), "NotFound");
    assert_eq!(g.json()["kind"], "Status");
}

#[tokio::test]
async fn a_cluster_without_eck_does_not_serve_elasticsearches() {
    let sb = sandbox();
    let c = admin(&sb.cluster("plain"));
    let r = c
        .get("/apis/elasticsearch.k8s.elastic.co/v1/elasticsearches")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(
        r.message(),
        "the server could not find the requested resource"
    );
    let groups = c.get("/apis").await.unwrap().json();
    assert!(!groups.to_string().contains("elasticsearch.k8s.elastic.co"));
    let crd = c
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/elasticsearches.elasticsearch.k8s.elastic.co")
        .await
        .unwrap();
    assert_eq!(crd.status, 404);
    let with = admin(&sb.cluster("east"));
    let crd = with
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/elasticsearches.elasticsearch.k8s.elastic.co")
        .await
        .unwrap();
    assert_eq!(crd.status, 200);
}

#[tokio::test]
async fn faults_latency_and_request_log() {
    let sb = Sandbox::builder()
        .cluster(
            ClusterConfig::new("slow")
                .latency(Duration::from_millis(150))
                .elasticsearch(EsSeed::new("default", "a", "9.1.0")),
        )
        .start()
        .unwrap();
    let slow = sb.cluster("slow");
    let c = admin(&slow);
    let started = std::time::Instant::now();
    assert_eq!(c.get("/version").await.unwrap().status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let list = "/apis/elasticsearch.k8s.elastic.co/v1/elasticsearches";
    slow.inject_fault(Fault::new("GET", list).nth(2).status(503));
    assert_eq!(c.get(list).await.unwrap().status, 200);
    let failed = c.get(list).await.unwrap();
    assert_eq!(failed.status, 503);
    assert_eq!(failed.reason(), "ServiceUnavailable");
    assert_eq!(c.get(list).await.unwrap().status, 200, "a fault fires once");

    slow.inject_fault(Fault::new("*", list).drop_connection());
    assert!(c.get(list).await.is_err(), "connection dropped");

    slow.inject_fault(Fault::new("GET", list).timeout());
    let hung = tokio::time::timeout(Duration::from_millis(500), c.get(list)).await;
    assert!(hung.is_err(), "the request hangs");

    let log = slow.requests();
    let statuses: Vec<u16> = log
        .iter()
        .filter(|r| r.path == list)
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [200, 503, 200, 0, 0]);
    assert!(log.iter().all(|r| r.user == "admin" && r.cluster == "slow"));
    assert_eq!(slow.writes(), 0);
    c.patch(
        "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/default/elasticsearches/a",
        MERGE,
        &json!({"metadata": {"labels": {"x": "y"}}}),
    )
    .await
    .unwrap();
    assert_eq!(slow.writes(), 1);
    let last = slow.requests().pop().unwrap();
    assert_eq!(last.content_type.as_deref(), Some(MERGE));
}

#[test]
fn starts_inside_a_tokio_runtime_and_handles_are_direct() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sb = sandbox();
        let east = sb.cluster("east");
        let created = east
            .create(&ResourceKey::ELASTICSEARCHES, es("direct", "9.1.0"))
            .unwrap();
        assert_eq!(created["metadata"]["generation"], 1);
        assert!(
            east.create(&ResourceKey::ELASTICSEARCHES, es("direct", "9.1.0"))
                .is_err()
        );
        let mut bad = es("bad", "9.1.0");
        bad["spec"]["nodeSets"][0]["count"] = "three".into();
        let err = east.create(&ResourceKey::ELASTICSEARCHES, bad).unwrap_err();
        assert!(err.to_string().contains("Invalid"), "{err}");
        assert_eq!(
            east.list(&ResourceKey::ELASTICSEARCHES, Some("search"))
                .len(),
            3
        );
        assert_eq!(east.list(&ResourceKey::ELASTICSEARCHES, None).len(), 4);
        let ns = east.list(&ResourceKey::NAMESPACES, None);
        assert!(ns.iter().any(|n| n["metadata"]["name"] == "team-a"));
        let updated = east
            .merge_patch(
                &ResourceKey::ELASTICSEARCHES,
                Some("search"),
                "direct",
                &json!({"status": {"phase": "Ready"}}),
                Sub::Status,
            )
            .unwrap();
        assert_eq!(updated["status"]["phase"], "Ready");
    });
}

#[test]
fn kubeconfig_names_contexts_after_clusters() {
    let sb = Sandbox::builder()
        .cluster(ClusterConfig::new("east"))
        .cluster(ClusterConfig::new("west"))
        .context(ContextConfig::new("east-team", "east", "admin").namespace("team-a"))
        .dead_context("gone")
        .start()
        .unwrap();
    let doc: Value = serde_saphyr::from_str(&sb.kubeconfig_yaml()).unwrap();
    assert_eq!(doc["current-context"], "east");
    let ctx = |n: &str| {
        doc["contexts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        ctx("east")["context"],
        json!({"cluster": "east", "user": "east-admin"})
    );
    assert_eq!(ctx("west")["context"]["user"], "west-admin");
    assert_eq!(ctx("east-team")["context"]["namespace"], "team-a");
    assert_eq!(ctx("gone")["context"]["cluster"], "gone");
    let server = |n: &str| {
        doc["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()["cluster"]["server"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(server("east"), sb.cluster("east").url());
    let dead = server("gone");
    assert!(dead.starts_with("https://127.0.0.1:"));
    let port: u16 = dead.rsplit(':').next().unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let user = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "east-admin")
        .unwrap();
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(user["user"]["client-key-data"].as_str().unwrap())
        .unwrap();
    assert!(
        String::from_utf8(key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
}

fn watch_lines(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["type"].as_str().unwrap().to_string(),
                v["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn watch_streams_changes_after_a_resource_version() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let c = admin(&east);
    let all = "/apis/elasticsearch.k8s.elastic.co/v1/elasticsearches";
    let rv = c.get(all).await.unwrap().json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // Changes between the list and the watch are not lost (history replay).
    c.patch(
        &format!("{ES_PATH}/catalog"),
        MERGE,
        &json!({"spec": {"version": "8.19.3"}}),
    )
    .await
    .unwrap();
    let watcher = {
        let c = c.clone();
        let path =
            format!("{all}?watch=true&resourceVersion={rv}&timeoutSeconds=1&labelSelector=tier");
        tokio::spawn(async move { c.get(&path).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.delete(&format!("{ES_PATH}/catalog")).await.unwrap();
    c.delete(&format!("{ES_PATH}/products")).await.unwrap(); // no label: filtered out
    let r = watcher.await.unwrap();
    assert_eq!(r.status, 200);
    // The fake ECK operator's status writes after the spec change are MODIFIED events too.
    let mut lines = watch_lines(&r.body);
    lines.dedup();
    assert_eq!(
        lines,
        [
            ("MODIFIED".to_string(), "catalog".to_string()),
            ("DELETED".into(), "catalog".into())
        ]
    );

    // Without a resourceVersion: the current objects first, as ADDED.
    let r = c
        .get("/apis/elasticsearch.k8s.elastic.co/v1/namespaces/logging/elasticsearches?watch=1&timeoutSeconds=1")
        .await
        .unwrap();
    assert_eq!(
        watch_lines(&r.body),
        [("ADDED".to_string(), "logs".to_string())]
    );
}

#[tokio::test]
async fn subresource_handlers_are_authorized_and_routed() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let handler: remote_cluster_sandbox::SubresourceHandler = std::sync::Arc::new(|req, target| {
        Box::pin(async move {
            use http_body_util::BodyExt;
            let text = format!("{} {} {}", req.method(), target.name, target.user);
            http::Response::new(http_body_util::Full::new(bytes::Bytes::from(text)).boxed())
        })
    });
    east.set_subresource_handler(ResourceKey::PODS, "portforward", handler);
    east.create(
        &ResourceKey::PODS,
        json!({"metadata": {"name": "es-0", "namespace": "search"}, "spec": {"containers": [{"name": "elasticsearch", "image": "x"}]}}),
    )
    .unwrap();
    let c = admin(&east);
    let r = c
        .get("/api/v1/namespaces/search/pods/es-0/portforward?ports=9200")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(String::from_utf8_lossy(&r.body), "GET es-0 admin");
    let missing = c
        .get("/api/v1/namespaces/search/pods/nope/portforward")
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
    let other = c
        .get("/api/v1/namespaces/search/pods/es-0/exec")
        .await
        .unwrap();
    assert_eq!(other.status, 404, "no handler, no route");
    let restricted = east.client("restricted", false).unwrap();
    let denied = restricted
        .get("/api/v1/namespaces/search/pods/es-0/portforward")
        .await
        .unwrap();
    assert_eq!(
        denied.message(),
        "pods \"es-0\" is forbidden: User \"restricted\" cannot create resource \"pods/portforward\" in API group \"\" in the namespace \"search\""
    );
}

#[tokio::test]
async fn self_subject_access_reviews_answer_from_rbac() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let review = |ns: Option<&str>, verb: &str| {
        let mut ra = json!({"verb": verb, "group": ES_GROUP, "resource": "elasticsearches"});
        if let Some(ns) = ns {
            ra["namespace"] = ns.into();
        }
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": ra}})
    };
    let restricted = east.client("restricted", false).unwrap();
    let ask = |c: ApiClient, body: Value| async move {
        let r = c.post(path, &body).await.unwrap();
        assert_eq!(r.status, 201, "{}", r.message());
        r.json()["status"]["allowed"].as_bool().unwrap()
    };
    assert!(ask(restricted.clone(), review(Some("team-a"), "list")).await);
    assert!(!ask(restricted.clone(), review(None, "list")).await);
    assert!(!ask(restricted.clone(), review(Some("team-a"), "patch")).await);
    assert!(!ask(restricted.clone(), review(Some("search"), "get")).await);
    assert!(ask(admin(&east), review(None, "patch")).await);
    let groups = admin(&east)
        .get("/apis/authorization.k8s.io/v1")
        .await
        .unwrap()
        .json();
    assert_eq!(groups["resources"][0]["name"], "selfsubjectaccessreviews");
}

/// `ObjectMeta.labels` and `.annotations` are `omitempty`: a write that empties either map
/// leaves no empty map behind, as the real API server's JSON never holds one.
#[tokio::test]
async fn an_emptied_annotations_map_is_not_stored() {
    let sb = sandbox();
    let east = sb.cluster("east");
    let c = admin(&east);
    let path = format!("{ES_PATH}/products");
    let add = json!([{"op": "add", "path": "/metadata/annotations", "value": {"a": "1"}}]);
    assert_eq!(c.patch(&path, JSON_PATCH, &add).await.unwrap().status, 200);
    let empty = json!([{"op": "remove", "path": "/metadata/annotations/a"}]);
    assert_eq!(
        c.patch(&path, JSON_PATCH, &empty).await.unwrap().status,
        200
    );
    let stored = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "products")
        .unwrap();
    assert_eq!(stored["metadata"].get("annotations"), None, "{stored}");
}
