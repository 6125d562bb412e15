//! The HTTP adapter: routes Kubernetes API paths onto the store, streams watches, and
//! applies injected faults.

use crate::authz;
use crate::discovery;
use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{
    DeleteOptions, EventType, ListOptions, PatchType, Propagation, Store, Sub, WriteOptions,
};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Injected faults.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fail this many upcoming resource requests.
    pub fail_remaining: u32,
    /// With this HTTP code.
    pub fail_code: u16,
    /// Only requests whose path contains this text (all when None).
    pub fail_path: Option<String>,
    /// Delay every resource request by this much.
    pub delay: Duration,
}

/// State shared by all connections.
pub struct Shared {
    /// The object store.
    pub store: Mutex<Store>,
    /// Injected faults.
    pub faults: Mutex<Faults>,
    /// Bumped to end every open watch.
    pub drop_watches: tokio::sync::watch::Sender<u64>,
    /// Recent requests (`METHOD /path?query`), newest last.
    pub requests: Mutex<Vec<String>>,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// The listening address.
    pub addr: SocketAddr,
}

impl Shared {
    /// Locks the store (a poisoned lock is still usable: the store has no invariants spanning a panic).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

type ResBody = BoxBody<Bytes, Infallible>;

/// A response body fed from a channel (watch streams).
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

fn full(code: u16, content_type: &str, body: Vec<u8>) -> Response<ResBody> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

fn json_response(code: u16, body: &Value) -> Response<ResBody> {
    full(
        code,
        "application/json",
        serde_json::to_vec(body).unwrap_or_default(),
    )
}

fn error_response(err: &ApiError) -> Response<ResBody> {
    json_response(err.code, &err.to_status())
}

/// Decodes `%XX` and `+` in a query component.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parsed query parameters (repeated keys keep every value).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Self(
            q.unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn dry_run(&self) -> bool {
        self.0.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }
}

fn list_options(q: &Query) -> Result<ListOptions, ApiError> {
    Ok(ListOptions {
        labels: LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or_default())?,
        limit: q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0),
        continue_token: q
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        resource_version: q.get("resourceVersion").map(str::to_string),
        send_initial_events: q.flag("sendInitialEvents"),
    })
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// A parsed resource path.
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    sub: Sub,
    scale: bool,
}

/// Kinds with a `scale` subresource.
pub fn scalable(rt: &ResourceType) -> bool {
    !rt.custom
        && rt.group == "apps"
        && matches!(
            rt.kind.as_str(),
            "Deployment" | "StatefulSet" | "ReplicaSet"
        )
}

