//! The HTTPS front: mutual TLS, authentication by client certificate, authorization (RBAC),
//! discovery, routing of resource URLs to [`ClusterState`], faults, latency and the request log.
//!
//! URL layout and request-info parsing follow `k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`;
//! authorization runs before routing, as the real filter chain does (so a user without rights
//! gets 403 even for a resource type the server does not serve).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cluster::{
    ClusterState, FieldValidation, ListQuery, PatchType, Sub, WriteOpts, unknown_patch_format,
};
use crate::config::{FaultAction, RequestRecord};
use crate::discovery;
use crate::elasticsearch::media_type;
use crate::openapi;
use crate::resources::{self, ResourceKey};
use crate::status::ApiError;
use crate::table;

/// Body type of the API server's responses.
pub type Body = BoxBody<Bytes, Infallible>;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    fn is_admin(&self) -> bool {
        self.user == "admin" || self.groups.iter().any(|g| g == "system:masters")
    }
}

/// Error type of the service: dropping the connection on purpose (fault).
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// Accepts connections until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<ClusterState>,
    port: u16,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        let state = state.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let identity = {
                let (_, conn) = stream.get_ref();
                conn.peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| crate::pki::identity(c.as_ref()))
            };
            let Some((user, groups)) = identity else {
                return;
            };
            let ident = Arc::new(Identity { user, groups });
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                let ident = ident.clone();
                async move { handle(state, ident, port, req).await }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // With upgrades: pod port-forward switches the connection to WebSocket.
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A whole response body (for subresource handlers).
pub(crate) fn full_body(text: String) -> Body {
    full(text)
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response<Body> {
    let mut resp = Response::new(full(serde_json::to_vec(body).unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert(
        "audit-id",
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid header"),
    );
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    for w in warnings {
        // RFC 7234 warning header, as the API server sends: `299 - "message"`.
        let v = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.append("warning", v);
        }
    }
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.to_status(), &[]);
    if e.code == 429 {
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    r
}

async fn handle(
    state: Arc<ClusterState>,
    ident: Arc<Identity>,
    port: u16,
    req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let accept = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut record = RequestRecord {
        cluster: state.name.clone(),
        user: ident.user.clone(),
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        status: 0,
    };
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Dropped),
    };
    match state.take_fault(method.as_str(), &path) {
        Some(FaultAction::Status(code)) => {
            record.status = code;
            state.record(record);
            return Ok(error_response(&ApiError::from_code(code)));
        }
        Some(FaultAction::DropConnection) => {
            state.record(record);
            return Err(Dropped);
        }
        Some(FaultAction::Timeout) => {
            state.record(record);
            // Hang until the client gives up (or the sandbox stops, which drops the task).
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
        Some(FaultAction::ConcurrentMergePatch(patch)) => concurrent_write(&state, &path, &patch),
        None => {}
    }
    let ctx = Ctx {
        state: &state,
        ident: &ident,
        port,
        method: &method,
        path: &path,
        query: crate::elasticsearch::parse_query(&query),
        content_type: content_type.as_deref(),
        accept: &accept,
        body: &body,
        parts: std::sync::Mutex::new(Some(parts)),
    };
    let resp = match route(&ctx).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    record.status = resp.status().as_u16();
    state.record(record);
    Ok(resp)
}

struct Ctx<'a> {
    state: &'a Arc<ClusterState>,
    ident: &'a Identity,
    port: u16,
    method: &'a Method,
    path: &'a str,
    query: Vec<(String, String)>,
    content_type: Option<&'a str>,
    accept: &'a str,
    body: &'a Bytes,
    /// The request head (with hyper's upgrade handle), for subresource handlers.
    parts: std::sync::Mutex<Option<http::request::Parts>>,
}

impl Ctx<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The `ConcurrentMergePatch` fault: another writer changes the addressed object now.
fn concurrent_write(state: &ClusterState, path: &str, patch: &Value) {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(rr) = parse_resource_path(&segs) else {
        return;
    };
    let (Some(info), Some(name)) = (
        crate::resources::lookup(rr.group, rr.version, rr.plural),
        rr.name,
    ) else {
        return;
    };
    let Ok(body) = serde_json::to_vec(patch) else {
        return;
    };
    let sub = if rr.sub == Some("status") {
        Sub::Status
    } else {
        Sub::Main
    };
    if let Err(e) = state.patch(
        &info.key,
        rr.namespace,
        name,
        PatchType::Merge,
        &body,
        sub,
        WriteOpts::default(),
    ) {
        eprintln!("sandbox: concurrent writer fault on {path} failed: {e}");
    }
}

