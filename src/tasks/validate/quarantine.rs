//! The quarantine of a file rejected whole: one row that holds it by
//! reference (URL, size, MD5) and its first MiB, so a huge or hostile file
//! is never loaded whole into one cell.

use anyhow::Result;
use polars::prelude::*;

use crate::checks::split::{FAILED_CHECKS, Rejection};
use crate::context::Context;
use crate::exit;

/// Bytes of a rejected file copied into its quarantine row.
const COPY_BYTES: usize = 1 << 20;

/// The one quarantine row of a rejected file of `size` bytes.
pub(super) fn rejected_file(
    ctx: &Context,
    raw_key: &str,
    size: u64,
    rejection: &Rejection,
) -> Result<DataFrame> {
    let gone = || {
        exit::transient(format!(
            "{} vanished while validated",
            ctx.landing.url(raw_key)
        ))
    };
    let md5 = ctx.landing.md5(raw_key)?.ok_or_else(gone)?;
    let copied = ctx
        .landing
        .get_prefix(raw_key, COPY_BYTES)?
        .ok_or_else(gone)?;
    Ok(df!(
        "source_file" => [ctx.landing.url(raw_key)],
        FAILED_CHECKS => [format!("{}:{}", rejection.check, rejection.reason)],
        "content_bytes" => [size],
        "content_md5" => [md5],
        "content" => [copied.as_slice()],
    )?)
}
