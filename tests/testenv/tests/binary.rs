//! The `flux-testenv` binary: writes a kubeconfig, prints its URL and serves until killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn binary_serves_and_writes_kubeconfig() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flux-testenv"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--workloads-ready")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn flux-testenv");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read URL");
    let url = line.trim().to_string();
    let result = std::panic::catch_unwind(|| {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig written");
        assert!(text.contains(&format!("server: {url}")), "{text}");
        // Plain HTTP GET of /version without any client library.
        let addr = url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        std::io::Write::write_all(
            &mut stream,
            b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .expect("send");
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).expect("receive");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains("\"major\":\"1\""), "{response}");
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
