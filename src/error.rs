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

/// Where a deserialisation error happened, as a field path (`models[1].lr`), or `(json)` at the top level.
fn path_of(path: &serde_path_to_error::Path) -> String {
    let p = path.to_string();
    if p == "." || p.is_empty() {
        "(json)".to_string()
    } else {
        p
    }
}

/// Parses JSON text into `T`; a syntax error names its line and column, a wrong type or value names the
/// field by its path (`models[1].lr`) — serde_json alone names only the position.
pub fn from_json_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let field = path_of(e.path());
        let inner = e.into_inner();
        LabError::config(field, format!("{inner} (line {}, column {})", inner.line(), inner.column()))
    })?;
    de.end().map_err(|e| LabError::config("(json)", format!("{e} (line {}, column {})", e.line(), e.column())))?;
    Ok(value)
}

/// Converts a parsed JSON value into `T`; a wrong type or value names the field by its path.
pub fn from_json_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| LabError::config(path_of(e.path()), e.into_inner().to_string()))
}

/// The lab's result type.
pub type Result<T, E = LabError> = std::result::Result<T, E>;
