//! # workmail-pat
//!
//! A self-hostable implementation of Amazon WorkMail's personal-access-token API, spoken over AWS JSON 1.1 so that
//! real AWS SDKs work against it unmodified, plus what makes tokens real: organizations, users, the PAT
//! configuration, token creation by users and token verification by mail servers.
//!
//! # Layout
//! - [`cli`]: the command line (`serve`, `token create`, `seed`, `dump`, `migrate`, `report`); the binary only
//!   calls [`cli::main`]. The benchmark is a crate of its own, `bench/` (it signs with `aws-sigv4`).
//! - [`server`]: the connection loop (with its limits), the router, the request context and graceful shutdown.
//! - [`connections`]: the per-client connection cap and the shedding of idle connections near the global cap.
//! - [`protocol`]: AWS JSON 1.1 on the wire: SigV4 identity, `X-Amz-Target`, and the one place where errors
//!   become responses.
//! - [`auth`]: server-side SigV4 verification (`auth/sigv4/`: header, verification, canonical request, key cache).
//! - [`throttle`]: the AWS API buckets (per verified key, per client address for unverified requests) and the
//!   attempt limiter of sign-in, re-authentication and verification.
//! - [`client`]: who the client of a request is (socket peer, trusted proxies, `X-Forwarded-For`).
//! - [`ops`]: one file per WorkMail operation (`decode → validate → act → encode`), plus the model's constraints.
//! - [`web`]: the web page, its JSON API and `/auth/v1/verify` for mail servers.
//! - [`admin`]: health, metrics and the test-support API (reset, clock, seeded ids).
//! - [`guard`]: what keeps browsers off the test API and the accept-any AWS API (JSON only, own origin only,
//!   loopback or `--allowed-host` `Host` only: cross-site requests and DNS rebinding).
//! - [`tokens`]: sign-in, token creation and verification shared by the web API and the CLI.
//! - [`redact`]: client-supplied identifiers made safe to log.
//! - [`seed`]: seed files, synthetic stores and dumps.
//! - [`pagination`]: keyset cursors sealed into opaque NextTokens.
//! - [`secrets`]: keys, PAT secrets, session tokens and password hashes; [`private_files`]: files holding them are
//!   created 0600.
//! - [`hashing`]: the password-hashing lanes (sign-in and admin), each with its own threads and bounded queue.
//! - [`domain`]: the stored types in the service's own terms; [`error`]: the AWS-named error type;
//!   [`clock`] and [`ids`]: server time and identifiers (both controllable in tests).
//! - [`store`]: the `Store` trait with its SQLite and PostgreSQL implementations.
//!
//! # Request lifecycle (AWS API)
//! `POST /` → body read with a size cap → SigV4 identity (account, region) → `X-Amz-Target` → operation:
//! JSON decode → validation → store → JSON encode → response with `x-amzn-RequestId`; any [`error::ServiceError`]
//! is rendered by [`protocol::encode_error`].

pub mod admin;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod connections;
pub mod context;
pub mod domain;
pub mod error;
pub mod guard;
pub mod hashing;
pub mod ids;
pub mod ops;
pub mod pagination;
pub mod private_files;
pub mod protocol;
pub mod redact;
pub mod secrets;
pub mod seed;
pub mod server;
pub mod state;
pub mod store;
pub mod throttle;
pub mod tokens;
pub mod web;
