//! `trawl plugin install` and `trawl plugin approve`, and the integrity check `trawl run` makes
//! before it runs a connector.
//!
//! Installing a connector shows what it asks for (the hosts it wants to reach, the secrets it
//! wants and where each may go, its quotas) and what changed since the version approved before,
//! asks for confirmation, copies the file into the plugin folder and records its sha256 in the
//! state store. `trawl run` then refuses a connector whose file no longer has the approved digest,
//! until `trawl plugin approve` accepts the new file after the same review.
//!
//! A connector with no approval at all (a file placed in a plugin folder by hand, or a developer's
//! build) still runs, with a warning: there is nothing to compare it with, and refusing it would
//! break every workflow that predates `trawl plugin install` (the demo, the tests, a connector
//! being written). Approvals are kept per connector name, because that is what checkpoints,
//! connector storage (cached tokens) and secrets are keyed by: another file that calls itself by
//! an approved name is held to that approval, wherever it is loaded from.

use super::Cli;
use super::commands::{Failure, cache_dir, plugin_dirs, xdg_dir};
use crate::runtime::wit::ConnectorInfo;
use crate::runtime::{Connector, GuestLimits, Runtime};
use crate::state::StateStore;
use crate::state::approvals::{Approval, ApprovedSecret};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};

/// Installing connectors and approving changed ones.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Copy a connector into the plugin folder and record its sha256 as approved.
    ///
    /// Shows the hosts it will reach, the secrets it asks for and where each may be sent, its
    /// rate limits and what changed since the version approved before, then asks for confirmation.
    /// The file is installed as `<connector name>.wasm`.
    Install {
        /// The connector file (.wasm).
        file: PathBuf,
        /// The folder to install into [default: the first --plugins folder, else
        /// $XDG_DATA_HOME/trawl/plugins].
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Install without asking (required when there is no terminal to ask on).
        #[arg(short, long)]
        yes: bool,
    },
    /// Accept a connector whose file changed since it was approved, after showing what changed.
    Approve {
        /// A connector name (looked up in the plugin folders) or a path to a .wasm file.
        connector: String,
        /// Approve without asking (required when there is no terminal to ask on).
        #[arg(short, long)]
        yes: bool,
    },
    /// List the connectors found in the plugin folders (the same as `trawl plugins`).
    List,
}

/// Runs `trawl plugin install` or `trawl plugin approve` (`list` is `trawl plugins`).
pub(super) async fn execute(cli: &Cli, command: &PluginCommand) -> Result<(), Failure> {
    match command {
        PluginCommand::Install { file, to, yes } => install(cli, file, to.as_deref(), *yes).await,
        PluginCommand::Approve { connector, yes } => approve(cli, connector, *yes).await,
        // `commands::execute` runs `trawl plugins` for it; this is not reached.
        PluginCommand::List => Err(Failure::input("`trawl plugin list` is `trawl plugins`")),
    }
}

/// The state folder for commands that have no config file: `--state`, else the XDG one.
fn state_dir(cli: &Cli) -> Option<PathBuf> {
    cli.state_dir
        .clone()
        .or_else(|| xdg_dir("XDG_STATE_HOME", ".local/state").map(|dir| dir.join("trawl")))
}

fn open_state(cli: &Cli) -> Result<StateStore, Failure> {
    let dir =
        state_dir(cli).ok_or_else(|| Failure::input("no state folder: set --state DIR or HOME"))?;
    StateStore::open(&dir).map_err(Failure::run)
}

/// Where `install` copies to: `--to`, else the first `--plugins` folder, else the XDG data folder.
fn install_dir(cli: &Cli, to: Option<&Path>) -> Result<PathBuf, Failure> {
    to.map(Path::to_path_buf)
        .or_else(|| cli.plugin_dirs.first().cloned())
        .or_else(|| {
            xdg_dir("XDG_DATA_HOME", ".local/share").map(|dir| dir.join("trawl").join("plugins"))
        })
        .ok_or_else(|| {
            Failure::input("no plugin folder to install into: pass --to DIR or set HOME")
        })
}

