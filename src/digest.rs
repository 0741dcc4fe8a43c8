//! Content hashes as the pipeline writes them: hex MD5, the lake's and
//! the warehouse's record of a file, and of a failure signature.

pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
}

/// A writer that passes bytes on and keeps their MD5 and count.
pub(crate) struct Md5Writer<W> {
    inner: W,
    md5: md5::Context,
    bytes: u64,
}

impl<W: std::io::Write> Md5Writer<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            md5: md5::Context::new(),
            bytes: 0,
        }
    }

    /// The inner writer, and the hex MD5 and length of what went through.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (self.inner, format!("{:x}", self.md5.finalize()), self.bytes)
    }
}

impl<W: std::io::Write> std::io::Write for Md5Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.consume(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The hex MD5 of a local file's content, read a buffer at a time.
pub(crate) fn file_md5(path: &std::path::Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut hashed = Md5Writer::new(std::io::sink());
    std::io::copy(
        &mut std::io::BufReader::with_capacity(1 << 20, file),
        &mut hashed,
    )?;
    Ok(hashed.finish().1)
}

/// Whether `text` is a hex MD5 as `md5_hex` writes it. Anything else read
/// back from a store (object metadata, an ETag) is not trusted.
pub(crate) fn is_md5_hex(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_md5_equals_the_md5_of_the_whole() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut hashed = Md5Writer::new(std::io::sink());
        std::io::copy(&mut &bytes[..], &mut hashed).unwrap();
        assert_eq!(hashed.finish().1, md5_hex(&bytes));
    }

    #[test]
    fn only_lowercase_hex_md5s_are_trusted() {
        assert!(is_md5_hex(&md5_hex(b"x")));
        for bad in [
            "x',0,now()); DROP SCHEMA MART CASCADE; --",
            "",
            "5EB63BBBE01EEED093CB22BB8F5ACDC3",
            "5eb63bbbe01eeed093cb22bb8f5acdc",
            "5eb63bbbe01eeed093cb22bb8f5acdc3-2",
        ] {
            assert!(!is_md5_hex(bad), "{bad}");
        }
    }
}
