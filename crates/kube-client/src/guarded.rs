//! Guarded writes: read an object, plan a JSON patch that first tests the resourceVersion read, apply it; when the
//! object moved under the write (409, or the test failed: 422), read again and plan again, so only the writer's own
//! change is re-applied and other writers' edits stay. Throttling, server errors and broken connections are the
//! client stack's to retry ([`crate::ApiRetry`]), within its own budget.

use json_patch::PatchOperation;
use kube::api::{Api, Patch, PatchParams};
use kube::core::DynamicObject;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long one guarded write keeps planning again after conflicts before giving up.
pub const WRITE_BUDGET: Duration = Duration::from_secs(30);

/// Why a guarded write did not happen.
#[derive(Debug)]
pub enum GuardedError<E> {
    /// Reading the object failed.
    Read(kube::Error),
    /// The object does not exist.
    NotFound,
    /// The planner refused the write.
    Plan(E),
    /// The write failed for good, or kept conflicting for longer than [`WRITE_BUDGET`].
    Write(kube::Error),
}

/// What a guarded write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// The planner found nothing to change; the object as read.
    Unchanged(Value),
    /// The patch was applied; the object as the API server answered it.
    Patched(Value),
}

impl Written {
    /// The object after the write.
    pub fn object(&self) -> &Value {
        match self {
            Written::Unchanged(object) | Written::Patched(object) => object,
        }
    }
}

/// Whether an error means the object moved under the write (a conflict, or the JSON patch's resourceVersion test
/// failed).
pub fn conflicted(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if matches!(status.code, 409 | 422))
}

/// The JSON patch operation that makes a patch apply only to the object as read.
pub fn test_resource_version(object: &Value) -> PatchOperation {
    PatchOperation::Test(json_patch::TestOperation {
        path: json_patch::jsonptr::PointerBuf::parse("/metadata/resourceVersion").expect("valid pointer"),
        value: object.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null),
    })
}

/// How long to wait after the `attempt`th write conflicted: exponential from 20 ms to 1 s, with jitter so competing
/// writers drift apart.
pub fn conflict_backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(20u64 << attempt.min(6)).min(Duration::from_secs(1));
    base + base.mul_f64(rand::random::<f64>())
}

/// Reads `name`, plans a JSON patch with `plan` (`None`: nothing to do), applies it as `field_manager`; on a
/// conflict, backs off, reads again and plans again, for up to [`WRITE_BUDGET`]. `conflicts` counts the re-plans.
pub async fn guarded_patch<E>(
    api: &Api<DynamicObject>,
    name: &str,
    field_manager: &str,
    conflicts: &AtomicU64,
    plan: impl Fn(&Value) -> Result<Option<Vec<PatchOperation>>, E>,
) -> Result<Written, GuardedError<E>> {
    let deadline = tokio::time::Instant::now() + WRITE_BUDGET;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let current = api.get_opt(name).await.map_err(GuardedError::Read)?.ok_or(GuardedError::NotFound)?;
        let current = serde_json::to_value(current).unwrap_or_default();
        let Some(operations) = plan(&current).map_err(GuardedError::Plan)? else {
            return Ok(Written::Unchanged(current));
        };
        let params = PatchParams { field_manager: Some(field_manager.to_owned()), ..PatchParams::default() };
        match api.patch(name, &params, &Patch::Json::<()>(json_patch::Patch(operations))).await {
            Ok(object) => return Ok(Written::Patched(serde_json::to_value(object).unwrap_or_default())),
            Err(error) if conflicted(&error) && tokio::time::Instant::now() < deadline => {
                conflicts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, attempt, name, "guarded write conflicted; re-reading");
                tokio::time::sleep(conflict_backoff(attempt)).await;
            }
            Err(error) => return Err(GuardedError::Write(error)),
        }
    }
}
