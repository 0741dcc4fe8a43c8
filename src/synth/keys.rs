//! Keys: random UUIDs per row, with the key defects applied.

use std::ops::Range;

use polars::prelude::*;
use rand::RngExt;

use super::*;

pub(super) fn random_keys(params: &GenParams, dataset: Builtin, rows: usize) -> Vec<u128> {
    let mut rng = params.rng(dataset, KEYS);
    (0..rows).map(|_| rng.random::<u128>()).collect()
}

/// Writes `bits` as a canonical version-4 UUID.
pub(super) fn push_uuid(buf: &mut String, bits: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = (bits & !(0xF << 76)) | (0x4 << 76);
    let bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            buf.push('-');
        }
        buf.push(HEX[((bits >> (124 - 4 * i)) & 0xF) as usize] as char);
    }
}

/// Builds a chunk of a fact table's key column, applying the key defects.
pub(super) fn key_column(name: &str, facts: &Facts, rows: Range<usize>) -> Column {
    let (keys, plan) = (facts.keys, facts.plan);
    let mut out = StringChunkedBuilder::new(name.into(), rows.len());
    let mut buf = String::with_capacity(40);
    for row in rows {
        let bits = keys[row];
        buf.clear();
        match plan.at(row) {
            Some(Defect::NullKey) => {
                out.append_null();
                continue;
            }
            Some(Defect::DuplicateKey) => push_uuid(&mut buf, keys[plan.clean_before(row)]),
            Some(Defect::MalformedUuid) => {
                push_uuid(&mut buf, bits);
                buf.truncate(8);
                buf.insert_str(0, "tmp-");
            }
            _ => push_uuid(&mut buf, bits),
        }
        out.append_value(buf.as_str());
    }
    out.finish().into_column()
}

/// Contact ids that validation will accept: facts reference only these, so
/// a defective contact never cascades into a foreign-key failure.
pub(super) fn clean_contact_ids(params: &GenParams) -> Vec<u128> {
    let rows = params.rows(Builtin::Contacts);
    let plan = DefectPlan::new(params, Builtin::Contacts, rows);
    random_keys(params, Builtin::Contacts, rows)
        .into_iter()
        .enumerate()
        .filter(|&(row, _)| plan.at(row).is_none())
        .map(|(_, id)| id)
        .collect()
}
