//! Where connectors are found: `--plugins DIR`, then `TRAWL_PLUGIN_PATH`, then the XDG data folder.

use std::path::{Path, PathBuf};

/// The folders searched for `<connector>.wasm`, in order.
#[derive(Clone, Debug)]
pub struct PluginDirs {
    dirs: Vec<PathBuf>,
}

/// A connector file found in a plugin folder.
#[derive(Clone, Debug)]
pub struct PluginFile {
    /// The name it is found under: the file name without `.wasm`.
    pub name: String,
    pub path: PathBuf,
}

impl PluginDirs {
    /// The search order: explicit folders first, then each entry of `plugin_path` (a `:`-separated
    /// list, like `PATH`), then `<data_home>/trawl/plugins`.
    pub fn new(
        explicit: &[PathBuf],
        plugin_path: Option<&str>,
        data_home: Option<PathBuf>,
    ) -> Self {
        let mut dirs: Vec<PathBuf> = explicit.to_vec();
        if let Some(list) = plugin_path {
            dirs.extend(std::env::split_paths(list).filter(|dir| !dir.as_os_str().is_empty()));
        }
        if let Some(data_home) = data_home {
            dirs.push(data_home.join("trawl").join("plugins"));
        }
        PluginDirs { dirs }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The connector to load for `name_or_path`: a path to a `.wasm` file is taken as it is; a name
    /// is looked up as `<name>.wasm` in each folder in turn.
    pub fn find(&self, name_or_path: &str) -> Option<PathBuf> {
        let as_path = Path::new(name_or_path);
        if name_or_path.ends_with(".wasm") || as_path.components().count() > 1 {
            return Some(as_path.to_path_buf());
        }
        self.dirs
            .iter()
            .map(|dir| dir.join(format!("{name_or_path}.wasm")))
            .find(|path| path.is_file())
    }

    /// Every connector file in every folder; a name found in an earlier folder hides later ones.
    pub fn list(&self) -> Vec<(PluginFile, bool)> {
        let mut found: Vec<(PluginFile, bool)> = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
                .collect();
            files.sort();
            for path in files {
                let name = path
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let hidden = found.iter().any(|(file, _)| file.name == name);
                found.push((PluginFile { name, path }, hidden));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order_and_shadowing() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        std::fs::write(first.path().join("acme.wasm"), b"").unwrap();
        std::fs::write(second.path().join("acme.wasm"), b"").unwrap();
        std::fs::write(second.path().join("other.wasm"), b"").unwrap();
        std::fs::write(second.path().join("notes.txt"), b"").unwrap();
        let path_list = std::env::join_paths([second.path()]).unwrap();
        let dirs = PluginDirs::new(
            &[first.path().to_path_buf()],
            Some(path_list.to_str().unwrap()),
            None,
        );
        assert_eq!(dirs.find("acme"), Some(first.path().join("acme.wasm")));
        assert_eq!(dirs.find("other"), Some(second.path().join("other.wasm")));
        assert_eq!(dirs.find("missing"), None);
        assert_eq!(dirs.find("./x.wasm"), Some(PathBuf::from("./x.wasm")));
        let listed: Vec<(String, bool)> = dirs
            .list()
            .into_iter()
            .map(|(file, hidden)| (file.name, hidden))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("acme".to_string(), false),
                ("acme".to_string(), true),
                ("other".to_string(), false)
            ]
        );
    }
}
