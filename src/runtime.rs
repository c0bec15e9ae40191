//! The runtime every command runs on, and what its worker threads do just before they go idle (issue 14).
//!
//! Two savings on the read path last only while a worker is busy and end when it is about to park: answers held
//! for a batch ([`crate::batched_writes`]) and the SQLite read mark kept for a burst of reads
//! ([`crate::store::sqlite`]). One hook runs both, because a runtime has one park hook.

/// Makes `builder`'s worker threads hold answers for a batch, keep SQLite read marks for a burst, and let go of
/// both whenever they are about to park.
pub fn on_runtime(builder: &mut tokio::runtime::Builder) -> &mut tokio::runtime::Builder {
    builder
        .on_thread_start(crate::batched_writes::on_thread_start)
        .on_thread_park(|| {
            crate::batched_writes::release();
            crate::store::sqlite::let_go_of_read_marks();
        })
}
