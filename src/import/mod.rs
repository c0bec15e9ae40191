//! `workmail-pat import`: copies organizations, with their ids, from any endpoint speaking the WorkMail API
//! (Amazon WorkMail itself by default) into a workmail-pat store; and `seed` of a `dump` file, which restores a
//! workmail-pat store through the same path.
//!
//! - [`plan`]: pure decisions per entity (create, unchanged, update, conflict), from the source's and the target's
//!   content and what the last import recorded (`import_records`);
//! - [`engine`]: applies them one organization at a time through the store, with the source's ids;
//! - [`workmail`]: the source read through the official SDK (paginators, standard retry, a client-side rate limit);
//! - [`dump`]: a `workmail-pat dump` file as the source;
//! - [`report`]: the JSON report and its human summary.

pub mod dump;
pub mod engine;
pub mod plan;
pub mod report;
pub mod workmail;
