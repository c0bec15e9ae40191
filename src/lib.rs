//! # workmail-pat
//!
//! A self-hostable implementation of Amazon WorkMail's personal-access-token API, spoken over AWS JSON 1.1 so that
//! real AWS SDKs work against it unmodified, plus what makes tokens real: organizations, users, the PAT
//! configuration, token creation by users and token verification by mail servers.
//!
//! # Layout
//! - [`cli`]: the command line (`serve`, `token create`); the binary only calls [`cli::main`].
//! - [`server`]: the listener, the router and graceful shutdown.
//! - [`protocol`]: AWS JSON 1.1 on the wire: SigV4 identity, `X-Amz-Target`, and the one place where errors
//!   become responses.
//! - [`auth`]: server-side SigV4 verification.
//! - [`ops`]: one file per WorkMail operation (`decode → validate → act → encode`), plus the model's constraints.
//! - [`web`]: the web application's JSON API and `/auth/v1/verify` for mail servers.
//! - [`tokens`]: sign-in, token creation and verification shared by the web API and the CLI.
//! - [`pagination`]: keyset cursors sealed into opaque NextTokens.
//! - [`secrets`]: keys, PAT secrets, session tokens and password hashes.
//! - [`domain`]: the stored types in the service's own terms; [`error`]: the AWS-named error type.
//! - [`store`]: the `Store` trait and its SQLite implementation.
//!
//! # Request lifecycle (AWS API)
//! `POST /` → body read with a size cap → SigV4 identity (account, region) → `X-Amz-Target` → operation:
//! JSON decode → validation → store → JSON encode → response with `x-amzn-RequestId`; any [`error::ServiceError`]
//! is rendered by [`protocol::encode_error`].

pub mod admin;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod domain;
pub mod error;
pub mod ids;
pub mod ops;
pub mod pagination;
pub mod protocol;
pub mod secrets;
pub mod seed;
pub mod server;
pub mod state;
pub mod store;
pub mod throttle;
pub mod tokens;
pub mod web;
