//! Reading the user's kubeconfig the way kubectl does, and choosing contexts from it.

use std::path::{Path, PathBuf};

use kube::config::{Kubeconfig, KubeconfigError};

use crate::error::UserError;

/// The merged kubeconfig and the files it came from.
#[derive(Debug, Clone)]
pub struct LoadedKubeconfig {
    pub config: Kubeconfig,
    pub files: Vec<PathBuf>,
}

/// Where the kubeconfig comes from: `--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`.
pub fn kubeconfig_paths(flag: Option<&Path>) -> Result<Vec<PathBuf>, UserError> {
    if let Some(path) = flag {
        // An explicit file must exist, as with kubectl.
        return Ok(vec![path.to_path_buf()]);
    }
    if let Some(value) = std::env::var_os("KUBECONFIG") {
        let listed: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !listed.is_empty() {
            // client-go skips files of the KUBECONFIG list that do not exist.
            let existing: Vec<PathBuf> = listed.into_iter().filter(|p| p.exists()).collect();
            if existing.is_empty() {
                return Err(UserError::NoKubeconfig);
            }
            return Ok(existing);
        }
    }
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .ok_or(UserError::NoKubeconfig)?;
    let default = PathBuf::from(home).join(".kube").join("config");
    if default.exists() {
        Ok(vec![default])
    } else {
        Err(UserError::NoKubeconfig)
    }
}

/// Reads and merges the files: the first file to set a value wins, as kubectl merges them.
pub fn load(flag: Option<&Path>) -> Result<LoadedKubeconfig, UserError> {
    let files = kubeconfig_paths(flag)?;
    let mut merged: Option<Kubeconfig> = None;
    for file in &files {
        let one = read_file(file)?;
        merged = Some(match merged {
            None => one,
            Some(so_far) => so_far.merge(one).map_err(|err| file_error(file, err))?,
        });
    }
    Ok(LoadedKubeconfig {
        config: merged.unwrap_or_default(),
        files,
    })
}

/// One kubeconfig file, read as kube's `Kubeconfig::read_from` reads it (UTF-8, or UTF-16 or
/// UTF-8 after a byte-order mark; relative file paths taken from the file's directory), but only
/// when it is a regular file of at most 16 MiB, and refusing a malformed encoding instead of
/// panicking on it.
pub fn read_file(path: &Path) -> Result<Kubeconfig, UserError> {
    let bytes = crate::input::read_regular_file(path, crate::input::MAX_KUBECONFIG_FILE).map_err(
        |reason| UserError::UnreadableKubeconfig {
            path: path.to_path_buf(),
            reason: reason
                .strip_prefix("cannot be read: ")
                .unwrap_or(&reason)
                .to_string(),
        },
    )?;
    let text = decode(&bytes).map_err(|reason| UserError::MalformedKubeconfig {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    })?;
    let mut config = Kubeconfig::from_yaml(&text).map_err(|err| file_error(path, err))?;
    if let Some(dir) = path.parent() {
        absolute_paths(&mut config, dir);
    }
    Ok(config)
}

/// The text of a kubeconfig: UTF-8, with or without a byte-order mark, or UTF-16 after one.
pub fn decode(bytes: &[u8]) -> Result<String, &'static str> {
    let utf16 = |body: &[u8], from: fn([u8; 2]) -> u16| {
        if !body.len().is_multiple_of(2) {
            return Err(
                "it starts with a UTF-16 byte-order mark but has an odd number of bytes; save it as UTF-8",
            );
        }
        let units: Vec<u16> = body.chunks_exact(2).map(|c| from([c[0], c[1]])).collect();
        String::from_utf16(&units).map_err(|_| "it is not valid UTF-16; save it as UTF-8")
    };
    match bytes {
        [0xFF, 0xFE, body @ ..] => utf16(body, u16::from_le_bytes),
        [0xFE, 0xFF, body @ ..] => utf16(body, u16::from_be_bytes),
        [0xEF, 0xBB, 0xBF, body @ ..] => {
            String::from_utf8(body.to_vec()).map_err(|_| "it is not valid UTF-8")
        }
        _ => String::from_utf8(bytes.to_vec()).map_err(|_| "it is not valid UTF-8"),
    }
}