/// What the URL addresses (request info), before knowing whether it is served.
#[derive(Debug)]
struct ResourceRequest<'a> {
    group: &'a str,
    version: &'a str,
    plural: &'a str,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    sub: Option<&'a str>,
}

fn parse_resource_path<'a>(segs: &[&'a str]) -> Option<ResourceRequest<'a>> {
    let (group, version, rest) = match segs {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let mk = |plural, namespace, name, sub| ResourceRequest {
        group,
        version,
        plural,
        namespace,
        name,
        sub,
    };
    match rest {
        [] => None,
        // /api/v1/namespaces/{name}/status: the namespace's own subresource.
        ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => {
            Some(mk("namespaces", Some(*name), Some(*name), Some(*sub)))
        }
        ["namespaces", ns, plural] => Some(mk(plural, Some(ns), None, None)),
        ["namespaces", ns, plural, name] => Some(mk(plural, Some(ns), Some(name), None)),
        ["namespaces", ns, plural, name, sub] => Some(mk(plural, Some(ns), Some(name), Some(sub))),
        // /api/v1/namespaces/{name}: the namespace object; its "namespace" for RBAC is itself.
        ["namespaces", name] => Some(mk("namespaces", Some(name), Some(name), None)),
        [plural] => Some(mk(plural, None, None, None)),
        [plural, name] => Some(mk(plural, None, Some(name), None)),
        [plural, name, sub] => Some(mk(plural, None, Some(name), Some(sub))),
        _ => None,
    }
}

