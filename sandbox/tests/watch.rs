//! The watch API (`?watch=true`) answers like a real API server's (`k8s.io/apiserver`
//! `endpoints/handlers/watch.go`, `storage/cacher`), checked over HTTPS with client certificates
//! and with kube-rs's own watcher, which the plugin waits with.

use std::time::{Duration, Instant};

use remote_cluster_sandbox::{
    ApiClient, ApiStream, ClusterConfig, ClusterHandle, EsSeed, Fault, ResourceKey, Rule, Sandbox,
};
use serde_json::{Value, json};

const ES_GROUP: &str = "elasticsearch.k8s.elastic.co";
const ES_ALL: &str = "/apis/elasticsearch.k8s.elastic.co/v1/elasticsearches";
const ES_PATH: &str = "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/search/elasticsearches";
const MERGE: &str = "application/merge-patch+json";
/// How long a test waits for an event that should come.
const WAIT: Duration = Duration::from_secs(20);

fn cluster() -> ClusterConfig {
    ClusterConfig::new("east")
        .namespace("team-a")
        .elasticsearch(EsSeed::new("search", "products", "9.1.0").label("tier", "hot"))
        .elasticsearch(EsSeed::new("search", "catalog", "8.19.2").label("tier", "warm"))
        .elasticsearch(EsSeed::new("logging", "logs", "8.17.0"))
        .user(
            "restricted",
            vec![Rule::read_only_in("team-a", ES_GROUP, "elasticsearches")],
        )
}

fn sandbox_with(c: ClusterConfig) -> Sandbox {
    Sandbox::builder()
        .cluster(c)
        .operator_delay(Duration::from_millis(300))
        .start()
        .expect("sandbox starts")
}

fn admin(c: &ClusterHandle) -> ApiClient {
    c.client("admin", false).unwrap()
}

/// A sandbox of `c` whose operator has settled, its cluster `east`, and an admin client of it.
fn idle(c: ClusterConfig) -> (Sandbox, ClusterHandle, ApiClient) {
    let sb = sandbox_with(c);
    let east = sb.cluster("east");
    east.wait_idle(WAIT).unwrap();
    let c = admin(&east);
    (sb, east, c)
}

/// `metadata.resourceVersion` of a list (or object) answer.
async fn list_rv(c: &ApiClient, path: &str) -> String {
    let r = c.get(path).await.unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn watch(c: &ApiClient, path: &str) -> ApiStream {
    let s = c.stream(path).await.unwrap();
    assert_eq!(s.status, 200, "watch {path}");
    assert_eq!(s.headers["content-type"], "application/json");
    s
}

/// The next event: `(type, object)`.
async fn next(s: &mut ApiStream) -> (String, Value) {
    let ev = s
        .next_json_within(WAIT)
        .await
        .unwrap()
        .expect("an event, not the end of the stream");
    (
        ev["type"].as_str().unwrap().to_string(),
        ev["object"].clone(),
    )
}

/// Events until the stream ends (the watch's `timeoutSeconds`).
async fn rest(s: &mut ApiStream) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while let Some(ev) = s.next_json_within(WAIT).await.unwrap() {
        out.push((
            ev["type"].as_str().unwrap().to_string(),
            ev["object"].clone(),
        ));
    }
    out
}

fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap()
}

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn watch_from_a_list_resource_version_sees_the_patch_and_the_delete() {
    let (_sb, _east, c) = idle(cluster());
    let from = list_rv(&c, ES_PATH).await;
    let mut s = watch(
        &c,
        &format!("{ES_PATH}?watch=true&resourceVersion={from}&timeoutSeconds=60"),
    )
    .await;
    assert_eq!(
        s.headers
            .get("transfer-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("chunked"),
        "a watch is streamed"
    );
    let r = c
        .patch(
            &format!("{ES_PATH}/catalog"),
            MERGE,
            &json!({"metadata": {"labels": {"watched": "yes"}}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let patched = r.json();
    let (t, obj) = next(&mut s).await;
    assert_eq!(t, "MODIFIED");
    // The object as a GET answers it: same apiVersion/kind, the new resourceVersion.
    assert_eq!(obj, patched);
    assert_eq!(obj["apiVersion"], "elasticsearch.k8s.elastic.co/v1");
    assert_eq!(obj["kind"], "Elasticsearch");
    assert!(rv(&obj) > from.parse().unwrap());

    let r = c.delete(&format!("{ES_PATH}/catalog")).await.unwrap();
    assert_eq!(r.status, 200);
    // Deleting an Elasticsearch, the operator deletes its pods and Services: other types, not
    // in this watch.
    let (t, obj) = next(&mut s).await;
    assert_eq!(t, "DELETED");
    assert_eq!(name(&obj), "catalog");
    // The last state, with a resourceVersion of its own.
    assert_eq!(obj["metadata"]["labels"]["watched"], "yes");
    assert!(rv(&obj) > rv(&patched));
    assert!(obj["spec"]["nodeSets"].is_array());
}

#[tokio::test]
async fn watch_without_or_at_zero_resource_version_starts_with_the_current_objects() {
    let (_sb, _east, c) = idle(cluster());
    // A core Event, so that the events watch has something to show.
    let r = c
        .post(
            "/api/v1/namespaces/search/events",
            &json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "products.1", "namespace": "search"},
                "involvedObject": {"kind": "Elasticsearch", "namespace": "search", "name": "products"},
                "reason": "Test", "message": "watch me", "type": "Normal",
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let collections = [
        ES_PATH.to_string(),
        ES_ALL.to_string(),
        "/api/v1/namespaces/search/services".into(),
        "/api/v1/namespaces/search/pods".into(),
        "/api/v1/namespaces/search/secrets".into(),
        "/api/v1/namespaces/elastic-system/configmaps".into(),
        "/api/v1/namespaces/search/events".into(),
        "/api/v1/namespaces".into(),
    ];
    for path in collections {
        let list = c.get(&path).await.unwrap().json();
        let items = list["items"].as_array().unwrap();
        assert!(!items.is_empty(), "{path}: nothing to watch");
        // Both watches at once: each lasts its timeout.
        let mut both = Vec::new();
        for start in ["", "&resourceVersion=0"] {
            let mut s = watch(&c, &format!("{path}?watch=1&timeoutSeconds=1{start}")).await;
            both.push(async move { (start, rest(&mut s).await) });
        }
        for (start, events) in futures::future::join_all(both).await {
            assert!(
                events.iter().all(|(t, _)| t == "ADDED"),
                "{path}{start}: {events:?}"
            );
            let watched: Vec<_> = events.iter().map(|(_, o)| o.clone()).collect();
            // The same objects as the list, each as a GET answers it (with apiVersion/kind,
            // which typed list items leave out).
            assert_eq!(watched.len(), items.len(), "{path}{start}");
            for (w, item) in watched.iter().zip(items) {
                let ns = w["metadata"]["namespace"].as_str();
                let get_path = match ns {
                    Some(ns) if !path.ends_with("/namespaces") => format!(
                        "{}/{}",
                        path.replace(
                            ES_ALL,
                            &format!("/apis/{ES_GROUP}/v1/namespaces/{ns}/elasticsearches")
                        ),
                        name(w)
                    ),
                    _ => format!("{path}/{}", name(w)),
                };
                assert_eq!(name(w), name(item));
                assert_eq!(w, &c.get(&get_path).await.unwrap().json(), "{get_path}");
            }
        }
    }
}

#[tokio::test]
async fn a_resource_version_older_than_the_history_is_a_410_error_event() {
    let (_sb, _east, c) = idle(cluster().watch_history(5));
    let old = list_rv(&c, ES_PATH).await;
    for i in 0..6 {
        let r = c
            .patch(
                &format!("{ES_PATH}/products"),
                MERGE,
                &json!({"metadata": {"labels": {"n": i.to_string()}}}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    let now: u64 = list_rv(&c, ES_PATH).await.parse().unwrap();
    // 200 and one ERROR event, as the real server's cacher answers (not an HTTP 410).
    let mut s = watch(&c, &format!("{ES_PATH}?watch=true&resourceVersion={old}")).await;
    let events = rest(&mut s).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (t, status) = &events[0];
    assert_eq!(t, "ERROR");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["apiVersion"], "v1");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["code"], 410);
    assert_eq!(status["reason"], "Expired");
    // The oldest resourceVersion still watchable from is one below the oldest event kept.
    assert_eq!(
        status["message"],
        format!("too old resource version: {old} ({})", now - 5)
    );

    // From the oldest kept point, the replay works: the last five changes.
    let mut s = watch(
        &c,
        &format!(
            "{ES_PATH}?watch=true&resourceVersion={}&timeoutSeconds=1",
            now - 5
        ),
    )
    .await;
    let events = rest(&mut s).await;
    let labels: Vec<_> = events
        .iter()
        .map(|(t, o)| format!("{t} {}", o["metadata"]["labels"]["n"].as_str().unwrap()))
        .collect();
    assert_eq!(
        labels,
        [
            "MODIFIED 1",
            "MODIFIED 2",
            "MODIFIED 3",
            "MODIFIED 4",
            "MODIFIED 5"
        ]
    );
}

#[tokio::test]
async fn field_and_label_selectors_filter_the_events() {
    let (_sb, _east, c) = idle(cluster());
    let from = list_rv(&c, ES_ALL).await;
    let paths = [
        // kube-runtime's watch_object: the collection with a metadata.name field selector.
        format!(
            "{ES_PATH}?watch=true&resourceVersion={from}&timeoutSeconds=2&fieldSelector=metadata.name%3Dproducts"
        ),
        format!(
            "{ES_ALL}?watch=true&resourceVersion={from}&timeoutSeconds=2&fieldSelector=metadata.namespace%3Dlogging"
        ),
        format!(
            "{ES_ALL}?watch=true&resourceVersion={from}&timeoutSeconds=2&labelSelector=tier%20in%20(warm)"
        ),
    ];
    let mut streams = Vec::new();
    for p in &paths {
        streams.push(watch(&c, p).await);
    }
    for (ns, es) in [
        ("search", "catalog"),
        ("search", "products"),
        ("logging", "logs"),
    ] {
        let r = c
            .patch(
                &format!("/apis/{ES_GROUP}/v1/namespaces/{ns}/elasticsearches/{es}"),
                MERGE,
                &json!({"metadata": {"annotations": {"touched": "yes"}}}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    let mut seen = Vec::new();
    for s in &mut streams {
        let events = rest(s).await;
        seen.push(
            events
                .iter()
                .map(|(t, o)| format!("{t} {}", name(o)))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        seen,
        [
            vec!["MODIFIED products"],
            vec!["MODIFIED logs"],
            vec!["MODIFIED catalog"]
        ]
    );

    // A selector the list would refuse is refused before the watch starts.
    let r = c
        .get(&format!(
            "{ES_PATH}?watch=true&fieldSelector=spec.version%3D9"
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn timeout_seconds_ends_the_stream_and_bookmarks_come_before_it() {
    let (_sb, _east, c) = idle(cluster());
    let from = list_rv(&c, ES_PATH).await;
    let started = Instant::now();
    let mut s = watch(
        &c,
        &format!("{ES_PATH}?watch=true&resourceVersion={from}&timeoutSeconds=1"),
    )
    .await;
    assert!(s.next_json_within(WAIT).await.unwrap().is_none());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // allowWatchBookmarks: a BOOKMARK 2 s before the deadline (cacheWatcher.nextBookmarkTime)
    // with the cluster's resourceVersion and nothing but apiVersion, kind and it.
    let mut s = watch(
        &c,
        &format!(
            "{ES_PATH}?watch=true&resourceVersion={from}&timeoutSeconds=3&allowWatchBookmarks=true"
        ),
    )
    .await;
    // A change elsewhere (another namespace) moves the resourceVersion, not this watch.
    let r = c
        .patch(
            &format!("/apis/{ES_GROUP}/v1/namespaces/logging/elasticsearches/logs"),
            MERGE,
            &json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let events = rest(&mut s).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (t, obj) = &events[0];
    assert_eq!(t, "BOOKMARK");
    let now = list_rv(&c, ES_PATH).await;
    assert_eq!(
        obj,
        &json!({
            "apiVersion": "elasticsearch.k8s.elastic.co/v1",
            "kind": "Elasticsearch",
            "metadata": {"resourceVersion": now},
        })
    );
    assert_eq!(rv(obj), rv(&r.json()));
}

#[tokio::test]
async fn send_initial_events_ends_with_an_annotated_bookmark() {
    let (_sb, _east, c) = idle(cluster());
    let now = list_rv(&c, ES_PATH).await;
    let mut s = watch(&c, &format!("{ES_PATH}?watch=true&timeoutSeconds=1&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0")).await;
    let events = rest(&mut s).await;
    let kinds: Vec<_> = events
        .iter()
        .map(|(t, o)| format!("{t} {}", o["metadata"]["name"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, ["ADDED catalog", "ADDED products", "BOOKMARK "]);
    let bookmark = &events[2].1;
    assert_eq!(bookmark["metadata"]["resourceVersion"], now.as_str());
    assert_eq!(
        bookmark["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    // sendInitialEvents without resourceVersionMatch=NotOlderThan: 422 on ListOptions.
    let r = c
        .get(&format!("{ES_PATH}?watch=true&sendInitialEvents=true"))
        .await
        .unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(r.reason(), "Invalid");
    assert_eq!(
        r.message(),
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
    );
    assert_eq!(r.json()["details"]["kind"], "ListOptions");
    let r = c
        .get(&format!(
            "{ES_PATH}?watch=true&resourceVersionMatch=Exact&resourceVersion=1"
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 422);
    let causes: Vec<_> = r.json()["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(causes, ["FieldValueForbidden", "FieldValueNotSupported"]);

    // sendInitialEvents=false from "0": no initial state, changes from now on.
    let mut s = watch(&c, &format!("{ES_PATH}?watch=true&timeoutSeconds=2&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&resourceVersion=0")).await;
    let r = c
        .patch(
            &format!("{ES_PATH}/catalog"),
            MERGE,
            &json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let events: Vec<_> = rest(&mut s)
        .await
        .into_iter()
        .map(|(t, o)| format!("{t} {}", name(&o)))
        .collect();
    assert_eq!(events, ["MODIFIED catalog"]);
}

#[tokio::test]
async fn the_operators_rollout_is_seen_as_modified_events() {
    let (_sb, _east, c) = idle(cluster());
    let from = list_rv(&c, ES_PATH).await;
    let mut s = watch(
        &c,
        &format!("{ES_PATH}?watch=true&resourceVersion={from}&fieldSelector=metadata.name%3Dproducts&timeoutSeconds=60"),
    )
    .await;
    let r = c
        .patch(
            &format!("{ES_PATH}/products"),
            MERGE,
            &json!({"spec": {"version": "9.1.3"}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let (t, obj) = next(&mut s).await;
    assert_eq!(
        (t.as_str(), obj["metadata"]["generation"].as_i64()),
        ("MODIFIED", Some(2))
    );
    // Then the operator's status writes, up to the end of the rolling restart.
    let mut phases = Vec::new();
    let mut last = rv(&obj);
    loop {
        let (t, obj) = next(&mut s).await;
        assert_eq!(t, "MODIFIED");
        assert!(rv(&obj) > last, "resourceVersions increase");
        last = rv(&obj);
        phases.push(obj["status"]["phase"].as_str().unwrap_or("").to_string());
        if obj["status"]["observedGeneration"] == 2 && obj["status"]["phase"] == "Ready" {
            assert_eq!(obj["status"]["version"], "9.1.3");
            break;
        }
    }
    assert!(phases.iter().any(|p| p == "ApplyingChanges"), "{phases:?}");
}

#[tokio::test]
async fn watches_are_authorized_logged_and_hit_by_faults() {
    let (_sb, east, c) = idle(cluster());
    east.clear_requests();
    east.inject_fault(Fault::new("GET", ES_PATH).status(503));
    let r = c
        .get(&format!("{ES_PATH}?watch=true&timeoutSeconds=1"))
        .await
        .unwrap();
    assert_eq!(r.status, 503);
    let mut s = watch(&c, &format!("{ES_PATH}?watch=true&timeoutSeconds=1")).await;
    assert_eq!(rest(&mut s).await.len(), 2);
    let log: Vec<_> = east
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.query, r.status))
        .collect();
    let q = "watch=true&timeoutSeconds=1".to_string();
    assert_eq!(
        log,
        [
            ("GET".to_string(), ES_PATH.to_string(), q.clone(), 503),
            ("GET".into(), ES_PATH.into(), q, 200),
        ]
    );

    // RBAC verb `watch`: allowed where the user may watch, 403 elsewhere.
    let restricted = east.client("restricted", false).unwrap();
    let team_a = format!(
        "/apis/{ES_GROUP}/v1/namespaces/team-a/elasticsearches?watch=true&timeoutSeconds=1"
    );
    let mut s = watch(&restricted, &team_a).await;
    assert!(rest(&mut s).await.is_empty());
    let r = restricted
        .get(&format!("{ES_PATH}?watch=true&timeoutSeconds=1"))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert!(
        r.message()
            .contains("cannot watch resource \"elasticsearches\""),
        "{}",
        r.message()
    );

    // Over h2 too (kubectl negotiates it).
    let h2 = east.client("admin", true).unwrap();
    let mut s = watch(&h2, &format!("{ES_PATH}?watch=true&timeoutSeconds=1")).await;
    assert_eq!(rest(&mut s).await.len(), 2);
}

#[tokio::test]
async fn a_deleted_namespace_and_seeded_objects_are_watch_events() {
    let (_sb, east, c) = idle(cluster());
    // Seeded namespaces went through the same commit path: a watch from resourceVersion 1
    // replays them.
    let mut s = watch(
        &c,
        "/api/v1/namespaces?watch=true&resourceVersion=1&timeoutSeconds=1",
    )
    .await;
    let names: Vec<_> = rest(&mut s)
        .await
        .into_iter()
        .filter(|(t, _)| t == "ADDED")
        .map(|(_, o)| name(&o).to_string())
        .collect();
    assert!(names.contains(&"team-a".to_string()), "{names:?}");
    assert!(names.contains(&"search".to_string()), "{names:?}");

    let from = list_rv(&c, ES_ALL).await;
    let mut s = watch(
        &c,
        &format!("{ES_ALL}?watch=true&resourceVersion={from}&timeoutSeconds=2"),
    )
    .await;
    let r = c.delete("/api/v1/namespaces/logging").await.unwrap();
    assert_eq!(r.status, 200);
    let events: Vec<_> = rest(&mut s)
        .await
        .into_iter()
        .map(|(t, o)| format!("{t} {}", name(&o)))
        .collect();
    assert_eq!(events, ["DELETED logs"]);
    assert!(
        east.get(&ResourceKey::ELASTICSEARCHES, Some("logging"), "logs")
            .is_none()
    );
}

/// kube-rs's watcher (kube-runtime), as the plugin waits: list, then watch from the list's
/// resourceVersion with bookmarks, and `await_condition` on one object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watcher_and_await_condition_follow_a_rollout() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use kube::runtime::{WatchStreamExt, wait::await_condition, watcher};

    let sb = sandbox_with(cluster());
    let east = sb.cluster("east");
    east.wait_idle(WAIT).unwrap();
    let kc = Kubeconfig::from_yaml(&sb.kubeconfig_yaml()).unwrap();
    let opts = KubeConfigOptions {
        context: Some("east".into()),
        ..Default::default()
    };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let gvk = GroupVersionKind::gvk(ES_GROUP, "v1", "Elasticsearch");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "elasticsearches");
    let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(client, "search", &ar);

    // The watcher's first objects: the two Elasticsearch of the namespace.
    let mut objects = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    let mut first = Vec::new();
    for _ in 0..2 {
        let o = tokio::time::timeout(WAIT, objects.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        first.push(o.metadata.name.unwrap());
    }
    first.sort();
    assert_eq!(first, ["catalog", "products"]);

    // A spec change, then wait for the operator to have rolled it out, by watch.
    api.patch(
        "products",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"version": "9.1.3"}})),
    )
    .await
    .unwrap();
    let rolled_out = |o: Option<&DynamicObject>| {
        o.is_some_and(|o| {
            o.data["status"]["observedGeneration"] == 2 && o.data["status"]["phase"] == "Ready"
        })
    };
    let done = tokio::time::timeout(WAIT, await_condition(api.clone(), "products", rolled_out))
        .await
        .expect("rollout seen within the wait")
        .unwrap()
        .unwrap();
    assert_eq!(done.data["status"]["version"], "9.1.3");
    // The general watcher saw the change too.
    let o = tokio::time::timeout(WAIT, objects.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(o.metadata.name.as_deref(), Some("products"));

    // What kube-rs sent: lists, then watches from their resourceVersion with bookmarks; all
    // answered 200.
    let log = east.requests();
    let watches: Vec<_> = log
        .iter()
        .filter(|r| r.query.contains("watch=true"))
        .collect();
    assert!(!watches.is_empty());
    for w in &watches {
        assert_eq!(w.status, 200, "{w:?}");
        assert!(w.query.contains("allowWatchBookmarks=true"), "{w:?}");
        assert!(w.query.contains("resourceVersion="), "{w:?}");
    }
    assert!(
        watches
            .iter()
            .any(|w| w.query.contains("fieldSelector=metadata.name%3Dproducts")),
        "{watches:?}"
    );
    assert!(log.iter().all(|r| r.status == 200), "{log:?}");
}
