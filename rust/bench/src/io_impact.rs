//! io_impact kernels (the cost of output): sum_squares with every element's result `x*x` written
//! out as a decimal line, to stdout or to a file, buffered or not.
//!
//! The checksum is `"BYTES CRC"`: the number of bytes one iteration writes and the CRC-32
//! (IEEE, as zlib's `crc32`) of those bytes in 8 lower-case hex digits. It is computed outside
//! the timed region: from the file read back, or for stdout from the same lines formatted again
//! into memory.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

pub const TASK: &str = "io_impact";

/// The output text of one iteration, in memory (for the stdout checksum and the tests).
pub fn render(data: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 10);
    for &x in data {
        writeln!(out, "{}", x * x).expect("writing to a Vec cannot fail");
    }
    out
}

/// `"BYTES CRC"` of `bytes`.
pub fn checksum(bytes: &[u8]) -> String {
    format!("{} {:08x}", bytes.len(), crc32fast::hash(bytes))
}

/// rs-println: `println!` per element. Stdout is line-buffered and locked per call, so every
/// line is its own `write(2)`.
pub fn println_each(data: &[i64]) {
    for &x in data {
        println!("{}", x * x);
    }
}

/// rs-bufwriter: one lock of stdout, `writeln!` into an 8 KiB `BufWriter` (the default size).
pub fn bufwriter_stdout(data: &[i64]) -> io::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    write_lines(&mut out, data)?;
    out.flush()
}

/// rs-file-unbuf: `File` without a buffer, one `write(2)` per line. The line is formatted into a
/// reused `String` first: `writeln!` straight on a `File` would issue two writes per line (the
/// digits, then the newline).
pub fn file_unbuffered(path: &Path, data: &[i64]) -> io::Result<()> {
    let mut f = File::create(path)?;
    let mut line = String::with_capacity(24);
    for &x in data {
        line.clear();
        writeln!(line, "{}", x * x).expect("writing to a String cannot fail");
        f.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// rs-file-buf: `writeln!` into a `BufWriter<File>` of the default 8 KiB.
pub fn file_buffered(path: &Path, data: &[i64]) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    write_lines(&mut out, data)?;
    out.flush()
}

fn write_lines(out: &mut impl Write, data: &[i64]) -> io::Result<()> {
    for &x in data {
        writeln!(out, "{}", x * x)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_checksum() {
        let bytes = render(&[0, 3, 16383]);
        assert_eq!(bytes, b"0\n9\n268402689\n");
        // zlib.crc32(b"0\n9\n268402689\n") in Python.
        assert_eq!(checksum(&bytes), format!("14 {:08x}", CRC_SAMPLE));
        assert_eq!(checksum(b""), "0 00000000");
    }

    const CRC_SAMPLE: u32 = 0xdec6_b62a;

    #[test]
    fn file_writers_write_the_rendered_bytes() {
        let d = std::env::temp_dir().join(format!("rpb-io-impact-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let data: Vec<i64> = (0..5000).map(|i| (i * 37) % 16384).collect();
        let want = render(&data);
        let p = d.join("out.txt");
        file_unbuffered(&p, &data).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), want);
        file_buffered(&p, &data[..10]).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), render(&data[..10]));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
