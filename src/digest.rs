//! Content hashes as the pipeline writes them: hex MD5, the lake's and
//! the warehouse's record of a file, and of a failure signature.

pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
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