/// ` (env NAME)` when a secret is read from an environment variable.
fn env_note(env: &Option<String>) -> String {
    env.as_ref()
        .map(|variable| format!(" (env {variable})"))
        .unwrap_or_default()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The first 12 hex digits of a digest, enough to tell two files apart in a message.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|error| {
        Failure::input(format!("cannot read connector {}: {error}", path.display()))
    })
}

/// Loads a connector file and returns it with the bytes it was loaded from; refuses a file that
/// changed while it was being loaded (the runtime reads it again), since then what it described
/// may not be what was read.
async fn load_with_bytes(
    runtime: &Runtime,
    path: &Path,
    refused: &str,
) -> Result<(Connector, Vec<u8>), Failure> {
    let bytes = read(path)?;
    let connector = runtime
        .load(path)
        .await
        .map_err(|error| Failure::input(format!("{refused}: {error}")))?;
    if sha256_hex(&bytes) != connector.sha256() {
        return Err(Failure::input(format!(
            "{refused}: {} changed while it was being read; try again once it is written",
            path.display()
        )));
    }
    Ok((connector, bytes))
}

/// What a connector asks for, in the form an approval records it.
fn declarations(info: &ConnectorInfo, path: &Path, sha256: &str, approved_at_ms: i64) -> Approval {
    let sorted = |items: &mut Vec<String>| {
        items.sort();
        items.dedup();
    };
    let mut hosts = info.hosts.clone();
    sorted(&mut hosts);
    let mut secrets: Vec<ApprovedSecret> = info
        .params
        .iter()
        .filter(|param| param.secret)
        .map(|param| {
            // No `secret-hosts` means every host the connector declares.
            let mut hosts = if param.secret_hosts.is_empty() {
                info.hosts.clone()
            } else {
                param.secret_hosts.clone()
            };
            sorted(&mut hosts);
            ApprovedSecret {
                name: param.name.clone(),
                env: param.env.clone(),
                hosts,
            }
        })
        .collect();
    secrets.sort_by(|a, b| a.name.cmp(&b.name));
    let mut params: Vec<String> = info.params.iter().map(|param| param.name.clone()).collect();
    sorted(&mut params);
    Approval {
        connector: info.name.clone(),
        path: path.to_path_buf(),
        sha256: sha256.to_string(),
        version: info.version.clone(),
        hosts,
        secrets,
        params,
        approved_at_ms,
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "no host".to_string()
    } else {
        items.join(", ")
    }
}

/// What changed between an approval and what a connector asks for now, one line each, in the
/// order version, hosts, secrets, other params. Empty when nothing it declares changed (the file
/// may still differ).
fn changes(previous: &Approval, next: &Approval) -> Vec<String> {
    let mut lines = Vec::new();
    if previous.version != next.version {
        lines.push(format!("version {} -> {}", previous.version, next.version));
    }
    let old_hosts: BTreeSet<&String> = previous.hosts.iter().collect();
    let new_hosts: BTreeSet<&String> = next.hosts.iter().collect();
    for host in new_hosts.difference(&old_hosts) {
        lines.push(format!("+ host {host}"));
    }
    for host in old_hosts.difference(&new_hosts) {
        lines.push(format!("- host {host}"));
    }
    let find = |approval: &'_ Approval, name: &str| {
        approval
            .secrets
            .iter()
            .find(|secret| secret.name == name)
            .cloned()
    };
    for secret in &next.secrets {
        match find(previous, &secret.name) {
            None => lines.push(format!(
                "+ secret {}{}, may be sent to {}",
                secret.name,
                env_note(&secret.env),
                list(&secret.hosts)
            )),
            Some(old) => {
                if old.hosts != secret.hosts {
                    lines.push(format!(
                        "~ secret {} may now be sent to {} (was {})",
                        secret.name,
                        list(&secret.hosts),
                        list(&old.hosts)
                    ));
                }
                if old.env != secret.env {
                    let env = |env: &Option<String>| env.clone().unwrap_or_else(|| "none".into());
                    lines.push(format!(
                        "~ secret {} is now read from env {} (was {})",
                        secret.name,
                        env(&secret.env),
                        env(&old.env)
                    ));
                }
            }
        }
    }
    for secret in &previous.secrets {
        if find(next, &secret.name).is_none() {
            lines.push(format!("- secret {}", secret.name));
        }
    }
    // Params other than secrets, which are reported above.
    let plain = |approval: &Approval| -> BTreeSet<String> {
        approval
            .params
            .iter()
            .filter(|name| {
                !previous.secrets.iter().any(|secret| &secret.name == *name)
                    && !next.secrets.iter().any(|secret| &secret.name == *name)
            })
            .cloned()
            .collect()
    };
    let (old_params, new_params) = (plain(previous), plain(next));
    for param in new_params.difference(&old_params) {
        lines.push(format!("+ param {param}"));
    }
    for param in old_params.difference(&new_params) {
        lines.push(format!("- param {param}"));
    }
    lines
}