/// The `autoscaling/v1` Scale view of an object.
fn scale_view(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

enum Route {
    Response(Box<Response<ResBody>>),
    Resource(Box<Target>),
}

fn route(shared: &Shared, path: &str, accept: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let store = shared.store();
    let registry = &store.registry;
    let ok = |v: Value| Ok(Route::Response(Box::new(json_response(200, &v))));
    let agg = |v: Value| {
        Ok(Route::Response(Box::new(full(
            200,
            discovery::AGGREGATED_CONTENT_TYPE,
            serde_json::to_vec(&v).unwrap_or_default(),
        ))))
    };
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => return ok(discovery::version()),
        ["healthz" | "livez" | "readyz"] => {
            return Ok(Route::Response(Box::new(full(
                200,
                "text/plain",
                b"ok".to_vec(),
            ))))
        }
        ["api"] if aggregated => return agg(discovery::aggregated(registry, true)),
        ["api"] => return ok(discovery::core_versions(&shared.addr.to_string())),
        ["apis"] if aggregated => return agg(discovery::aggregated(registry, false)),
        ["apis"] => return ok(discovery::group_list(registry)),
        ["apis", g] => {
            return discovery::group(registry, g)
                .map_or_else(|| Err(ApiError::path_not_found()), ok)
        }
        ["openapi", "v3"] => return ok(discovery::openapi_index(registry)),
        ["openapi", "v3", "api", v] => {
            return if registry
                .group_versions()
                .iter()
                .any(|(g, vs)| g.is_empty() && vs.iter().any(|x| x == v))
            {
                ok(discovery::openapi_doc(registry, "", v))
            } else {
                Err(ApiError::path_not_found())
            }
        }
        ["openapi", "v3", "apis", g, v] => {
            return if registry
                .group_versions()
                .iter()
                .any(|(gg, vs)| gg == g && vs.iter().any(|x| x == v))
            {
                ok(discovery::openapi_doc(registry, g, v))
            } else {
                Err(ApiError::path_not_found())
            }
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    if rest.is_empty() {
        return discovery::resource_list(registry, group, version)
            .map_or_else(|| Err(ApiError::path_not_found()), ok);
    }
    let (namespace, resource, name, sub) = match rest {
        ["namespaces", ns, res, tail @ ..]
            if registry
                .find(group, version, res)
                .is_some_and(|t| t.namespaced) =>
        {
            (
                Some((*ns).to_string()),
                *res,
                tail.first().copied(),
                tail.get(1).copied(),
            )
        }
        [res, tail @ ..] => (None, *res, tail.first().copied(), tail.get(1).copied()),
        [] => return Err(ApiError::path_not_found()),
    };
    let rt = registry
        .find(group, version, resource)
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    let scale = sub == Some("scale") && scalable(&rt);
    let sub = match sub {
        None => Sub::Main,
        Some("status") if rt.has_status => Sub::Status,
        Some("scale") if scale => Sub::Main,
        Some(_) => return Err(ApiError::path_not_found()),
    };
    Ok(Route::Resource(Box::new(Target {
        rt,
        namespace,
        name: name.map(str::to_string),
        sub,
        scale,
    })))
}

/// The user an `Impersonate-User` header (with its `Impersonate-Group` headers) names.
fn impersonation(req: &Request<Incoming>) -> Option<authz::UserInfo> {
    let user = header(req, "impersonate-user");
    if user.is_empty() {
        return None;
    }
    let groups: Vec<String> = req
        .headers()
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    Some(authz::UserInfo::impersonated(user, &groups))
}

fn default_manager(user_agent: &str) -> String {
    user_agent.split('/').next().unwrap_or_default().to_string()
}

/// Handles one request.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ResBody>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query_text = req.uri().query().map(str::to_string);
    let record = format!(
        "{method} {path}{}",
        query_text
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    );
    {
        let mut log = shared
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.push(record.clone());
        if log.len() > 2000 {
            log.drain(..1000);
        }
    }
    let resp = match handle_inner(&shared, req, &path, query_text.as_deref()).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    if std::env::var_os("FLUX_TESTENV_LOG").is_some() {
        eprintln!("flux-testenv: {record} -> {}", resp.status().as_u16());
    }
    Ok(resp)
}

async fn handle_inner(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    path: &str,
    query: Option<&str>,
) -> Result<Response<ResBody>, ApiError> {
    let accept = header(&req, "accept").to_string();
    let target = match route(shared, path, &accept)? {
        Route::Response(r) => return Ok(*r),
        Route::Resource(t) => t,
    };
    let (delay, fail) = {
        let mut f = shared.faults();
        let fail =
            if f.fail_remaining > 0 && f.fail_path.as_deref().is_none_or(|p| path.contains(p)) {
                f.fail_remaining -= 1;
                Some(f.fail_code)
            } else {
                None
            };
        (f.delay, fail)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(code) = fail {
        return Err(ApiError::injected(code));
    }
    let q = Query::parse(query);
    let method = req.method().clone();
    let impersonated = impersonation(&req);
    let content_type = header(&req, "content-type").to_string();
    let manager = q.get("fieldManager").map_or_else(
        || default_manager(header(&req, "user-agent")),
        str::to_string,
    );
    let table = accept.contains("as=Table");
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?
        .to_bytes();
    let Target {
        rt,
        namespace,
        name,
        sub,
        scale,
    } = *target;
    let ns = namespace.as_deref();
    if !rt.namespaced && ns.is_some() {
        return Err(ApiError::path_not_found());
    }
    if rt.group == "authorization.k8s.io" && rt.plural == "selfsubjectaccessreviews" {
        if method != Method::POST {
            return Err(ApiError::method_not_allowed(
                "selfsubjectaccessreviews only supports create",
            ));
        }
        let review = parse_body(&body, &content_type)?;
        let answer =
            authz::self_subject_access_review(&shared.store(), impersonated.as_ref(), &review);
        return Ok(json_response(201, &answer));
    }
    if let Some(user) = &impersonated {
        let subresource = if scale {
            "scale"
        } else if sub == Sub::Status {
            "status"
        } else {
            ""
        };
        let verb = authz::verb_of(method.as_str(), name.is_some(), q.flag("watch"));
        let attrs = authz::attributes(&rt, verb, ns, name.as_deref(), subresource);
        if !authz::allowed(&shared.store(), user, &attrs) {
            return Err(authz::forbidden(user, &attrs));
        }
    }
    let write = WriteOptions {
        dry_run: q.dry_run(),
        field_manager: manager,
        force: q.flag("force"),
        strict_fields: q.get("fieldValidation") == Some("Strict"),
    };
    if scale {
        let name = name.ok_or_else(ApiError::path_not_found)?;
        return handle_scale(
            shared,
            &rt,
            ns,
            &name,
            &method,
            &content_type,
            &body,
            &write,
        );
    }
    match (method, name) {
        (Method::GET, Some(name)) => {
            let obj = shared.store().get(&rt, ns, &name)?;
            if table {
                let rv = obj["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                return Ok(json_response(
                    200,
                    &discovery::table(
                        &rt,
                        &[obj],
                        &rv,
                        q.get("includeObject").unwrap_or("Metadata"),
                    ),
                ));
            }
            Ok(json_response(200, &obj))
        }
        (Method::GET, None) => {
            let opts = list_options(&q)?;
            if q.flag("watch") {
                return start_watch(shared, &rt, namespace, &opts, &q, table);
            }
            let list = shared.store().list(&rt, ns, &opts)?;
            if table {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let rv = list["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let mut t = discovery::table(
                    &rt,
                    &items,
                    &rv,
                    q.get("includeObject").unwrap_or("Metadata"),
                );
                if let Some(c) = list["metadata"].get("continue") {
                    t["metadata"]["continue"] = c.clone();
                }
                return Ok(json_response(200, &t));
            }
            Ok(json_response(200, &list))
        }
        (Method::POST, None) => {
            let obj = parse_body(&body, &content_type)?;
            if ns.is_none() && rt.namespaced {
                return Err(ApiError::path_not_found());
            }
            let created = shared.store().create(&rt, ns, obj, &write)?;
            Ok(json_response(201, &created))
        }
        (Method::PUT, Some(name)) => {
            let obj = parse_body(&body, &content_type)?;
            let updated = shared.store().update(&rt, ns, &name, obj, sub, &write)?;
            Ok(json_response(200, &updated))
        }
        (Method::PATCH, Some(name)) => {
            let patch_type = PatchType::from_content_type(&content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(&content_type))?;
            let (obj, created) = shared
                .store()
                .patch(&rt, ns, &name, patch_type, &body, sub, &write)?;
            Ok(json_response(if created { 201 } else { 200 }, &obj))
        }
        (Method::DELETE, name) => {
            let opts = delete_options(&q, &body)?;
            match name {
                Some(name) => {
                    let (code, obj) = shared.store().delete(&rt, ns, &name, &opts)?;
                    Ok(json_response(code, &obj))
                }
                None => {
                    let list = list_options(&q)?;
                    let out = shared.store().delete_collection(&rt, ns, &list, &opts)?;
                    Ok(json_response(200, &out))
                }
            }
        }
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m})"
        ))),
    }
}

