//! A capturing HTTP server: records every request and answers with a fixed status.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<Captured>>>,
    status: Arc<Mutex<u16>>,
    get_body: Arc<Mutex<String>>,
}

/// A running capture server.
pub struct CaptureServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
    shared: Shared,
}

impl CaptureServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            requests: Arc::default(),
            status: Arc::new(Mutex::new(200)),
            get_body: Arc::new(Mutex::new("[]".into())),
        };
        let app = Router::new().fallback(record).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        CaptureServer {
            base: format!("http://{addr}"),
            addr,
            shared,
        }
    }

    pub fn set_status(&self, status: u16) {
        *self.shared.status.lock().unwrap() = status;
    }

    /// The body answered to GET requests (commit-status listings); `[]` by default.
    pub fn set_get_body(&self, body: &str) {
        *self.shared.get_body.lock().unwrap() = body.into();
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Waits (up to 5 s) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Captured> {
        for _ in 0..500 {
            if self.count() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.requests()
    }
}

async fn record(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    s.requests.lock().unwrap().push(Captured {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
    });
    let status = *s.status.lock().unwrap();
    let answer = if method == Method::GET {
        s.get_body.lock().unwrap().clone()
    } else {
        r#"{"ok":true}"#.to_string()
    };
    (StatusCode::from_u16(status).unwrap(), answer)
}
