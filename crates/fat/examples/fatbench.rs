//! Benchmark driver for `benches/fat/compare.sh` (build with `--release`).
//!
//! * `fatbench write-big IMG SRC`  — copy SRC into `/big.bin` of the FAT image IMG.
//! * `fatbench dir IMG N`          — create N files with 28-character names in `/DCIM`.
//! * `fatbench dir-rename IMG N`   — the same, each file written under a temporary name and
//!   renamed into place (sdexport's copy protocol).
//! * `fatbench fatfs-dir IMG N`    — the same with the fatfs 0.3.6 crate, for comparison.
//!
//! Each prints `seconds=<elapsed>` (open to flush, formatting excluded).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::time::Instant;

use sdexport_fat::FileSystem;

fn name(i: usize) -> String {
    // 28 characters, like a phone camera's file names.
    let n = format!("IMG_20240101_12345_{i:05}.jpg");
    debug_assert_eq!(n.len(), 28);
    n
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: fatbench write-big IMG SRC | dir IMG N | dir-mem IMG N | dir-rename IMG N | fatfs-dir IMG N";
    let (cmd, img) = match (args.get(1), args.get(2)) {
        (Some(c), Some(i)) => (c.as_str(), i.as_str()),
        _ => return Err(usage.into()),
    };
    let storage = OpenOptions::new().read(true).write(true).open(img)?;
    let t = Instant::now();
    match cmd {
        "write-big" => {
            let src = args.get(3).ok_or(usage)?;
            let mut input = std::fs::File::open(src)?;
            let mut fs = FileSystem::open(storage)?;
            let mut w = fs.create_file("/big.bin")?;
            let mut buf = vec![0u8; 4 << 20];
            loop {
                let n = input.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                w.write_all(&buf[..n])?;
            }
            w.finish(None)?;
            fs.flush()?;
        }
        "dir" | "dir-mem" => {
            let n: usize = args.get(3).ok_or(usage)?.parse()?;
            if cmd == "dir-mem" {
                // The same on an in-memory copy of the image: the engine without the OS.
                let mut v = Vec::new();
                let mut s = storage;
                s.read_to_end(&mut v)?;
                let mut fs = FileSystem::open(std::io::Cursor::new(v))?;
                let t = Instant::now();
                fs.create_dir("/DCIM")?;
                for i in 0..n {
                    let mut w = fs.create_file(&format!("/DCIM/{}", name(i)))?;
                    w.write_all(&[i as u8; 100])?;
                    w.finish(None)?;
                }
                fs.flush()?;
                println!("seconds={:.3}", t.elapsed().as_secs_f64());
                return Ok(());
            }
            let mut fs = FileSystem::open(storage)?;
            fs.create_dir("/DCIM")?;
            for i in 0..n {
                let mut w = fs.create_file(&format!("/DCIM/{}", name(i)))?;
                w.write_all(&[i as u8; 100])?;
                w.finish(None)?;
            }
            fs.flush()?;
        }
        "dir-rename" => {
            let n: usize = args.get(3).ok_or(usage)?.parse()?;
            let mut fs = FileSystem::open(storage)?;
            fs.create_dir("/DCIM")?;
            for i in 0..n {
                let tmp = format!("/DCIM/.sdexport-{i:05}.tmp");
                let mut w = fs.create_file(&tmp)?;
                w.write_all(&[i as u8; 100])?;
                w.finish(None)?;
                fs.rename(&tmp, &format!("/DCIM/{}", name(i)))?;
            }
            fs.flush()?;
        }
        "fatfs-dir" => {
            let n: usize = args.get(3).ok_or(usage)?.parse()?;
            let fs = fatfs::FileSystem::new(storage, fatfs::FsOptions::new())?;
            let d = fs.root_dir().create_dir("DCIM")?;
            for i in 0..n {
                let mut f = d.create_file(&name(i))?;
                f.write_all(&[i as u8; 100])?;
            }
            drop(d);
            fs.unmount()?;
        }
        _ => return Err(usage.into()),
    }
    println!("seconds={:.3}", t.elapsed().as_secs_f64());
    Ok(())
}
