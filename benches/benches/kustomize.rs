//! kustomize build on generated overlays of 10, 100, 1000 and 3000 apps.
//!
//! Set `KUSTOMIZE_BENCH_TREES=<dir>` to keep the generated trees there (as
//! `<dir>/apps-<n>/overlay`), e.g. to time `kubectl kustomize` on the same inputs.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flux_benches::kustomize_tree::write_tree;
use flux_kustomize::{build, DiskFs};

fn kustomize_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("kustomize_build");
    group.sample_size(10);
    for apps in [10_usize, 100, 1000, 3000] {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = match std::env::var_os("KUSTOMIZE_BENCH_TREES") {
            Some(keep) => std::path::PathBuf::from(keep).join(format!("apps-{apps}")),
            None => temp.path().to_path_buf(),
        };
        let overlay = write_tree(&root, apps).expect("tree");
        let fs = DiskFs::confined(&root).expect("fs");
        group.throughput(Throughput::Elements(apps as u64));
        group.bench_with_input(BenchmarkId::from_parameter(apps), &overlay, |b, overlay| {
            b.iter(|| build(black_box(&fs), black_box(overlay)).expect("build"));
        });
    }
    group.finish();
}

criterion_group!(benches, kustomize_build);
criterion_main!(benches);
