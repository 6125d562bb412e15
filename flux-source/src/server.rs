//! The artifact HTTP server: `GET /<kind>/<namespace>/<name>/<file>` from the storage root.
//!
//! Artifacts are only ever replaced by rename, so a file opened here is complete; the body is
//! read from that one open file, its length becomes `Content-Length`, and the `ETag` is derived
//! from the opened file's inode, size and mtime (a rename always yields a new inode).

use std::convert::Infallible;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};

/// Serves `root` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    root: PathBuf,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let root = Arc::new(root);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted.map_err(Error::io("accepting on", root.as_path()))?,
        };
        let root = Arc::clone(&root);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let root = Arc::clone(&root);
                async move { Ok::<_, Infallible>(handle(&root, &req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(%err, "artifact server connection ended with an error");
            }
        });
    }
}

async fn handle(root: &Path, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let Some(decoded) = percent_decode(req.uri().path()) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let Ok(rel) = crate::extract::safe_relative(decoded.trim_start_matches('/')) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let path = root.join(rel);
    // Symlinks (latest.tar.gz, index.yaml) must resolve inside the root.
    let (Ok(canonical), Ok(canonical_root)) = (
        tokio::fs::canonicalize(&path).await,
        tokio::fs::canonicalize(root).await,
    ) else {
        return status(StatusCode::NOT_FOUND);
    };
    if !canonical.starts_with(&canonical_root) {
        return status(StatusCode::NOT_FOUND);
    }
    let Ok(mut file) = tokio::fs::File::open(&canonical).await else {
        return status(StatusCode::NOT_FOUND);
    };
    let Ok(meta) = file.metadata().await else {
        return status(StatusCode::NOT_FOUND);
    };
    if !meta.is_file() {
        return status(StatusCode::NOT_FOUND);
    }
    let etag = format!(
        "\"{:x}-{:x}-{:x}\"",
        meta.ino(),
        meta.len(),
        meta.mtime_nsec() ^ (meta.mtime() << 20)
    );
    if req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut resp = status(StatusCode::NOT_MODIFIED);
        resp.headers_mut().insert(ETAG, header(&etag));
        return resp;
    }
    let mut body = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    if file.read_to_end(&mut body).await.is_err() || body.len() as u64 != meta.len() {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let len = body.len();
    let mut resp = Response::new(if req.method() == Method::HEAD {
        Full::new(Bytes::new())
    } else {
        Full::new(Bytes::from(body))
    });
    let headers = resp.headers_mut();
    headers.insert(CONTENT_LENGTH, header(&len.to_string()));
    headers.insert(ETAG, header(&etag));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(content_type(&canonical)),
    );
    resp
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => "application/x-yaml",
        Some("json") => "application/json",
        Some("gz" | "tgz") => "application/gzip",
        _ => "application/octet-stream",
    }
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(
        code.canonical_reason().unwrap_or("").to_string(),
    )));
    *resp.status_mut() = code;
    resp
}

fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("/a%3Ab").as_deref(), Some("/a:b"));
        assert_eq!(percent_decode("/a%2"), None);
    }
}