fn verb_of(method: &Method, has_name: bool, watch: bool, sub: Option<&str>) -> &'static str {
    // Streaming subresources: a WebSocket GET needs `create` like a POST (KEP-4006,
    // AuthorizePodWebsocketUpgradeCreatePermission, on by default since 1.31).
    if matches!(sub, Some("portforward" | "exec" | "attach")) {
        return "create";
    }
    match (method.as_str(), has_name) {
        // requestinfo.go: only a collection GET becomes `watch` (or `list`); a named GET with
        // `?watch=true` is a get (and answered as one).
        ("GET" | "HEAD", false) if watch => "watch",
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// RBAC: `admin`/`system:masters` may do anything; others need a matching rule.
fn authorize(ctx: &Ctx<'_>, rr: &ResourceRequest<'_>, verb: &str) -> Result<(), ApiError> {
    let resource = match rr.sub {
        Some(s) => format!("{}/{s}", rr.plural),
        None => rr.plural.to_string(),
    };
    if allowed(
        ctx.state,
        ctx.ident,
        verb,
        rr.group,
        &resource,
        rr.namespace,
    ) {
        return Ok(());
    }
    // k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac: the reason string, then
    // NewForbidden(GroupResource, name, reason) in the authorization filter.
    let scope = match rr.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let why = format!(
        "User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
        ctx.ident.user, rr.group
    );
    let key = ResourceKey {
        group: leak(rr.group),
        version: leak(rr.version),
        plural: leak(rr.plural),
    };
    // A collection POST has no name in the URL, so its denial names none.
    let name = rr.name.unwrap_or("");
    Err(ApiError::forbidden(&key, name, &why))
}

/// RBAC decision. Every authenticated user may create SelfSubjectAccessReviews
/// (ClusterRole `system:basic-user`).
fn allowed(
    state: &ClusterState,
    ident: &Identity,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> bool {
    if ident.is_admin()
        || (group == "authorization.k8s.io"
            && resource == "selfsubjectaccessreviews"
            && verb == "create")
    {
        return true;
    }
    state.users.get(&ident.user).is_some_and(|rules| {
        rules
            .iter()
            .any(|r| r.allows(verb, group, resource, namespace))
    })
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: the caller asks whether it
/// may do something (`resourceAttributes` or `nonResourceAttributes`); answered 201 with
/// `status.allowed` (`pkg/registry/authorization/selfsubjectaccessreview/rest.go`).
fn self_subject_access_review(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    if ctx.method != Method::POST {
        return Err(method_not_allowed(ctx.method));
    }
    let key = ResourceKey::SELF_SUBJECT_ACCESS_REVIEWS;
    let info = key.info().expect("known resource");
    let mut review = decode_body(ctx, info)?;
    let ra = review.pointer("/spec/resourceAttributes").cloned();
    let nra = review.pointer("/spec/nonResourceAttributes").cloned();
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let allowed_now = match (&ra, &nra) {
        (Some(ra), None) => {
            let sub = field(ra, "subresource");
            let resource = if sub.is_empty() {
                field(ra, "resource")
            } else {
                format!("{}/{sub}", field(ra, "resource"))
            };
            let ns = field(ra, "namespace");
            allowed(
                ctx.state,
                ctx.ident,
                &field(ra, "verb"),
                &field(ra, "group"),
                &resource,
                (!ns.is_empty()).then_some(ns.as_str()),
            )
        }
        // Non-resource URLs (discovery, /version, /healthz...) are open to authenticated users.
        (None, Some(_)) => true,
        _ => {
            return Err(ApiError::invalid(
                &key,
                "",
                vec![crate::status::Cause {
                    reason: "FieldValueRequired",
                    message: "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
                    field: "spec.resourceAttributes".into(),
                }],
            ));
        }
    };
    let mut status = serde_json::json!({"allowed": allowed_now});
    if allowed_now && ctx.ident.is_admin() {
        status["reason"] = "RBAC: allowed by ClusterRoleBinding \"cluster-admin\" of ClusterRole \"cluster-admin\" to Group \"system:masters\"".into();
    }
    review["status"] = status;
    review["apiVersion"] = key.api_version().into();
    review["kind"] = "SelfSubjectAccessReview".into();
    review["metadata"] = serde_json::json!({"creationTimestamp": null});
    Ok(json_response(201, &review, &[]))
}

/// Request paths name arbitrary strings; ResourceKey holds `&'static str`. Known names map to
/// the static table; unknown ones (only used in a Forbidden message) are interned once.
fn leak(s: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static INTERNED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut guard = INTERNED.lock().expect("intern lock");
    let set = guard.get_or_insert_with(HashSet::new);
    if let Some(v) = set.get(s) {
        return v;
    }
    let v: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(v);
    v
}

async fn route(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = ctx.path.split('/').filter(|s| !s.is_empty()).collect();
    let state = ctx.state;
    let get_only = |r: Result<Value, ApiError>| -> Result<Response<Body>, ApiError> {
        if ctx.method != Method::GET && ctx.method != Method::HEAD {
            return Err(method_not_allowed(ctx.method));
        }
        r.map(|v| json_response(200, &v, &[]))
    };
    match segs.as_slice() {
        [] => return get_only(Ok(discovery::root_paths(state))),
        ["version"] => return get_only(Ok(discovery::version())),
        ["healthz" | "livez" | "readyz", ..] => {
            let mut r = Response::new(full("ok"));
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return Ok(r);
        }
        ["api"] => return get_only(Ok(discovery::core_versions(ctx.port))),
        ["api", "v1"] => return get_only(Ok(discovery::core_resources())),
        ["apis"] => return get_only(Ok(discovery::groups(state))),
        ["apis", g] => return get_only(discovery::group(state, g).ok_or_else(ApiError::no_route)),
        ["apis", g, v] => {
            return get_only(
                discovery::group_resources(state, g, v).ok_or_else(ApiError::no_route),
            );
        }
        ["openapi", "v3"] => return get_only(Ok(openapi::root(state))),
        ["openapi", "v3", "api", v] => {
            return get_only(openapi::group_version(state, "", v).ok_or_else(ApiError::no_route));
        }
        ["openapi", "v3", "apis", g, v] => {
            return get_only(openapi::group_version(state, g, v).ok_or_else(ApiError::no_route));
        }
        ["openapi", ..] => {
            // No OpenAPI v2: kubectl uses v3 (see openapi.rs).
            return Err(ApiError::no_route());
        }
        _ => {}
    }
    let Some(rr) = parse_resource_path(&segs) else {
        return Err(ApiError::no_route());
    };
    let watch = matches!(ctx.param("watch"), Some("true" | "1"));
    let verb = verb_of(ctx.method, rr.name.is_some(), watch, rr.sub);
    authorize(ctx, &rr, verb)?;

    let info = resources::lookup(rr.group, rr.version, rr.plural)
        .filter(|i| state.serves(&i.key))
        .ok_or_else(ApiError::no_route)?;
    let key = info.key;
    if key == ResourceKey::SELF_SUBJECT_ACCESS_REVIEWS {
        if rr.name.is_some() || rr.namespace.is_some() {
            return Err(ApiError::no_route());
        }
        return self_subject_access_review(ctx);
    }
    // Scope checks: cluster-scoped types have no namespaced URLs, and the reverse.
    let is_namespace_object = key == ResourceKey::NAMESPACES;
    if !info.namespaced && rr.namespace.is_some() && !is_namespace_object {
        return Err(ApiError::no_route());
    }
    if info.namespaced && rr.namespace.is_none() && rr.name.is_some() {
        return Err(ApiError::no_route());
    }
    let sub = match rr.sub {
        None => Sub::Main,
        Some("status") if info.status_subresource => Sub::Status,
        Some(sub) => {
            let (Some(handler), Some(name)) = (state.subresource_handler(&key, sub), rr.name)
            else {
                return Err(ApiError::no_route());
            };
            let object = state.get(&key, rr.namespace, name)?;
            let parts = ctx
                .parts
                .lock()
                .expect("parts lock")
                .take()
                .ok_or_else(|| ApiError::internal("request head already used"))?;
            let target = crate::SubresourceTarget {
                namespace: rr.namespace.map(str::to_string),
                name: name.to_string(),
                object,
                user: ctx.ident.user.clone(),
            };
            return Ok(handler(Request::from_parts(parts, ()), target).await);
        }
    };
    let ns = if is_namespace_object {
        None
    } else {
        rr.namespace
    };
    let opts = write_opts(ctx)?;

    match (ctx.method.as_str(), rr.name) {
        ("GET" | "HEAD", None) if watch => {
            let opts = watch_options(ctx)?;
            let w = match state.watch(
                &key,
                ns,
                &selectors(ctx),
                ctx.param("resourceVersion"),
                opts.send_initial_events,
            ) {
                Ok(w) => w,
                // Too old: the real server answers 200 with one ERROR event (the cacher's
                // `newErrWatcher`), not an HTTP error; clients (client-go's reflector,
                // kube-runtime's watcher) then list again.
                Err(e) if e.code == 410 => return Ok(watch_error_response(&e)),
                Err(e) => return Err(e),
            };
            Ok(watch_response(
                state,
                info,
                w,
                opts,
                wants_table(ctx.accept),
            ))
        }
        ("GET" | "HEAD", None) => {
            let q = ListQuery {
                limit: match ctx.param("limit") {
                    Some(l) if !l.is_empty() => Some(
                        l.parse()
                            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
                    ),
                    _ => None,
                },
                continue_token: ctx.param("continue").map(str::to_string),
                ..selectors(ctx)
            };
            let list = state.list(&key, ns, &q)?;
            answer(ctx, info, 200, list, &[], true)
        }
        ("GET" | "HEAD", Some(name)) => {
            let obj = state.get(&key, ns, name)?;
            answer(ctx, info, 200, obj, &[], false)
        }
        ("POST", None) => {
            let body = decode_body(ctx, info)?;
            let out = state.create(&key, ns, body, opts)?;
            Ok(json_response(out.code, &out.body, &out.warnings))
        }
        ("PUT", Some(name)) => {
            let body = decode_body(ctx, info)?;
            let out = state.update(&key, ns, name, body, sub, opts)?;
            Ok(json_response(out.code, &out.body, &out.warnings))
        }
        ("PATCH", Some(name)) => {
            let pt = match media_type(ctx.content_type.unwrap_or("")).as_str() {
                "application/merge-patch+json" => PatchType::Merge,
                "application/json-patch+json" => PatchType::Json,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml" => PatchType::Apply,
                _ => return Err(unknown_patch_format()),
            };
            let out = state.patch(&key, ns, name, pt, ctx.body, sub, opts)?;
            Ok(json_response(out.code, &out.body, &out.warnings))
        }
        ("DELETE", Some(name)) => {
            let options: Option<Value> = if ctx.body.is_empty() {
                None
            } else {
                Some(serde_json::from_slice(ctx.body).map_err(|e| {
                    ApiError::bad_request(format!("error decoding DeleteOptions: {e}"))
                })?)
            };
            let out = state.delete(&key, ns, name, options.as_ref(), opts)?;
            Ok(json_response(out.code, &out.body, &out.warnings))
        }
        ("DELETE", None) => Err(ApiError::method_not_allowed(
            "deletecollection is not implemented by the sandbox API server",
        )),
        _ => Err(method_not_allowed(ctx.method)),
    }
}

/// 405 for a method the addressed URL does not serve.
fn method_not_allowed(method: &Method) -> ApiError {
    ApiError::method_not_allowed(format!(
        "the server does not allow this method on the requested resource ({method})"
    ))
}

/// `labelSelector` and `fieldSelector` of a list or watch.
fn selectors(ctx: &Ctx<'_>) -> ListQuery {
    ListQuery {
        label_selector: ctx.param("labelSelector").map(str::to_string),
        field_selector: ctx.param("fieldSelector").map(str::to_string),
        ..ListQuery::default()
    }
}

fn write_opts(ctx: &Ctx<'_>) -> Result<WriteOpts, ApiError> {
    let dry_run = match ctx.param("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid dryRun value: dryRun values must be \"All\", got {other:?}"
            )));
        }
    };
    let field_validation = match ctx.param("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Ignore") => FieldValidation::Ignore,
        Some("Strict") => FieldValidation::Strict,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            )));
        }
    };
    Ok(WriteOpts {
        dry_run,
        field_validation,
    })
}

