//! The request decoder of every operation, driven through `ops::dispatch` (JSON body → typed request →
//! validation → store) on an in-memory SQLite store: the first byte picks the operation, the rest is the body.
//! Never panics, and never answers `InternalFailure`: every hostile body gets a documented client error.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use workmail_pat::domain::Partition;
use workmail_pat::error::ErrorCode;
use workmail_pat::ops::{self, Ctx, Operation};
use workmail_pat::secrets::Key32;
use workmail_pat::state::{AppState, Settings};

struct World {
    rt: tokio::runtime::Runtime,
    app: AppState,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store: Arc<dyn workmail_pat::store::Store> =
            workmail_pat::store::open("sqlite::memory:").expect("in-memory store");
        let app = AppState::new(
            store,
            &Key32::from_bytes([1; 32]),
            Key32::from_bytes([2; 32]),
            Settings::default(),
        );
        World { rt, app }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let op = Operation::ALL[usize::from(selector) % Operation::ALL.len()];
    let w = world();
    let ctx = Ctx {
        app: &w.app,
        partition: Partition {
            account: "123456789012".into(),
            region: "us-east-1".into(),
        },
    };
    match w.rt.block_on(ops::dispatch(op, &ctx, body)) {
        Ok(reply) => {
            let v: serde_json::Value = serde_json::from_slice(&reply).expect("reply is JSON");
            assert!(v.is_object(), "{op:?}: reply is not an object");
        }
        Err(e) => {
            assert_ne!(e.code, ErrorCode::InternalFailure, "{op:?}: {}", e.message);
            assert!(e.code.status() == 400, "{op:?}: {:?}", e.code);
        }
    }
});
