//! Reading and writing the raw little-endian input files.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const CHUNK: usize = 1 << 20;

/// Reads a file of little-endian i64 values. A length that is not a multiple of 8 is an error.
/// Reads in 1 MiB chunks, so peak memory is the Vec plus one chunk.
pub fn read_i64_le(path: &Path) -> Result<Vec<i64>, String> {
    let ctx = |e: io::Error| format!("{}: {e}", path.display());
    let mut f = File::open(path).map_err(ctx)?;
    let len = f.metadata().map_err(ctx)?.len();
    if len % 8 != 0 {
        return Err(format!(
            "{}: length {len} is not a multiple of 8 (expected little-endian i64 values)",
            path.display()
        ));
    }
    let mut out: Vec<i64> = Vec::with_capacity((len / 8) as usize);
    let mut buf = vec![0u8; CHUNK];
    let mut fill = 0usize;
    loop {
        let n = match f.read(&mut buf[fill..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ctx(e)),
        };
        if n == 0 {
            break;
        }
        fill += n;
        let whole = fill - fill % 8;
        out.extend(
            buf[..whole]
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8"))),
        );
        buf.copy_within(whole..fill, 0);
        fill -= whole;
    }
    if fill != 0 {
        return Err(format!(
            "{}: length is not a multiple of 8 (file changed while reading?)",
            path.display()
        ));
    }
    Ok(out)
}

/// Writes `path` atomically: `write` fills `PATH.tmp-<pid>` through a 1 MiB `BufWriter`, then the
/// file is fsynced and renamed over `path` (and the directory fsynced, best effort). Missing parent
/// folders are created. On error the temporary file is removed.
pub fn write_atomic<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<T>,
) -> io::Result<T> {
    let mut tmp: OsString = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(d)?;
        }
        let mut w = BufWriter::with_capacity(CHUNK, File::create(&tmp)?);
        let value = write(&mut w)?;
        w.flush()?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        Ok(value)
    })();
    match result {
        Ok(v) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(v)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rpb-input-test-{}-{name}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip_across_chunks() {
        let d = tmpdir("rt");
        let p = d.join("v.bin");
        let vals: Vec<i64> = (0..300_000i64).map(|i| i * 7 - 5).collect();
        write_atomic(&p, |w| {
            for v in &vals {
                w.write_all(&v.to_le_bytes())?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(read_i64_le(&p).unwrap(), vals);
        // No temporary file left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rejects_a_partial_value() {
        let d = tmpdir("bad");
        let p = d.join("bad.bin");
        fs::write(&p, [0u8; 17]).unwrap();
        let e = read_i64_le(&p).unwrap_err();
        assert!(e.contains("not a multiple of 8"), "{e}");
        assert!(read_i64_le(&d.join("missing")).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let d = tmpdir("fail");
        let p = d.join("x.bin");
        let r: io::Result<()> = write_atomic(&p, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
        fs::remove_dir_all(&d).unwrap();
    }
}
