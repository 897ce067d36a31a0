//! The `job_dispatch_log` resource: its fields, values and rules. No HTTP, no SQL.

pub mod fields;
pub mod job_dispatch_log;
pub mod timestamp;
pub mod user;
pub mod workflow;

pub use fields::{Field, FieldType, FIELDS};
pub use job_dispatch_log::{
    merge, DispatchDraft, JobDispatchLog, Merged, RawRecord, RawValue, ValidationErrors,
};
pub use timestamp::Timestamp;
pub use user::{Principal, Role};
