//! The lab's error type: every message says what went wrong and what to do about it.

/// Every error the lab reports. Messages name the offending field, file or limit.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A configuration field is invalid; `field` is its dotted path (e.g. `train.batch_size`).
    #[error("invalid config field `{field}`: {message}")]
    Config {
        /// Dotted path of the field, e.g. `models[2].lr`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A data set is malformed or does not fit the model.
    #[error("data: {0}")]
    Data(String),
    /// A backend was asked for something it cannot do (wrong sizes, unknown handle, ...).
    #[error("backend: {0}")]
    Backend(String),
    /// The GPU could not be obtained, or a GPU operation failed.
    #[error("GPU: {0}")]
    Gpu(String),
    /// Reading or writing a file failed.
    #[error("I/O: {0}")]
    Io(String),
}

impl LabError {
    /// Shorthand for a [`LabError::Config`] error.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        LabError::Config { field: field.into(), message: message.into() }
    }
}

impl From<std::io::Error> for LabError {
    fn from(e: std::io::Error) -> Self {
        LabError::Io(e.to_string())
    }
}

/// The lab's result type.
pub type Result<T, E = LabError> = std::result::Result<T, E>;