fn when(millis: i64) -> String {
    jiff::Timestamp::from_millisecond(millis)
        .map(|time| time.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| format!("{millis} ms"))
}

fn per(millis: u64) -> String {
    match millis {
        1_000 => "second".into(),
        60_000 => "minute".into(),
        3_600_000 => "hour".into(),
        86_400_000 => "day".into(),
        _ if millis.is_multiple_of(1_000) => format!("{} s", millis / 1_000),
        _ => format!("{millis} ms"),
    }
}

/// What a connector is and asks for, as shown before it is installed or approved.
fn overview(info: &ConnectorInfo, declared: &Approval, source: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {} - {}", info.name, info.version, info.description);
    let _ = writeln!(out, "  file    {}", source.display());
    let _ = writeln!(out, "  sha256  {}", declared.sha256);
    let _ = writeln!(out, "\nHosts it will send requests to:");
    if declared.hosts.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for host in &declared.hosts {
        let _ = writeln!(out, "  {host}");
    }
    let _ = writeln!(
        out,
        "Secrets it asks for (it sees only placeholders; trawl adds the values on the way out):"
    );
    if declared.secrets.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for secret in &declared.secrets {
        let _ = writeln!(
            out,
            "  {}{}, sent only to:",
            secret.name,
            env_note(&secret.env),
        );
        if secret.hosts.is_empty() {
            let _ = writeln!(out, "    no host");
        }
        for host in &secret.hosts {
            let _ = writeln!(out, "    {host}");
        }
    }
    let plain: Vec<&str> = info
        .params
        .iter()
        .filter(|param| !param.secret)
        .map(|param| param.name.as_str())
        .collect();
    if !plain.is_empty() {
        let _ = writeln!(out, "Other params: {}", plain.join(", "));
    }
    let _ = writeln!(out, "Rate limits it declares:");
    if info.rate_limits.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for limit in &info.rate_limits {
        let _ = writeln!(out, "  {} requests per {}", limit.requests, per(limit.per));
    }
    out
}

