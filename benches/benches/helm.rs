//! Renders kube-prometheus-stack with `--include-crds` (the largest chart of the helm corpus,
//! about 5 MB of output). The chart is read from `../shared`; without it the bench only prints a
//! notice.

use criterion::{criterion_group, criterion_main, Criterion};

fn shared_chart() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("FLUX_SHARED_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
        std::path::PathBuf::from,
    );
    let chart = dir.join("conformance/helm/charts/kube-prometheus-stack");
    chart.is_dir().then_some(chart)
}

fn bench_render(c: &mut Criterion) {
    let Some(chart) = shared_chart() else {
        println!("NOTICE: ../shared/conformance/helm not found; skipping the helm render bench");
        return;
    };
    let opts = flux_helm::RenderOptions {
        release_name: "rel".into(),
        namespace: "ns1".into(),
        include_crds: true,
        ..flux_helm::RenderOptions::default()
    };
    let mut group = c.benchmark_group("helm");
    group.sample_size(10);
    group.bench_function("template kube-prometheus-stack --include-crds", |b| {
        b.iter(|| {
            let out =
                flux_helm::template(std::hint::black_box(&chart), &[], &[], &opts).expect("render");
            std::hint::black_box(out.len())
        });
    });
    group.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