fn decode_body(ctx: &Ctx<'_>, info: &resources::ResourceInfo) -> Result<Value, ApiError> {
    let ct = media_type(ctx.content_type.unwrap_or("application/json"));
    if ct == "application/vnd.kubernetes.protobuf" {
        return crate::proto::decode(ctx.body, info);
    }
    let text = std::str::from_utf8(ctx.body)
        .map_err(|_| ApiError::bad_request("the request body is not valid UTF-8"))?;
    let undecodable = |e: &dyn std::fmt::Display| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            info.kind, info.key.version, info.kind
        ))
    };
    match ct.as_str() {
        "application/json" | "" | "*/*" => serde_json::from_str(text).map_err(|e| undecodable(&e)),
        "application/yaml" => serde_saphyr::from_str::<Value>(text).map_err(|e| undecodable(&e)),
        _ => Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {ct})"
        ))),
    }
}

/// Answers an object or list, as a `meta.k8s.io/v1` Table when the client asks for one
/// (kubectl get does: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`).
fn answer(
    ctx: &Ctx<'_>,
    info: &'static resources::ResourceInfo,
    code: u16,
    body: Value,
    warnings: &[String],
    is_list: bool,
) -> Result<Response<Body>, ApiError> {
    if wants_table(ctx.accept) {
        let include = ctx.param("includeObject").unwrap_or("Metadata");
        let t = table::to_table(info, &body, is_list, include);
        return Ok(json_response(code, &t, warnings));
    }
    if wants_metadata_only(ctx.accept) {
        return Ok(json_response(
            code,
            &metadata_only(&body, is_list),
            warnings,
        ));
    }
    if !accepts_json(ctx.accept) {
        return Err(ApiError::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: application/json, application/yaml (got {})",
                ctx.accept
            ),
        ));
    }
    Ok(json_response(code, &body, warnings))
}

