//! `hashbench MIB REPS`: SHA-256 (sha2 0.10, SHA-NI when the CPU has it) of MIB MiB of
//! random-looking bytes in memory, REPS times; prints the median in GB/s.
use sha2::{Digest, Sha256};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut buf = vec![0u8; mib << 20];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
    }
    let mut rates = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let d = Sha256::digest(&buf);
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(d);
        rates.push(buf.len() as f64 / s / 1e9);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    println!("{:.3}", rates[rates.len() / 2]);
}
