//! # workmail-pat
//!
//! A self-hostable implementation of Amazon WorkMail's personal-access-token API, spoken over AWS JSON 1.1 so that
//! real AWS SDKs work against it unmodified, plus what makes tokens real: organizations, users, the PAT
//! configuration, token creation by users and token verification by mail servers.
//!
//! # Layout
//! Layers, each importing only from the layers below it (docs/ARCHITECTURE.md draws them):
//! 1. The binary (`src/main.rs`) calls [`cli::main`]; [`cli`] parses the command line (`serve`, `token`, `seed`,
//!    `dump`, `migrate`, `report`, `health`, `domain`, `import`, `completions`, `man`). The benchmark is a crate of its own, `bench/`.
//! 2. [`server`]: the connection loop (limits, [`connections`] caps and idle shedding, graceful shutdown) and the
//!    router that mounts the routers below with the request-context middleware (request id, client address,
//!    access log); [`http1`] serves the simple requests of the two hot endpoints before hyper takes a connection
//!    over.
//! 3. Routers: [`protocol`] (AWS JSON 1.1: SigV4 identity, `X-Amz-Target`, the one place where API errors become
//!    responses), [`web`] (the page, its JSON API and `/auth/v1/verify`), [`admin`] (health, metrics, the test
//!    API) and [`guard`] (what keeps browsers off the test API and the accept-any AWS API).
//! 4. What the routers run: [`ops`] (one file per WorkMail operation, each `handle(ctx, Input) -> Result<Output,
//!    ServiceError>`; `ops::dispatch` decodes and encodes), [`tokens`] (self-service: sign-in, re-authentication,
//!    one's own tokens, verification, with every attempt limit), [`login`] (which organization and user a login
//!    name means, by an address's verified domain when no organization is given) [`seed`] (seed files and dumps,
//!    through the typed operations) and [`import`] (organizations copied with their ids from a WorkMail endpoint
//!    or a dump: a plan, then writes through the store).
//! 5. What those use: [`model`] (the constraints every entry point shares, with a protocol-neutral
//!    `ConstraintError`, and the token summaries several layers send), [`context`] (the state every router shares,
//!    the bounded body reader), [`auth`] (access keys, SigV4), [`client`] (who the client is, which `Host` names
//!    count), [`throttle`], [`hashing`], [`pagination`] (sealed NextTokens and the one `page` helper), [`secrets`],
//!    [`redact`], [`private_files`], [`state`], [`touches`] (`DateLastUsed` writes batched off the request path),
//!    [`store`] (the `Store` trait; one schema in `store/sql.rs`, the
//!    methods once in `store/executor.rs`, SQLite and PostgreSQL executors).
//! 6. [`domain`] (the stored types), [`mail`] (mail domains, addresses, DNS records), [`error`] (the AWS-named
//!    error type), [`clock`], [`ids`].

//! # Request lifecycle (AWS API)
//! `POST /` → body read with a size cap → SigV4 identity (account, region) → `X-Amz-Target` → [`ops::dispatch`]:
//! JSON decode into the operation's `Input` → `handle` (validation, store) → typed `Output` → JSON encode →
//! response with `x-amzn-RequestId`; any [`error::ServiceError`] is rendered by [`protocol::encode_error`].

pub mod admin;
pub mod auth;
pub mod batched_writes;
pub mod cli;
pub mod client;
pub mod clock;
pub mod connections;
pub mod context;
pub mod domain;
pub mod error;
pub mod guard;
pub mod hashing;
pub mod http1;
pub mod ids;
pub mod import;
pub mod log_writer;
pub mod login;
pub mod mail;
pub mod model;
pub mod ops;
pub mod pagination;
pub mod private_files;
pub mod protocol;
pub mod redact;
pub mod runtime;
pub mod secrets;
pub mod seed;
pub mod server;
pub mod state;
pub mod store;
pub mod throttle;
pub mod tokens;
pub mod touches;
pub mod web;
