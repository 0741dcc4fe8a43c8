//! One small tokio runtime for the async clients (S3, Snowflake); tasks
//! themselves are synchronous and block on it.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime (threads and timers) can be created")
    })
}
