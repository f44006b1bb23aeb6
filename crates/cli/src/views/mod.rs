//! What commands show. Each command gathers a value (a plan, a status, a round of checks, rehearsals) and one of
//! these modules renders it; commands never build text themselves.
//!
//! ```text
//!  commands::plan ─▶ runner.plan() ─▶ views::plan::render   ─▶ stdout
//!  commands::status ─▶ record, weights ─▶ views::status::render
//!  commands::analyze ─▶ one round ─▶ views::analyze::render (views::table)
//!  commands::rehearse ─▶ rehearsals ─▶ views::rehearsal::render (views::table)
//!  commands::validate ─▶ releases ─▶ views::validate::render
//! ```

pub(crate) mod analyze;
pub(crate) mod plan;
pub(crate) mod rehearsal;
pub(crate) mod status;
pub(crate) mod table;
pub(crate) mod validate;