/// Relative paths in a kubeconfig are relative to its file, as client-go reads them.
fn absolute_paths(config: &mut Kubeconfig, dir: &Path) {
    let absolute = |path: &mut String| {
        if Path::new(path.as_str()).is_relative()
            && let Some(joined) = dir.join(path.as_str()).to_str()
        {
            *path = joined.to_string();
        }
    };
    for named in &mut config.clusters {
        if let Some(cluster) = &mut named.cluster
            && let Some(path) = &mut cluster.certificate_authority
        {
            absolute(path);
        }
    }
    for named in &mut config.auth_infos {
        let Some(auth) = &mut named.auth_info else {
            continue;
        };
        for path in [
            &mut auth.client_certificate,
            &mut auth.client_key,
            &mut auth.token_file,
        ]
        .into_iter()
        .flatten()
        {
            absolute(path);
        }
        // Exec commands only when they name a path, so bare PATH lookups stay as they are.
        if let Some(exec) = &mut auth.exec
            && let Some(command) = &mut exec.command
            && command.contains(std::path::MAIN_SEPARATOR)
        {
            absolute(command);
        }
    }
}

fn file_error(path: &Path, err: KubeconfigError) -> UserError {
    match err {
        KubeconfigError::ReadConfig(io, _) => UserError::UnreadableKubeconfig {
            path: path.to_path_buf(),
            reason: io.to_string(),
        },
        KubeconfigError::Parse(parse) => UserError::MalformedKubeconfig {
            path: path.to_path_buf(),
            // The parser appends a source excerpt after " --> "; the position before it is enough.
            reason: one_line(parse.to_string().split(" --> ").next().unwrap_or_default())
                .trim_start_matches("error: ")
                .to_string(),
        },
        other => UserError::MalformedKubeconfig {
            path: path.to_path_buf(),
            reason: one_line(&other.to_string()),
        },
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl LoadedKubeconfig {
    pub fn context_names(&self) -> Vec<String> {
        self.config
            .contexts
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    pub fn current_context(&self) -> Option<&str> {
        self.config
            .current_context
            .as_deref()
            .filter(|name| !name.is_empty())
    }

    /// The contexts a command works on: the named ones, all of them, or the current one.
    pub fn select_contexts(&self, named: &[String], all: bool) -> Result<Vec<String>, UserError> {
        let known = self.context_names();
        if known.is_empty() {
            return Err(UserError::NoContexts);
        }
        if all {
            return Ok(known);
        }
        if named.is_empty() {
            let current = self
                .current_context()
                .ok_or_else(|| UserError::NoCurrentContext {
                    known: known.clone(),
                })?;
            self.check_context(current)?;
            return Ok(vec![current.to_string()]);
        }
        let mut chosen: Vec<String> = Vec::new();
        for name in named {
            if let Err(reason) = crate::input::context(name) {
                return Err(UserError::InvalidContext {
                    context: name.clone(),
                    reason,
                });
            }
            self.check_context(name)?;
            if !chosen.iter().any(|c| c == name) {
                chosen.push(name.to_string());
            }
        }
        Ok(chosen)
    }

    fn check_context(&self, name: &str) -> Result<(), UserError> {
        let known = self.context_names();
        if !known.iter().any(|k| k == name) {
            return Err(UserError::UnknownContext {
                name: name.to_string(),
                known,
            });
        }
        let context = self.context(name);
        let cluster = context
            .map(|c| c.cluster.as_str())
            .filter(|c| !c.is_empty());
        match cluster {
            Some(cluster) if self.server_url_of_cluster(cluster).is_some() => Ok(()),
            Some(cluster) => Err(UserError::InvalidContext {
                context: name.to_string(),
                reason: format!(
                    "its cluster {cluster:?} is missing from the kubeconfig or has no server URL"
                ),
            }),
            None => Err(UserError::InvalidContext {
                context: name.to_string(),
                reason: "it names no cluster".to_string(),
            }),
        }
    }

    fn context(&self, name: &str) -> Option<&kube::config::Context> {
        self.config
            .contexts
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.context.as_ref())
    }

    fn server_url_of_cluster(&self, cluster: &str) -> Option<String> {
        self.config
            .clusters
            .iter()
            .find(|c| c.name == cluster)
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .filter(|s| !s.is_empty())
    }

    /// The API server URL a context points at, as written in the kubeconfig.
    pub fn server_of(&self, context: &str) -> Option<String> {
        let cluster = self.context(context)?.cluster.clone();
        self.server_url_of_cluster(&cluster)
    }

    /// The namespace a context defaults to: its own, then `default`.
    pub fn namespace_of(&self, context: &str) -> String {
        self.context(context)
            .and_then(|c| c.namespace.clone())
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_string())
    }
}

/// A key that is equal for two URLs reaching the same API server endpoint
/// (case of the host, default port and trailing slash do not matter).
pub fn server_identity(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => {
            let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
            let host = uri.host().unwrap_or_default().to_ascii_lowercase();
            let port = uri
                .port_u16()
                .unwrap_or(if scheme == "http" { 80 } else { 443 });
            let path = uri.path().trim_end_matches('/');
            format!("{scheme}://{host}:{port}{path}")
        }
        Err(_) => url.trim_end_matches('/').to_ascii_lowercase(),
    }
}