/// Query parameters of a watch besides the selectors and `resourceVersion`.
struct WatchOpts {
    /// `timeoutSeconds`; unset or 0: the server's default (its `--min-request-timeout`, 1800 s,
    /// times a random factor in [1, 2) on a real server; 1800 s here).
    timeout: Duration,
    /// `allowWatchBookmarks=true`.
    bookmarks: bool,
    /// `sendInitialEvents` (with `resourceVersionMatch=NotOlderThan`). `true`: the current
    /// objects as ADDED whatever the resourceVersion, then (with bookmarks) a BOOKMARK annotated
    /// `k8s.io/initial-events-end: "true"` (the streaming list of KEP-3157). `false`: no
    /// initial state, from the resourceVersion or from now.
    send_initial_events: Option<bool>,
}

/// Seconds between bookmarks (`bookmarkFrequency` of `storage/cacher`).
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

fn watch_options(ctx: &Ctx<'_>) -> Result<WatchOpts, ApiError> {
    let flag = |name: &str| matches!(ctx.param(name), Some("true" | "1"));
    let timeout = match ctx.param("timeoutSeconds") {
        None | Some("") => 0,
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {t:?}")))?,
    };
    let send_initial_events = match ctx.param("sendInitialEvents") {
        None | Some("") => None,
        Some(v) => Some(matches!(v, "true" | "1")),
    };
    let rv_match = ctx.param("resourceVersionMatch").unwrap_or("");
    // `apimachinery/pkg/apis/meta/internalversion/validation` (validateWatchOptions).
    let mut causes = Vec::new();
    if send_initial_events.is_some() && rv_match != "NotOlderThan" {
        causes.push(crate::status::Cause {
            reason: "FieldValueForbidden",
            message:
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
                    .into(),
            field: "resourceVersionMatch".into(),
        });
    }
    if send_initial_events.is_none() && !rv_match.is_empty() {
        causes.push(crate::status::Cause {
            reason: "FieldValueForbidden",
            message: "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided".into(),
            field: "resourceVersionMatch".into(),
        });
    }
    if !rv_match.is_empty() && rv_match != "NotOlderThan" {
        causes.push(crate::status::Cause::unsupported(
            "resourceVersionMatch",
            &Value::from(rv_match),
            &["NotOlderThan".to_string()],
        ));
    }
    if !causes.is_empty() {
        let detail: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let detail = if detail.len() == 1 {
            detail[0].clone()
        } else {
            format!("[{}]", detail.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(
                |c| serde_json::json!({"reason": c.reason, "message": c.message, "field": c.field}),
            )
            .collect();
        return Err(ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("ListOptions.meta.k8s.io \"\" is invalid: {detail}"),
            details: Some(serde_json::json!({
                "group": "meta.k8s.io",
                "kind": "ListOptions",
                "causes": causes,
            })),
        });
    }
    Ok(WatchOpts {
        timeout: if timeout == 0 {
            Duration::from_secs(1800)
        } else {
            Duration::from_secs(timeout)
        },
        bookmarks: flag("allowWatchBookmarks"),
        send_initial_events,
    })
}

/// Headers of a watch answer: 200, JSON, streamed (chunked on HTTP/1.1).
fn watch_headers(resp: &mut Response<Body>) {
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    h.insert(
        "audit-id",
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid header"),
    );
}

fn watch_line(event_type: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&serde_json::json!({"type": event_type, "object": object}))
        .unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// A watch that cannot start from its resourceVersion: 200 and one `ERROR` event whose object
/// is the `Status` (410 Expired), then the end of the stream.
fn watch_error_response(e: &ApiError) -> Response<Body> {
    let mut resp = Response::new(full(watch_line("ERROR", &e.to_status())));
    watch_headers(&mut resp);
    resp
}

/// `BOOKMARK` object: only apiVersion, kind and `metadata.resourceVersion` (plus the
/// initial-events-end annotation after a streaming list).
fn bookmark(info: &resources::ResourceInfo, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = serde_json::json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = serde_json::json!({"k8s.io/initial-events-end": "true"});
    }
    watch_line(
        "BOOKMARK",
        &serde_json::json!({
            "apiVersion": info.key.api_version(),
            "kind": info.kind,
            "metadata": metadata,
        }),
    )
}