/// GET/PUT/PATCH on `.../scale`: a Scale view whose `spec.replicas` writes through.
fn handle_scale(
    shared: &Shared,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    method: &Method,
    content_type: &str,
    body: &[u8],
    write: &WriteOptions,
) -> Result<Response<ResBody>, ApiError> {
    let mut store = shared.store();
    let current = store.get(rt, ns, name)?;
    let mut view = scale_view(&current);
    match *method {
        Method::GET => return Ok(json_response(200, &view)),
        Method::PUT => {
            let new = parse_body(body, content_type)?;
            if let Some(rv) = new["metadata"]["resourceVersion"].as_str() {
                if Some(rv) != current["metadata"]["resourceVersion"].as_str() {
                    return Err(ApiError::conflict(&rt.group, &rt.plural, name));
                }
            }
            view["spec"] = new["spec"].clone();
        }
        Method::PATCH => match PatchType::from_content_type(content_type) {
            Some(PatchType::Json) => crate::patch::apply_json_patch(&mut view, body)?,
            Some(PatchType::Merge | PatchType::Strategic) => {
                crate::patch::apply_merge_patch(&mut view, body)?;
            }
            _ => return Err(ApiError::unsupported_media_type(content_type)),
        },
        _ => {
            return Err(ApiError::method_not_allowed(
                "scale supports get, update and patch",
            ))
        }
    }
    let replicas = view["spec"]["replicas"].as_i64().unwrap_or(0);
    let patch = json!({"spec": {"replicas": replicas}}).to_string();
    let (updated, _) = store.patch(
        rt,
        ns,
        name,
        PatchType::Merge,
        patch.as_bytes(),
        Sub::Main,
        write,
    )?;
    Ok(json_response(200, &scale_view(&updated)))
}