/// kubectl's `--request-timeout`: `0` for none, a whole number of seconds, or a Go duration.
pub fn parse_request_timeout(value: &str) -> Result<Option<std::time::Duration>, UserError> {
    crate::input::request_timeout(value).map_err(|reason| UserError::InvalidTimeout {
        value: value.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn server_identity_ignores_case_default_port_and_slash() {
        assert_eq!(
            server_identity("https://API.example.com/"),
            server_identity("https://api.example.com:443")
        );
        assert_ne!(
            server_identity("https://127.0.0.1:6443"),
            server_identity("https://127.0.0.1:6444")
        );
    }

    #[test]
    fn request_timeout_forms() {
        assert_eq!(parse_request_timeout("0").unwrap(), None);
        assert_eq!(
            parse_request_timeout("5").unwrap(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_request_timeout("2m").unwrap(),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_request_timeout("250ms").unwrap(),
            Some(Duration::from_millis(250))
        );
        assert!(parse_request_timeout("soon").is_err());
        assert!(parse_request_timeout("5d").is_err());
        assert!(parse_request_timeout("-1s").is_err());
    }

    fn loaded(yaml: &str) -> LoadedKubeconfig {
        LoadedKubeconfig {
            config: Kubeconfig::from_yaml(yaml).unwrap(),
            files: vec![],
        }
    }

    const TWO_CONTEXTS: &str = r#"
apiVersion: v1
kind: Config
current-context: east
clusters:
- name: east
  cluster: {server: "https://127.0.0.1:6443"}
contexts:
- name: east
  context: {cluster: east, user: u, namespace: search}
- name: east-again
  context: {cluster: east, user: u}
- name: broken
  context: {cluster: nowhere, user: u}
users:
- name: u
  user: {token: abc}
"#;

    #[test]
    fn selects_current_named_and_all_contexts() {
        let kc = loaded(TWO_CONTEXTS);
        assert_eq!(kc.select_contexts(&[], false).unwrap(), ["east"]);
        assert_eq!(
            kc.select_contexts(&["east-again".into(), "east".into()], false)
                .unwrap(),
            ["east-again", "east"]
        );
        assert_eq!(kc.select_contexts(&[], true).unwrap().len(), 3);
    }

    #[test]
    fn unknown_context_names_the_known_ones() {
        let kc = loaded(TWO_CONTEXTS);
        let err = kc.select_contexts(&["west".into()], false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "context \"west\" not found in the kubeconfig; contexts that exist: east, east-again, broken"
        );
    }

    #[test]
    fn context_without_cluster_is_refused() {
        let kc = loaded(TWO_CONTEXTS);
        let err = kc.select_contexts(&["broken".into()], false).unwrap_err();
        assert!(err.to_string().contains("\"nowhere\" is missing"), "{err}");
    }

    #[test]
    fn namespace_defaults_to_context_then_default() {
        let kc = loaded(TWO_CONTEXTS);
        assert_eq!(kc.namespace_of("east"), "search");
        assert_eq!(kc.namespace_of("east-again"), "default");
    }
}
