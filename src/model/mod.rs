//! The model: the rules of WorkMail's data that every entry point shares, with no protocol in them.
//!
//! [`constraints`] checks values (lengths, patterns, ranges, password strength, reserved names) and answers a
//! neutral [`ConstraintError`]; the AWS layer (`ops`) and the web layer (`web`, `tokens`) each turn it into their
//! own error. [`summaries`] holds the shapes of a token that more than one layer sends out.

pub mod constraints;
pub mod summaries;

pub use constraints::{ConstraintError, Kind};
pub use summaries::{CreatedTokenOutput, PatSummary, TokenSummary};