fn parse_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if crate::proto::is_protobuf(content_type) {
        return crate::proto::decode(body);
    }
    if content_type.contains("yaml") {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("decoding body: {e}")))?;
        return serde_yaml::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("decoding YAML body: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

fn delete_options(q: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("decoding DeleteOptions: {e}")))?
    };
    let policy = q
        .get("propagationPolicy")
        .or_else(|| parsed["propagationPolicy"].as_str());
    let propagation = match policy {
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some("Background") => Some(Propagation::Background),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported propagationPolicy {other:?}"
            )))
        }
        None if parsed["orphanDependents"].as_bool() == Some(true)
            || q.flag("orphanDependents") =>
        {
            Some(Propagation::Orphan)
        }
        None => None,
    };
    let dry_run = q.dry_run()
        || parsed["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        dry_run,
        propagation,
        uid: parsed["preconditions"]["uid"].as_str().map(str::to_string),
        resource_version: parsed["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
    })
}

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn start_watch(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    namespace: Option<String>,
    opts: &ListOptions,
    q: &Query,
    table: bool,
) -> Result<Response<ResBody>, ApiError> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let (replay, start_rv, mut events) = match shared.store().watch(rt, namespace.as_deref(), opts)
    {
        Ok(x) => x,
        Err(e) if e.code == 410 => {
            // The API reports an expired resourceVersion as an ERROR event on a 200 stream.
            let line = watch_line("ERROR", &e.to_status());
            return Ok(full(200, "application/json", line.to_vec()));
        }
        Err(e) => return Err(e),
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let initial_end = opts.send_initial_events;
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let include_object = q.get("includeObject").unwrap_or("Metadata").to_string();
    let (group, resource) = Store::storage_of(rt);
    let bookmark_api_version = rt.api_version();
    let bookmark_kind = rt.kind.clone();
    let rt = rt.clone();
    let filter = WatchFilter {
        opts: opts.clone(),
        namespace,
    };
    let mut dropper = shared.drop_watches.subscribe();
    let bookmark_interval = shared.bookmark_interval;
    let present = move |o: &Value| -> Value {
        let o = Store::present(&rt, o);
        if table {
            let rv = o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            discovery::table(&rt, &[o], &rv, &include_object)
        } else {
            o
        }
    };
    tokio::spawn(async move {
        let mut last_rv = start_rv;
        for ev in replay {
            if let Some((kind, obj)) = filter.translate(&group, &resource, &ev) {
                if tx.send(watch_line(kind, &present(obj))).await.is_err() {
                    return;
                }
            }
            last_rv = last_rv.max(ev.rv);
        }
        let bookmark = |rv: u64, end: bool| {
            let mut meta = json!({"resourceVersion": rv.to_string()});
            if end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            watch_line(
                "BOOKMARK",
                &json!({"kind": bookmark_kind, "apiVersion": bookmark_api_version, "metadata": meta}),
            )
        };
        if initial_end && tx.send(bookmark(last_rv, true)).await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(3600)));
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmark_interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = &mut deadline => return,
                _ = dropper.changed() => return,
                () = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                }
                ev = events.recv() => {
                    let Ok(ev) = ev else { return };
                    if ev.rv <= last_rv {
                        continue;
                    }
                    last_rv = ev.rv;
                    if let Some((kind, obj)) = filter.translate(&group, &resource, &ev) {
                        if tx.send(watch_line(kind, &present(obj))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    let mut resp = Response::new(ChannelBody(rx).boxed());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        hyper::header::TRANSFER_ENCODING,
        hyper::header::HeaderValue::from_static("chunked"),
    );
    Ok(resp)
}

/// Which events a watch sees, with selector transitions (MODIFIED into/out of a selector
/// becomes ADDED/DELETED, as the API's watch cache does).
struct WatchFilter {
    opts: ListOptions,
    namespace: Option<String>,
}

impl WatchFilter {
    fn selects(&self, obj: &Value) -> bool {
        self.opts.labels.matches(obj) && self.opts.fields.matches(obj)
    }

    fn translate<'a>(
        &self,
        group: &str,
        resource: &str,
        ev: &'a crate::store::Event,
    ) -> Option<(&'static str, &'a Value)> {
        if ev.group != group || ev.resource != resource {
            return None;
        }
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != ev.namespace)
        {
            return None;
        }
        let now = self.selects(&ev.object);
        let before = ev.previous.as_ref().is_some_and(|p| self.selects(p));
        let kind = match ev.kind {
            EventType::Added => now.then_some("ADDED")?,
            EventType::Modified => match (before, now) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return None,
            },
            EventType::Deleted => (before || now).then_some("DELETED")?,
        };
        Some((kind, &ev.object))
    }
}
