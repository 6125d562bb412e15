//! Times the phases of a render: `render_timing CHART [RUNS] [OUT]` (release `rel`, namespace
//! `ns1`, `--include-crds`; the last output is written to `OUT`, `-` for stdout). Used to
//! profile flux-helm against `helm template`.

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(chart_path) = args.next() else {
        eprintln!("usage: render_timing CHART [RUNS]");
        std::process::exit(2);
    };
    let runs: u32 = args.next().and_then(|r| r.parse().ok()).unwrap_or(10);
    let out_path = args.next();
    let opts = flux_helm::RenderOptions {
        release_name: "rel".into(),
        namespace: "ns1".into(),
        include_crds: true,
        ..flux_helm::RenderOptions::default()
    };
    let (mut load, mut render) = (Vec::new(), Vec::new());
    let mut last = String::new();
    for _ in 0..runs {
        let start = Instant::now();
        let chart = match flux_helm::load(std::path::Path::new(&chart_path)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("load: {e}");
                std::process::exit(1);
            }
        };
        load.push(start.elapsed());
        let start = Instant::now();
        match flux_helm::render(chart, &flux_helm::Value::new_map(), &opts) {
            Ok(out) => last = out,
            Err(e) => {
                eprintln!("render: {e}");
                std::process::exit(1);
            }
        }
        render.push(start.elapsed());
    }
    if let Some(path) = out_path {
        use std::io::Write as _;
        let written = if path == "-" {
            std::io::stdout().lock().write_all(last.as_bytes())
        } else {
            std::fs::write(&path, last.as_bytes())
        };
        if let Err(e) = written {
            eprintln!("write {path}: {e}");
            std::process::exit(1);
        }
        return;
    }
    println!("{} bytes out, {runs} runs", last.len());
    report("load", &mut load);
    report("render", &mut render);
}

fn report(phase: &str, times: &mut [Duration]) {
    times.sort();
    let min = times.first().copied().unwrap_or_default();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!("{phase:>8}: min {min:?}, median {median:?}");
}