/// When the next bookmark is due (`cacheWatcher.nextBookmarkTime`): every minute, and 2 s
/// before the watch's deadline; none when that moment has passed.
fn next_bookmark(
    now: tokio::time::Instant,
    deadline: tokio::time::Instant,
) -> Option<tokio::time::Instant> {
    let at = (now + BOOKMARK_EVERY).min(deadline.checked_sub(Duration::from_secs(2))?);
    (at >= now).then_some(at)
}

/// Streams watch events as JSON lines (`{"type":"ADDED","object":{...}}`) until the timeout,
/// the client leaves, or the watcher falls too far behind (the real server then closes the
/// watch too and the client watches again).
fn watch_response(
    state: &Arc<ClusterState>,
    info: &'static resources::ResourceInfo,
    w: crate::cluster::Watch,
    opts: WatchOpts,
    as_table: bool,
) -> Response<Body> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let body = http_body_util::StreamBody::new(futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|b| b.map(|b| Ok::<_, Infallible>(hyper::body::Frame::data(b))))
    }));
    let encode = move |ev: &crate::WatchEvent| -> Bytes {
        if as_table {
            watch_line(
                ev.event_type,
                &table::to_table(info, &ev.object, false, "Metadata"),
            )
        } else {
            watch_line(ev.event_type, &ev.object)
        }
    };
    let state = Arc::downgrade(state);
    tokio::spawn(async move {
        let crate::cluster::Watch {
            initial,
            mut receiver,
            filter,
            mut position,
        } = w;
        let deadline = tokio::time::Instant::now() + opts.timeout;
        for ev in &initial {
            position = position.max(event_rv(ev));
            if tx.send(encode(ev)).await.is_err() {
                return;
            }
        }
        if opts.send_initial_events == Some(true)
            && opts.bookmarks
            && tx.send(bookmark(info, position, true)).await.is_err()
        {
            return;
        }
        let mut bookmark_at = opts
            .bookmarks
            .then(|| next_bookmark(tokio::time::Instant::now(), deadline))
            .flatten();
        loop {
            // Store changes to pass on (skipped if already sent from the history, or filtered
            // out), and whether a bookmark follows them.
            let mut pending = Vec::new();
            let mut bookmark_rv = None;
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tokio::time::sleep_until(bookmark_at.unwrap_or(deadline)), if bookmark_at.is_some() => {
                    // Every change up to the cluster's resourceVersion is in the channel by
                    // now (published under the store lock): pass those on first, so a client
                    // that resumes from the bookmark misses nothing.
                    let Some(rv) = state.upgrade().map(|s| s.current_rv_number()) else {
                        return;
                    };
                    loop {
                        match receiver.try_recv() {
                            Ok(ev) => pending.push(ev),
                            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => break,
                            Err(_) => return,
                        }
                    }
                    bookmark_rv = Some(rv);
                    bookmark_at = next_bookmark(tokio::time::Instant::now(), deadline);
                }
                next = receiver.recv() => match next {
                    Ok(ev) => pending.push(ev),
                    // Lagged behind the channel (the client re-watches) or closed.
                    Err(_) => return,
                },
            }
            for ev in pending {
                if event_rv(&ev) > position {
                    position = event_rv(&ev);
                    if filter.matches(&ev) && tx.send(encode(&ev)).await.is_err() {
                        return;
                    }
                }
            }
            if let Some(rv) = bookmark_rv {
                position = position.max(rv);
                if tx.send(bookmark(info, position, false)).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut resp = Response::new(body.boxed());
    watch_headers(&mut resp);
    resp
}

fn event_rv(ev: &crate::WatchEvent) -> u64 {
    ev.object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p = part.replace(' ', "");
        p.starts_with("application/json") && p.contains("as=Table") && p.contains("g=meta.k8s.io")
    })
}

/// `Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1` (kube's
/// `get_metadata`, `kubectl get -o name` on lists): objects reduced to their metadata.
fn wants_metadata_only(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p = part.replace(' ', "");
        p.starts_with("application/json")
            && (p.contains("as=PartialObjectMetadata;") || p.ends_with("as=PartialObjectMetadata"))
            && p.contains("g=meta.k8s.io")
    })
}

fn metadata_only(body: &Value, is_list: bool) -> Value {
    let partial = |object: &Value| {
        serde_json::json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({})),
        })
    };
    if !is_list {
        return partial(body);
    }
    let items: Vec<Value> = body
        .get("items")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(partial).collect())
        .unwrap_or_default();
    serde_json::json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": body.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({})),
        "items": items,
    })
}

fn accepts_json(accept: &str) -> bool {
    accept.trim().is_empty()
        || accept.split(',').any(|part| {
            let mt = part.split(';').next().unwrap_or("").trim();
            matches!(
                mt,
                "application/json" | "*/*" | "application/*" | "application/yaml"
            ) && !part.contains("as=")
        })
}
