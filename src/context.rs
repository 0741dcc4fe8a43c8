//! What every task works against: the landing area, the lake and the
//! metadata database, opened once from the validated settings.

use anyhow::Result;

use crate::cli::Settings;
use crate::metadata::Metadata;
use crate::storage::{self, ObjectStore};

pub struct Context {
    pub landing: Box<dyn ObjectStore>,
    pub lake: Box<dyn ObjectStore>,
    pub metadata: Metadata,
}

impl Context {
    pub fn open(settings: &Settings) -> Result<Self> {
        Ok(Self {
            landing: storage::open(&settings.landing_url, "PIPELINE_LANDING_URL")?,
            lake: storage::open(&settings.lake_url, "PIPELINE_LAKE_URL")?,
            metadata: Metadata::open(&settings.metadata_url)?,
        })
    }
}

/// Wall-clock now in RFC 3339, for stage_log.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
