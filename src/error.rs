//! The AWS-named error type every operation returns.
//!
//! This module knows nothing about HTTP bodies: it names errors exactly as AWS spells them and says which HTTP status
//! each one carries. `protocol::encode_error` is the one place where a [`ServiceError`] becomes a wire response.

use std::borrow::Cow;
use std::fmt;

/// Every error code the AWS JSON API can answer with, spelled exactly as AWS spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    // Modelled WorkMail errors: body member `Message` (capital M), HTTP 400.
    DirectoryInUseException,
    EmailAddressInUseException,
    EntityAlreadyRegisteredException,
    EntityNotFoundException,
    EntityStateException,
    InvalidParameterException,
    InvalidPasswordException,
    LimitExceededException,
    MailDomainInUseException,
    MailDomainNotFoundException,
    MailDomainStateException,
    NameAvailabilityException,
    OrganizationNotFoundException,
    OrganizationStateException,
    ReservedNameException,
    ResourceNotFoundException,
    // Framework-level errors: body member `message` (lower case).
    UnknownOperationException,
    SerializationException,
    MissingAuthenticationTokenException,
    IncompleteSignatureException,
    InvalidSignatureException,
    UnrecognizedClientException,
    ThrottlingException,
    RequestEntityTooLargeException,
    RequestTimeoutException,
    /// A request refused for where it comes from (a browser's `Host`), not for what it asks: HTTP 403, which SDKs
    /// do not retry.
    AccessDeniedException,
    InternalFailure,
    ServiceUnavailable,
}

impl ErrorCode {
    /// The `__type` value.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            DirectoryInUseException => "DirectoryInUseException",
            EmailAddressInUseException => "EmailAddressInUseException",
            EntityAlreadyRegisteredException => "EntityAlreadyRegisteredException",
            EntityNotFoundException => "EntityNotFoundException",
            EntityStateException => "EntityStateException",
            InvalidParameterException => "InvalidParameterException",
            InvalidPasswordException => "InvalidPasswordException",
            LimitExceededException => "LimitExceededException",
            MailDomainInUseException => "MailDomainInUseException",
            MailDomainNotFoundException => "MailDomainNotFoundException",
            MailDomainStateException => "MailDomainStateException",
            NameAvailabilityException => "NameAvailabilityException",
            OrganizationNotFoundException => "OrganizationNotFoundException",
            OrganizationStateException => "OrganizationStateException",
            ReservedNameException => "ReservedNameException",
            ResourceNotFoundException => "ResourceNotFoundException",
            UnknownOperationException => "UnknownOperationException",
            SerializationException => "SerializationException",
            MissingAuthenticationTokenException => "MissingAuthenticationTokenException",
            IncompleteSignatureException => "IncompleteSignatureException",
            InvalidSignatureException => "InvalidSignatureException",
            UnrecognizedClientException => "UnrecognizedClientException",
            ThrottlingException => "ThrottlingException",
            RequestEntityTooLargeException => "RequestEntityTooLargeException",
            RequestTimeoutException => "RequestTimeoutException",
            AccessDeniedException => "AccessDeniedException",
            InternalFailure => "InternalFailure",
            ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// Modelled WorkMail errors carry `Message`; framework errors carry `message` (spec D10).
    pub fn is_modelled(self) -> bool {
        use ErrorCode::*;
        !matches!(
            self,
            UnknownOperationException
                | SerializationException
                | MissingAuthenticationTokenException
                | IncompleteSignatureException
                | InvalidSignatureException
                | UnrecognizedClientException
                | ThrottlingException
                | RequestEntityTooLargeException
                | RequestTimeoutException
                | AccessDeniedException
                | InternalFailure
                | ServiceUnavailable
        )
    }

    /// HTTP status. Everything a client can cause is a 4xx, so SDKs never retry it as a server fault.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::RequestEntityTooLargeException => 413,
            ErrorCode::RequestTimeoutException => 408,
            ErrorCode::AccessDeniedException => 403,
            ErrorCode::InternalFailure => 500,
            ErrorCode::ServiceUnavailable => 503,
            _ => 400,
        }
    }
}

/// An error answered to an AWS API caller.
#[derive(Debug, Clone)]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A store or other internal failure. The detail is logged here, never sent to the client.
    #[track_caller]
    pub fn internal(detail: impl fmt::Display) -> Self {
        let location = std::panic::Location::caller();
        tracing::error!(%detail, %location, "internal error");
        Self::new(
            ErrorCode::InternalFailure,
            "An internal error occurred. Please retry.",
        )
    }

    pub fn invalid_parameter(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidParameterException, message)
    }

    pub fn organization_not_found(org_id: &str) -> Self {
        Self::new(
            ErrorCode::OrganizationNotFoundException,
            format!("Organization {org_id} does not exist"),
        )
    }

    pub fn entity_not_found(what: &str) -> Self {
        Self::new(
            ErrorCode::EntityNotFoundException,
            format!("Entity {what} does not exist"),
        )
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ServiceError {}

/// Shorthand for `Err(ServiceError::new(code, message))`.
#[macro_export]
macro_rules! service_error {
    ($code:ident, $($fmt:tt)+) => {
        $crate::error::ServiceError::new($crate::error::ErrorCode::$code, format!($($fmt)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framework_errors_are_not_modelled_and_statuses_are_4xx() {
        assert!(ErrorCode::OrganizationNotFoundException.is_modelled());
        assert!(!ErrorCode::SerializationException.is_modelled());
        assert_eq!(ErrorCode::UnknownOperationException.status(), 400);
        assert_eq!(ErrorCode::RequestEntityTooLargeException.status(), 413);
        assert_eq!(ErrorCode::InternalFailure.status(), 500);
    }
}
