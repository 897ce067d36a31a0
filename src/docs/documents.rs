//! The documents of the catalogue other than rows: what Dispatch reads, and the list page, the
//! changes feed and the history written back. `wire::documents` encodes and decodes them.

use super::{meta, Document, Member, MemberType};
use crate::domain::{Field, FieldType};

pub const DISPATCH: Document = Document {
    name: "Dispatch",
    description: "A job and the technicians to send it to.",
    members: &[
        Member {
            name: "jobs_id",
            ty: MemberType::Scalar(FieldType::Guid),
            description: meta(Field::JobsId).description,
            rules: "Required, not all zeros.",
            required: true,
        },
        Member {
            name: "user_ids",
            ty: MemberType::ListOf(FieldType::Guid),
            description: "The technicians to dispatch the job to",
            rules: "Required, 1 to 1000 GUIDs, none all zeros. Technicians already assigned are skipped.",
            required: true,
        },
        Member {
            name: "is_workshop",
            ty: MemberType::Scalar(FieldType::Bool),
            description: meta(Field::IsWorkshop).description,
            rules: "Default false. Applies to every row created.",
            required: false,
        },
    ],
};

pub const CHANGES: Document = Document {
    name: "Changes",
    description: "One page of the sync feed, in commit order.",
    members: &[
        Member {
            name: "value",
            ty: MemberType::Rows,
            description: "Rows changed after the cursor, in commit order; logically deleted rows come as tombstones",
            rules: "At most limit rows.",
            required: true,
        },
        Member {
            name: "removed",
            ty: MemberType::ListOf(FieldType::Guid),
            description: "Ids of rows that left the caller's scope (reassigned to another technician)",
            rules: "Drop them from the local copy.",
            required: true,
        },
        Member {
            name: "cursor",
            ty: MemberType::Scalar(FieldType::String),
            description: "Where the next call continues",
            rules: "Opaque; send it back as since.",
            required: true,
        },
        Member {
            name: "has_more",
            ty: MemberType::Scalar(FieldType::Bool),
            description: "More changes wait after this page",
            rules: "Call again at once with the new cursor while true.",
            required: true,
        },
    ],
};

pub const HISTORY_ENTRY: Document = Document {
    name: "HistoryEntry",
    description: "One change of a row.",
    members: &[
        Member {
            name: "at",
            ty: MemberType::Scalar(FieldType::DateTime),
            description: "When the change was committed (server clock)",
            rules: "UTC.",
            required: true,
        },
        Member {
            name: "client_at",
            ty: MemberType::Nullable(FieldType::DateTime),
            description: "When it happened by the client's clock (an offline decision time)",
            rules: "Null when the client sent none.",
            required: true,
        },
        Member {
            name: "actor",
            ty: MemberType::Scalar(FieldType::String),
            description: "Who made the change",
            rules: "username@domain.",
            required: true,
        },
        Member {
            name: "action",
            ty: MemberType::Scalar(FieldType::String),
            description: "What the change did",
            rules: "One of create, update, accept, reject, reassign, delete, restore.",
            required: true,
        },
        Member {
            name: "changes",
            ty: MemberType::ChangeMap,
            description: "Each changed field with its value before and after",
            rules: "Values as wire text.",
            required: true,
        },
    ],
};

pub const HISTORY: Document = Document {
    name: "History",
    description: "Every change of one row, oldest first.",
    members: &[
        Member {
            name: "id",
            ty: MemberType::Scalar(FieldType::Guid),
            description: meta(Field::Id).description,
            rules: "The row.",
            required: true,
        },
        Member {
            name: "value",
            ty: MemberType::ListOfDocuments(&HISTORY_ENTRY),
            description: "The changes, oldest first",
            rules: "",
            required: true,
        },
    ],
};

pub const LIST_PAGE: Document = Document {
    name: "JobDispatchLogPage",
    description: "One page of a query (XML: an ArrayOfjob_dispatch_log).",
    members: &[
        Member {
            name: "@odata.context",
            ty: MemberType::Scalar(FieldType::String),
            description: "The OData context URL",
            rules: "",
            required: true,
        },
        Member {
            name: "value",
            ty: MemberType::Rows,
            description: "The rows of this page",
            rules: "At most $top rows.",
            required: true,
        },
        Member {
            name: "@odata.count",
            ty: MemberType::Scalar(FieldType::Int32),
            description: "How many rows match the filter",
            rules: "Only with $count=true.",
            required: false,
        },
        Member {
            name: "@odata.nextLink",
            ty: MemberType::Scalar(FieldType::String),
            description: "The URL of the next page",
            rules: "Only when more rows remain (also sent as a Link header).",
            required: false,
        },
    ],
};
