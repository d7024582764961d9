//! The process environment plus a `.env` file, as the seed scripts read them (python-dotenv:
//! variables already in the environment win over the file).

use super::ConfigError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct Environment {
    process: HashMap<String, String>,
    dotenv: HashMap<String, String>,
}

impl Environment {
    /// The process environment and `env_file` (default: `.env` in the working folder, if any).
    pub fn load(env_file: Option<&Path>) -> Result<Self, ConfigError> {
        let process = std::env::vars().collect();
        let dotenv = match env_file {
            Some(path) => read_dotenv(path)?,
            None if Path::new(".env").is_file() => read_dotenv(Path::new(".env"))?,
            None => HashMap::new(),
        };
        Ok(Environment { process, dotenv })
    }

    /// An environment made of the given pairs (for tests and embedding).
    pub fn from_pairs(
        process: impl IntoIterator<Item = (String, String)>,
        dotenv: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Environment {
            process: process.into_iter().collect(),
            dotenv: dotenv.into_iter().collect(),
        }
    }

    /// A variable's value, and whether it came from `.env`.
    pub fn get(&self, name: &str) -> Option<(&str, bool)> {
        self.process
            .get(name)
            .map(|value| (value.as_str(), false))
            .or_else(|| self.dotenv.get(name).map(|value| (value.as_str(), true)))
    }
}

fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: PathBuf::from(path),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let mut values = HashMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((name, value)) => {
                values.insert(name, value);
            }
            Err(dotenvy::Error::LineParse(line_text, column)) => {
                let line = text
                    .lines()
                    .position(|line| line.contains(line_text.trim()))
                    .map_or(0, |index| index + 1);
                return Err(ConfigError::Syntax {
                    path: path.to_path_buf(),
                    line,
                    column: column + 1,
                    // Only what looks like a name: the rest may be a secret.
                    message: format!(
                        "expected NAME=value, found a line starting `{}`",
                        line_text
                            .trim()
                            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                            .next()
                            .unwrap_or_default()
                    ),
                });
            }
            Err(dotenvy::Error::Io(source)) => return Err(read_error(source)),
            Err(other) => {
                return Err(read_error(std::io::Error::other(other.to_string())));
            }
        }
    }
    Ok(values)
}
