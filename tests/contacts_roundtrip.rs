//! Round trips: our output read back and written again is byte-identical (idempotence), the
//! same input always gives the same bytes (determinism), for every sample and every version.

use sdexport::contacts::{export, read_export, write_vcf, ExportOptions, VcardVersion};
use std::path::PathBuf;

fn samples() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for dir in ["testdata/contacts", "testdata/contacts/csv"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            let ext = p
                .extension()
                .and_then(|x| x.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            if ext == "vcf" || ext == "csv" {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

const VERSIONS: [VcardVersion; 3] = [VcardVersion::V30, VcardVersion::V21, VcardVersion::V40];

fn run(inputs: &[(String, Vec<u8>)], version: VcardVersion, merge: bool) -> Vec<u8> {
    export(inputs, &ExportOptions { version, merge }).0
}

/// Output → read → write is byte-identical, per sample and version, with and without merge.
#[test]
fn our_output_reads_back_to_the_same_bytes() {
    let mut fails = Vec::new();
    for s in samples() {
        let input = vec![(s.display().to_string(), std::fs::read(&s).unwrap())];
        for version in VERSIONS {
            for merge in [true, false] {
                let out1 = run(&input, version, merge);
                let out2 = run(&[("out.vcf".into(), out1.clone())], version, merge);
                if out1 != out2 {
                    let l1 = String::from_utf8_lossy(&out1);
                    let l2 = String::from_utf8_lossy(&out2);
                    let diff = l1
                        .lines()
                        .zip(l2.lines())
                        .find(|(a, b)| a != b)
                        .map(|(a, b)| format!("{a:?} vs {b:?}"))
                        .unwrap_or_else(|| "length differs".into());
                    fails.push(format!("{} {version} merge={merge}: {diff}", s.display()));
                }
            }
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// Everything at once, and the model level: reading the output gives the contacts we wrote.
#[test]
fn all_samples_together_round_trip() {
    let inputs: Vec<(String, Vec<u8>)> = samples()
        .iter()
        .map(|s| (s.display().to_string(), std::fs::read(s).unwrap()))
        .collect();
    for version in VERSIONS {
        let out1 = run(&inputs, version, true);
        let again = run(&inputs, version, true);
        assert_eq!(out1, again, "not deterministic ({version})");
        let back = read_export("out.vcf", &out1);
        assert!(back.rejected.is_empty(), "{:?}", back.rejected);
        assert!(back.warnings.is_empty(), "{:?}", back.warnings);
        assert_eq!(
            write_vcf(&back.contacts, version),
            out1,
            "not idempotent ({version})"
        );
    }
}

/// Debug helper: `CONTACTS_DUMP=in.vcf[,in2.csv] CONTACTS_VERSION=2.1 cargo test --test
/// contacts_roundtrip dump -- --ignored --nocapture` prints our output.
#[test]
#[ignore]
fn dump() {
    let files = std::env::var("CONTACTS_DUMP").unwrap_or_default();
    let version: VcardVersion = std::env::var("CONTACTS_VERSION")
        .unwrap_or_else(|_| "3.0".into())
        .parse()
        .unwrap();
    let inputs: Vec<(String, Vec<u8>)> = files
        .split(',')
        .filter(|f| !f.is_empty())
        .map(|f| (f.to_string(), std::fs::read(f).unwrap()))
        .collect();
    let (out, summary) = export(
        &inputs,
        &ExportOptions {
            version,
            merge: true,
        },
    );
    println!("{}", String::from_utf8_lossy(&out));
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
}
