//! Dates and timestamps as ISO text, for the text formats.

use anyhow::Result;
use polars::prelude::*;

/// Dates as `YYYY-MM-DD` and timestamps as `YYYY-MM-DDTHH:MM:SS[.ffffff]`,
/// formatted directly: chrono's strftime costs more than the whole CSV write.
pub(crate) fn temporal_as_text(frame: &DataFrame) -> Result<DataFrame> {
    let mut out = frame.clone();
    for column in frame.columns() {
        // Both types are integers underneath: days, or ticks per second.
        let ticks_per_second = match column.dtype() {
            DataType::Date => None,
            DataType::Datetime(TimeUnit::Nanoseconds, _) => Some(1_000_000_000),
            DataType::Datetime(TimeUnit::Microseconds, _) => Some(1_000_000),
            DataType::Datetime(TimeUnit::Milliseconds, _) => Some(1_000),
            _ => continue,
        };
        let mut buf = String::with_capacity(32);
        let mut text = StringChunkedBuilder::new(column.name().clone(), column.len());
        for value in column.cast(&DataType::Int64)?.i64()?.iter() {
            match value {
                Some(v) => {
                    buf.clear();
                    match ticks_per_second {
                        None => push_date(&mut buf, v),
                        Some(per_second) => push_timestamp(&mut buf, v, per_second),
                    }
                    text.append_value(&buf);
                }
                None => text.append_null(),
            }
        }
        out.with_column(text.finish().into_column())?;
    }
    Ok(out)
}

/// Writes `value` zero-padded to `width` digits, without allocating.
fn push_padded(buf: &mut String, value: i64, width: usize) {
    if value < 0 {
        buf.push('-');
    }
    let mut digits = [0u8; 20];
    let mut n = value.unsigned_abs();
    let mut len = 0;
    while n > 0 || len < width {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    buf.extend(digits[..len].iter().rev().map(|&d| d as char));
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (Hinnant's civil-from-days).
pub(crate) fn push_date(buf: &mut String, days: i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    push_padded(buf, year, 4);
    buf.push('-');
    push_padded(buf, month, 2);
    buf.push('-');
    push_padded(buf, day, 2);
}

pub(crate) fn push_timestamp(buf: &mut String, ticks: i64, per_second: i64) {
    let seconds = ticks.div_euclid(per_second);
    let fraction = ticks.rem_euclid(per_second);
    push_date(buf, seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    buf.push('T');
    push_padded(buf, of_day / 3_600, 2);
    buf.push(':');
    push_padded(buf, of_day / 60 % 60, 2);
    buf.push(':');
    push_padded(buf, of_day % 60, 2);
    if fraction != 0 {
        buf.push('.');
        push_padded(buf, fraction, per_second.ilog10() as usize);
    }
}