/// The "what changed" part of the review, against the approval recorded before (if any).
fn review_changes(previous: &Approval, next: &Approval) -> String {
    let mut out = String::new();
    if previous.sha256 == next.sha256 {
        let _ = writeln!(
            out,
            "\nThis is the file approved on {} (version {}).",
            when(previous.approved_at_ms),
            previous.version
        );
        let lines = changes(previous, next);
        if !lines.is_empty() {
            let _ = writeln!(out, "But the approval on record says otherwise:");
        }
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
        return out;
    }
    let _ = writeln!(
        out,
        "\nChanges since version {}, approved {} (sha256 {}):",
        previous.version,
        when(previous.approved_at_ms),
        short(&previous.sha256)
    );
    let lines = changes(previous, next);
    if lines.is_empty() {
        let _ = writeln!(
            out,
            "  none in what it declares: the file is different, but its version, hosts, secrets \
             and params are the same"
        );
    }
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// Asks `question` on the terminal; without one, only `--yes` goes ahead.
fn confirm(question: &str, yes: bool, refused: &str, flag_hint: &str) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::input(format!(
            "{refused}: there is no terminal to ask for confirmation on; review the above and \
             pass --yes to {flag_hint} without asking"
        )));
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    // Commands run as tasks of the async runtime: waiting on the terminal must not hold one of
    // its threads.
    tokio::task::block_in_place(|| std::io::stdin().lock().read_line(&mut answer))
        .map_err(|error| Failure::input(format!("{refused}: cannot read the answer: {error}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Failure::input(refused)),
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Creates `dir` owner-only if it does not exist yet (a folder that exists is left as it is).
fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    crate::files::create_private_dir(dir)
}

/// Writes `bytes` to `target` atomically: a temporary file in the same folder, synced, then
/// renamed over it, so that a connector file is never seen half-written.
fn write_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    // Not ending in `.wasm`: a plugin folder listing never picks it up.
    let mut temp = tempfile::Builder::new()
        .prefix(".trawl-install-")
        .suffix(".partial")
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    temp.as_file().sync_all()?;
    temp.persist(target).map_err(|error| error.error)?;
    crate::files::sync_dir(dir)?;
    Ok(())
}

async fn install(cli: &Cli, file: &Path, to: Option<&Path>, yes: bool) -> Result<(), Failure> {
    let runtime = Runtime::new(cache_dir(cli), GuestLimits::default()).map_err(Failure::run)?;
    // Loading first: a file that is not a connector is refused before anything is copied.
    let (connector, bytes) = load_with_bytes(&runtime, file, "not installed").await?;
    let info = connector.info();
    let digest = connector.sha256().to_string();
    let dir = install_dir(cli, to)?;
    let target_name = format!("{}.wasm", info.name);
    let target = std::path::absolute(dir.join(&target_name)).unwrap_or(dir.join(&target_name));
    let next = declarations(info, &target, &digest, now_ms());
    let state = open_state(cli)?;
    let previous = state.approval(&info.name).map_err(Failure::run)?;

    let target_digest = std::fs::read(&target).ok().map(|bytes| sha256_hex(&bytes));
    if let Some(previous) = &previous
        && previous.sha256 == digest
        && previous.path == target
        && target_digest.as_deref() == Some(digest.as_str())
        && changes(previous, &next).is_empty()
    {
        println!(
            "{} {} is already installed as {} and approved; nothing to do.",
            info.name,
            info.version,
            target.display()
        );
        return Ok(());
    }

    let mut out = overview(info, &next, file);
    match &previous {
        Some(previous) => out.push_str(&review_changes(previous, &next)),
        None => {
            let _ = writeln!(
                out,
                "\nNo connector named `{}` was approved before.",
                info.name
            );
        }
    }
    match &target_digest {
        None => {
            let _ = writeln!(out, "\nInstalls to {}.", target.display());
        }
        Some(existing) if previous.is_none() => {
            let _ = writeln!(
                out,
                "\nInstalls to {}, replacing the file there, which was never approved{}.",
                target.display(),
                if existing == &digest {
                    " (it is the same file)"
                } else {
                    ""
                }
            );
            // Compared with what was there, the reviewer sees what the new file adds.
            if existing != &digest
                && let Ok(old) = runtime.load(&target).await
                && old.info().name == info.name
            {
                let lines = changes(&declarations(old.info(), &target, existing, 0), &next);
                let _ = writeln!(
                    out,
                    "Compared with it ({} {}):",
                    old.info().name,
                    old.info().version
                );
                if lines.is_empty() {
                    let _ = writeln!(out, "  no change in what it declares");
                }
                for line in lines {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        Some(_) => {
            let _ = writeln!(
                out,
                "\nInstalls to {}, replacing the file there.",
                target.display()
            );
        }
    }
    print!("{out}");
    confirm(
        &format!("Install {} {}?", info.name, info.version),
        yes,
        "not installed",
        "install it",
    )?;

    ensure_dir(&dir)
        .and_then(|()| write_atomically(&target, &bytes))
        .map_err(|error| Failure::run(format!("cannot install {}: {error}", target.display())))?;
    state.record_approval(&next).map_err(Failure::run)?;
    println!(
        "Installed {} {} as {} (sha256 {}).",
        info.name,
        info.version,
        target.display(),
        short(&digest)
    );
    warn_if_hidden(cli, &info.name, &target);
    Ok(())
}

/// Says so when `trawl run <name>` would load another file than the one just installed.
fn warn_if_hidden(cli: &Cli, name: &str, target: &Path) {
    let canonical = |path: &Path| std::fs::canonicalize(path).unwrap_or(path.to_path_buf());
    match plugin_dirs(cli, &[]).find(name) {
        Some(found) if canonical(&found) == canonical(target) => {}
        Some(found) => println!(
            "Note: `trawl run {name}` loads {} instead, which comes first in the plugin folders' \
             search order.",
            found.display()
        ),
        None => println!(
            "Note: {} is not in the plugin folders trawl searches; run it with `trawl run {}` or \
             pass --plugins {}.",
            target.parent().unwrap_or(Path::new(".")).display(),
            target.display(),
            target.parent().unwrap_or(Path::new(".")).display()
        ),
    }
}

async fn approve(cli: &Cli, name_or_path: &str, yes: bool) -> Result<(), Failure> {
    let dirs = plugin_dirs(cli, &[]);
    let Some(path) = dirs.find(name_or_path) else {
        return Err(Failure::input(format!(
            "no connector named `{name_or_path}` in the plugin folders (`trawl plugins` lists them)"
        )));
    };
    let path = std::path::absolute(&path).unwrap_or(path);
    let runtime = Runtime::new(cache_dir(cli), GuestLimits::default()).map_err(Failure::run)?;
    let (connector, _) = load_with_bytes(&runtime, &path, "not approved").await?;
    let info = connector.info();
    let digest = connector.sha256().to_string();
    let next = declarations(info, &path, &digest, now_ms());
    let state = open_state(cli)?;
    let previous = state.approval(&info.name).map_err(Failure::run)?;
    if let Some(previous) = &previous
        && previous.sha256 == digest
        && changes(previous, &next).is_empty()
    {
        println!(
            "{} {} ({}) is already approved; nothing to do.",
            info.name,
            info.version,
            path.display()
        );
        return Ok(());
    }
    let mut out = overview(info, &next, &path);
    match &previous {
        Some(previous) => out.push_str(&review_changes(previous, &next)),
        None => {
            let _ = writeln!(
                out,
                "\nNo connector named `{}` was approved before: approving records this file as \
                 it is.",
                info.name
            );
        }
    }
    print!("{out}");
    confirm(
        &format!("Approve {} {}?", info.name, info.version),
        yes,
        "not approved",
        "approve it",
    )?;
    state.record_approval(&next).map_err(Failure::run)?;
    println!(
        "Approved {} {} ({}, sha256 {}).",
        info.name,
        info.version,
        path.display(),
        short(&digest)
    );
    Ok(())
}

/// How a loaded connector stands against its approval.
#[derive(Debug, PartialEq)]
enum Integrity {
    /// Never installed or approved: nothing to check against.
    Unrecorded,
    Approved(Approval),
    /// The file's digest is not the approved one.
    FileChanged(Approval),
    /// Same digest, but the approval on record lists other hosts or secret bindings (only an
    /// edited state store can do that).
    DeclarationsChanged(Approval, Vec<String>),
}

fn integrity(approval: Option<Approval>, current: &Approval) -> Integrity {
    match approval {
        None => Integrity::Unrecorded,
        Some(approval) if approval.sha256 != current.sha256 => Integrity::FileChanged(approval),
        Some(approval)
            if approval.hosts != current.hosts || approval.secrets != current.secrets =>
        {
            let lines = changes(&approval, current);
            Integrity::DeclarationsChanged(approval, lines)
        }
        Some(approval) => Integrity::Approved(approval),
    }
}

/// What a loaded connector declares, with the digest of the very bytes that were compiled.
fn current(connector: &Connector) -> Result<Approval, Failure> {
    Ok(declarations(
        connector.info(),
        connector.path(),
        connector.sha256(),
        0,
    ))
}

/// Refuses (exit code 2) a connector whose file is not the one approved under its name, or whose
/// approval lists other hosts or secrets than it declares; warns about one never approved.
pub(super) fn check_integrity(connector: &Connector, state: &StateStore) -> Result<(), Failure> {
    let current = current(connector)?;
    let name = &current.connector;
    let path = connector.path().display();
    let approval = state.approval(name).map_err(Failure::run)?;
    match integrity(approval, &current) {
        Integrity::Approved(_) => {
            tracing::debug!(connector = %name, sha256 = %current.sha256, "connector file approved");
            Ok(())
        }
        Integrity::Unrecorded => {
            tracing::warn!(
                "connector `{name}` ({path}) was not installed with `trawl plugin install`, so \
                 trawl cannot tell whether it changed; `trawl plugin approve {name}` records this \
                 file as approved"
            );
            Ok(())
        }
        Integrity::FileChanged(approval) => Err(Failure::input(format!(
            "{path} is not the `{name}` connector that was approved: its sha256 is {}, the \
             approved file's is {} (version {}, approved {}).\nRun `trawl plugin approve \
             {name}` to review what it now asks for and accept it; until then it does not run.",
            short(&current.sha256),
            short(&approval.sha256),
            approval.version,
            when(approval.approved_at_ms)
        ))),
        Integrity::DeclarationsChanged(approval, lines) => Err(Failure::input(format!(
            "the approval of `{name}` on record does not match what {path} declares, although \
             the file is the approved one (sha256 {}): {}. Run `trawl plugin approve {name}` to \
             review it and approve it again.",
            short(&approval.sha256),
            lines.join("; ")
        ))),
    }
}

/// The digest of a connector file and whether it is approved, for `trawl inspect`. Does not
/// create a state store that is not there yet.
pub(super) fn integrity_report(cli: &Cli, connector: &Connector) -> String {
    let mut out = String::from("\nIntegrity:\n");
    let current = match current(connector) {
        Ok(current) => current,
        Err(failure) => {
            let _ = writeln!(out, "  {}", failure.message);
            return out;
        }
    };
    let name = &current.connector;
    let _ = writeln!(out, "  sha256    {}", current.sha256);
    let approval = match state_dir(cli) {
        Some(dir) if StateStore::exists_in(&dir) => {
            match StateStore::open(&dir).and_then(|state| state.approval(name)) {
                Ok(approval) => approval,
                Err(error) => {
                    let _ = writeln!(out, "  approved  unknown: {error}");
                    return out;
                }
            }
        }
        _ => None,
    };
    let status = match integrity(approval, &current) {
        Integrity::Unrecorded => format!(
            "no: not installed with `trawl plugin install` (`trawl run` loads it with a warning; \
             `trawl plugin approve {name}` records it)"
        ),
        Integrity::Approved(approval) => format!(
            "yes, version {} on {} (as {})",
            approval.version,
            when(approval.approved_at_ms),
            approval.path.display()
        ),
        Integrity::FileChanged(approval) => format!(
            "no: the file changed since version {} was approved on {} (sha256 {}); `trawl run` \
             refuses it until `trawl plugin approve {name}`",
            approval.version,
            when(approval.approved_at_ms),
            short(&approval.sha256)
        ),
        Integrity::DeclarationsChanged(_, lines) => format!(
            "no: the approval on record does not match what it declares ({}); `trawl run` \
             refuses it until `trawl plugin approve {name}`",
            lines.join("; ")
        ),
    };
    let _ = writeln!(out, "  approved  {status}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, env: Option<&str>, hosts: &[&str]) -> ApprovedSecret {
        ApprovedSecret {
            name: name.into(),
            env: env.map(String::from),
            hosts: hosts.iter().map(|host| host.to_string()).collect(),
        }
    }

    fn approval(
        version: &str,
        hosts: &[&str],
        secrets: Vec<ApprovedSecret>,
        params: &[&str],
    ) -> Approval {
        Approval {
            connector: "acme".into(),
            path: PathBuf::from("/plugins/acme.wasm"),
            sha256: format!("{version}-digest"),
            version: version.into(),
            hosts: hosts.iter().map(|host| host.to_string()).collect(),
            secrets,
            params: params.iter().map(|param| param.to_string()).collect(),
            approved_at_ms: 0,
        }
    }

    const API: &str = "https://api.acme.test";
    const AUTH: &str = "https://auth.acme.test";

    #[test]
    fn install_shows_nothing_when_nothing_declared_changed() {
        let old = approval(
            "1.0.0",
            &[API],
            vec![secret("token", Some("T"), &[API])],
            &["token"],
        );
        let mut new = old.clone();
        new.sha256 = "other".into();
        assert!(changes(&old, &new).is_empty());
    }

    #[test]
    fn install_shows_version_hosts_secrets_and_params_that_changed() {
        let old = approval(
            "1.0.0",
            &[API],
            vec![
                secret("token", Some("ACME_TOKEN"), &[API]),
                secret("password", None, &[API]),
            ],
            &["base_url", "password", "region", "token"],
        );
        let new = approval(
            "1.1.0",
            &[API, AUTH],
            vec![
                secret("client_secret", Some("ACME_SECRET"), &[AUTH]),
                secret("token", Some("ACME_TOKEN"), &[API, AUTH]),
            ],
            &["base_url", "client_secret", "page_size", "token"],
        );
        assert_eq!(
            changes(&old, &new),
            vec![
                "version 1.0.0 -> 1.1.0".to_string(),
                format!("+ host {AUTH}"),
                format!("+ secret client_secret (env ACME_SECRET), may be sent to {AUTH}"),
                format!("~ secret token may now be sent to {API}, {AUTH} (was {API})"),
                "- secret password".to_string(),
                "+ param page_size".to_string(),
                "- param region".to_string(),
            ]
        );
        // And the other way round.
        assert_eq!(
            changes(&new, &old),
            vec![
                "version 1.1.0 -> 1.0.0".to_string(),
                format!("- host {AUTH}"),
                format!("~ secret token may now be sent to {API} (was {API}, {AUTH})"),
                format!("+ secret password, may be sent to {API}"),
                "- secret client_secret".to_string(),
                "+ param region".to_string(),
                "- param page_size".to_string(),
            ]
        );
    }

    #[test]
    fn install_reports_a_param_that_became_a_secret_once_and_a_new_env_name() {
        let old = approval(
            "1.0.0",
            &[API],
            vec![secret("key", Some("OLD"), &[API])],
            &["key", "token"],
        );
        let new = approval(
            "1.0.0",
            &[API],
            vec![
                secret("key", Some("NEW"), &[API]),
                secret("token", None, &[API]),
            ],
            &["key", "token"],
        );
        assert_eq!(
            changes(&old, &new),
            vec![
                "~ secret key is now read from env NEW (was OLD)".to_string(),
                format!("+ secret token, may be sent to {API}"),
            ]
        );
    }

    #[test]
    fn install_integrity_verdicts() {
        let approved = approval(
            "1.0.0",
            &[API],
            vec![secret("token", None, &[API])],
            &["token"],
        );
        assert_eq!(integrity(None, &approved), Integrity::Unrecorded);
        assert_eq!(
            integrity(Some(approved.clone()), &approved),
            Integrity::Approved(approved.clone())
        );
        let mut rebuilt = approved.clone();
        rebuilt.sha256 = "changed".into();
        assert_eq!(
            integrity(Some(approved.clone()), &rebuilt),
            Integrity::FileChanged(approved.clone())
        );
        // Same file, but the record was edited to allow another host.
        let mut edited = approved.clone();
        edited.hosts.push(AUTH.into());
        assert_eq!(
            integrity(Some(edited.clone()), &approved),
            Integrity::DeclarationsChanged(edited, vec![format!("- host {AUTH}")])
        );
        // The version alone is not a reason to refuse a file whose digest is approved.
        let mut relabelled = approved.clone();
        relabelled.version = "9.9.9".into();
        assert!(matches!(
            integrity(Some(relabelled), &approved),
            Integrity::Approved(_)
        ));
    }

    #[test]
    fn install_digests_are_shortened_for_messages() {
        let digest = sha256_hex(b"");
        assert_eq!(digest.len(), 64);
        assert_eq!(short(&digest), "e3b0c44298fc");
        assert_eq!(per(60_000), "minute");
        assert_eq!(per(5_000), "5 s");
    }
}
