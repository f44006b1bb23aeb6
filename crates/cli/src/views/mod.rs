//! What commands show. Each command gathers a value (a plan, a status, a round of checks, rehearsals) and one of
//! these modules renders it. What commands still write themselves is progress on stderr, the demo's narration and
//! `fledge sim`'s addresses.
//!
//! ```text
//!  commands::plan ─▶ runner.plan() ─▶ views::plan::render   ─▶ stdout
//!  commands::gate ─▶ the gate's outcome ─▶ views::gate::render
//!  commands::release (run, abort) ─▶ the outcome ─▶ views::release::render_result
//!  commands::status ─▶ record, weights ─▶ views::status::render
//!  commands::analyze ─▶ one round ─▶ views::analyze::render (views::table)
//!  commands::rehearse ─▶ rehearsals ─▶ views::rehearsal::render (views::table)
//!  commands::validate ─▶ releases ─▶ views::validate::render
//! ```

pub(crate) mod analyze;
pub(crate) mod gate;
pub(crate) mod plan;
pub(crate) mod rehearsal;
pub(crate) mod release;
pub(crate) mod status;
pub(crate) mod table;
pub(crate) mod validate;
