//! Command implementations shared by the binary and tests.

pub mod evidence;
pub mod explain;
pub mod journal;
pub mod plan;
pub mod records;
pub mod report_html;
pub mod run;
