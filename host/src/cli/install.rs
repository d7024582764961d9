//! `trawl plugin install` and `trawl plugin approve`, and the integrity check `trawl run` makes
//! before it runs a connector.
//!
//! Installing a connector shows what it asks for (the hosts it wants to reach, the secrets it
//! wants and where each may go, its quotas) and what changed since the version approved before,
//! asks for confirmation, copies the file into the plugin folder and records its sha256 in the
//! state store. `trawl run` then refuses a connector whose file no longer has the approved digest,
//! until `trawl plugin approve` accepts the new file after the same review.
//!
//! Identity is the approved file: `trawl run` reads the file once, looks its sha256 up among the
//! approvals before anything of it runs, and then runs it only if it describes itself exactly as
//! it did when it was approved. Checkpoints and connector storage (cached tokens) are kept under
//! the approved name, so a file that merely calls itself `verkada` gets nothing of Verkada's. A
//! file nobody approved does not run, unless the user asks for it with `--allow-unapproved` (a
//! connector being written): then it runs under a name of its own, `<name>~unapproved`, that no
//! approved connector can have.

use super::Cli;
use super::commands::{Failure, cache_dir, plugin_dirs, xdg_dir};
use super::review::{changes, declarations_of, overview, review_changes, short, when};
use crate::runtime::{Connector, ConnectorFile, GuestLimits, PluginDirs, Runtime};
use crate::state::StateStore;
use crate::state::approvals::{Approval, Declarations};
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

/// The state store, if there is one already: commands that only read approvals must not make
/// one.
pub(super) fn existing_state(cli: &Cli) -> Option<StateStore> {
    let dir = state_dir(cli)?;
    if !StateStore::exists_in(&dir) {
        return None;
    }
    StateStore::open(&dir)
        .inspect_err(|error| tracing::warn!("cannot read approvals: {error}"))
        .ok()
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

/// Reads a connector file, refusing what is not a regular file of a sensible size.
fn read(path: &Path) -> Result<ConnectorFile, Failure> {
    ConnectorFile::read(path).map_err(Failure::input)
}

/// Compiles a file read before and asks it to describe itself, in a sandbox with no capability
/// at all (every request is denied, storage is unavailable): the review of a file that is not
/// approved yet is the one time anything of it runs before its digest is on record.
async fn describe_for_review(
    runtime: &Runtime,
    file: &ConnectorFile,
    refused: &str,
) -> Result<Declarations, Failure> {
    load_usable(runtime, file)
        .await
        .map(|(_, declared)| declared)
        .map_err(|error| Failure::input(format!("{refused}: {error}")))
}

/// Compiles a file read before, has it describe itself, and refuses it if its defaults would
/// choose a place outside the working folder; returns it with what it declares.
async fn load_usable(
    runtime: &Runtime,
    file: &ConnectorFile,
) -> Result<(Connector, Declarations), String> {
    let connector = runtime
        .load_file(file)
        .await
        .map_err(|error| error.to_string())?;
    crate::config::check_connector_defaults(connector.info())
        .map_err(|error| format!("{} cannot be used: {error}", file.path().display()))?;
    let declared = declarations_of(connector.info());
    Ok((connector, declared))
}

async fn install(cli: &Cli, source: &Path, to: Option<&Path>, yes: bool) -> Result<(), Failure> {
    let runtime = Runtime::new(cache_dir(cli), GuestLimits::default()).map_err(Failure::run)?;
    // Read once: what is reviewed, recorded and copied are the same bytes.
    let file = read(source)?;
    // Loading first: a file that is not a connector is refused before anything is copied.
    let next = describe_for_review(&runtime, &file, "not installed").await?;
    let digest = file.sha256();
    let dir = install_dir(cli, to)?;
    let target_name = format!("{}.wasm", next.name);
    let target = std::path::absolute(dir.join(&target_name)).unwrap_or(dir.join(&target_name));
    let state = open_state(cli)?;
    let previous = state.approval(&next.name).map_err(Failure::run)?;

    let target_digest = ConnectorFile::read(&target)
        .ok()
        .map(|existing| existing.sha256().to_string());
    if let Some(previous) = &previous
        && previous.sha256 == digest
        && previous.path == target
        && target_digest.as_deref() == Some(digest)
        && previous.declared == next
    {
        println!(
            "{} {} is already installed as {} and approved; nothing to do.",
            next.name,
            next.version,
            target.display()
        );
        return Ok(());
    }

    let mut out = overview(&next, source, digest);
    match &previous {
        Some(previous) => out.push_str(&review_changes(previous, &next, digest)),
        None => {
            let _ = writeln!(
                out,
                "\nNo connector named `{}` was approved before.",
                next.name
            );
        }
    }
    match &target_digest {
        None => {
            let _ = writeln!(out, "\nInstalls to {}.", target.display());
        }
        Some(existing) => {
            let _ = writeln!(
                out,
                "\nInstalls to {}, replacing the file there{}.",
                target.display(),
                match (&previous, existing == digest) {
                    (_, true) => " (it is the same file)",
                    (Some(previous), false) if &previous.sha256 == existing =>
                        " (the file approved before)",
                    _ => ", which was never approved",
                }
            );
        }
    }
    print!("{out}");
    confirm(
        &format!("Install {} {}?", next.name, next.version),
        yes,
        "not installed",
        "install it",
    )?;

    ensure_dir(&dir)
        .and_then(|()| write_atomically(&target, file.bytes()))
        .map_err(|error| Failure::run(format!("cannot install {}: {error}", target.display())))?;
    let approval = Approval {
        path: target.clone(),
        sha256: digest.to_string(),
        declared: next,
        approved_at_ms: now_ms(),
    };
    state.record_approval(&approval).map_err(Failure::run)?;
    println!(
        "Installed {} {} as {} (sha256 {}).",
        approval.connector(),
        approval.declared.version,
        target.display(),
        short(digest)
    );
    warn_if_hidden(cli, approval.connector(), &target);
    Ok(())
}

/// Says so when `trawl run <name>` would load another file than the one just installed.
fn warn_if_hidden(cli: &Cli, name: &str, target: &Path) {
    let canonical = |path: &Path| std::fs::canonicalize(path).unwrap_or(path.to_path_buf());
    match plugin_dirs(cli, &[]).find(name) {
        Some(found) if canonical(&found) == canonical(target) => {}
        Some(found) => println!(
            "Note: `trawl run {name}` loads {} instead, which comes first in the plugin folders' \
             search order (and runs only if it is approved).",
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
    let file = read(&path)?;
    let next = describe_for_review(&runtime, &file, "not approved").await?;
    let digest = file.sha256();
    if is_a_name(name_or_path) && name_or_path != next.name {
        return Err(Failure::input(format!(
            "not approved: {} calls itself `{}`, not `{name_or_path}`; approve it by its path, \
             and run it as `trawl run {}`",
            path.display(),
            next.name,
            next.name
        )));
    }
    let state = open_state(cli)?;
    let previous = state.approval(&next.name).map_err(Failure::run)?;
    if let Some(previous) = &previous
        && previous.sha256 == digest
        && previous.declared == next
    {
        println!(
            "{} {} ({}) is already approved; nothing to do.",
            next.name,
            next.version,
            path.display()
        );
        return Ok(());
    }
    let mut out = overview(&next, &path, digest);
    match &previous {
        Some(previous) => out.push_str(&review_changes(previous, &next, digest)),
        None => {
            let _ = writeln!(
                out,
                "\nNo connector named `{}` was approved before: approving records this file as \
                 it is.",
                next.name
            );
        }
    }
    print!("{out}");
    confirm(
        &format!("Approve {} {}?", next.name, next.version),
        yes,
        "not approved",
        "approve it",
    )?;
    let approval = Approval {
        path: path.clone(),
        sha256: digest.to_string(),
        declared: next,
        approved_at_ms: now_ms(),
    };
    state.record_approval(&approval).map_err(Failure::run)?;
    println!(
        "Approved {} {} ({}, sha256 {}).",
        approval.connector(),
        approval.declared.version,
        path.display(),
        short(digest)
    );
    Ok(())
}

/// Whether the user named a connector (looked up in the plugin folders) rather than a file.
fn is_a_name(name_or_path: &str) -> bool {
    !name_or_path.ends_with(".wasm") && Path::new(name_or_path).components().count() == 1
}

/// A connector let in to run, and the name its checkpoints and storage are kept under.
pub(super) struct Admitted {
    pub connector: Connector,
    /// The approved name, or `<name>~unapproved` for a file run with `--allow-unapproved`.
    pub identity: String,
}

/// Finds, reads and checks a connector for `trawl run`: its digest must be an approved file's
/// (of the name asked for, when a name was given) before anything of it runs, and once loaded it
/// must describe itself exactly as approved. Anything else is refused (exit code 2) with the
/// command that reviews and approves it, unless `allow_unapproved` is set.
pub(super) async fn admit(
    runtime: &Runtime,
    dirs: &PluginDirs,
    name_or_path: &str,
    state: &StateStore,
    allow_unapproved: bool,
) -> Result<Admitted, Failure> {
    let path = super::commands::find(dirs, name_or_path)?;
    let file = read(&path)?;
    let digest = file.sha256();
    let shown = path.display();
    let asked_name = is_a_name(name_or_path).then_some(name_or_path);
    let name = asked_name.map(String::from).unwrap_or_else(|| {
        path.file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    match state.approval_of_file(digest).map_err(Failure::run)? {
        Some(approval) => {
            let approved = approval.connector();
            if asked_name.is_some_and(|asked| asked != approved) {
                return Err(Failure::input(format!(
                    "{shown} is the file approved as `{approved}`, not `{name}`; run it as \
                     `trawl run {approved}`"
                )));
            }
            let (connector, current) = load_usable(runtime, &file).await.map_err(Failure::input)?;
            if current != approval.declared {
                return Err(Failure::input(format!(
                    "{shown} is the `{approved}` file that was approved (sha256 {}), but it now \
                     describes itself differently: {}. It does not run; `trawl plugin approve \
                     {approved}` shows what it asks for now.",
                    short(digest),
                    changes(&approval.declared, &current).join("; ")
                )));
            }
            tracing::debug!(connector = %approved, sha256 = %digest, "connector file approved");
            Ok(Admitted {
                identity: approved.to_string(),
                connector,
            })
        }
        None if allow_unapproved => {
            let (connector, declared) =
                load_usable(runtime, &file).await.map_err(Failure::input)?;
            let variables: Vec<String> = declared.environment().into_keys().collect();
            eprintln!(
                "WARNING: running {shown} (sha256 {}), which you have not approved \
                 (--allow-unapproved). It may send requests to {}, and reads the environment \
                 variables {}. Its checkpoints and storage are kept apart, as `{}~unapproved`.",
                short(digest),
                declared
                    .hosts
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if variables.is_empty() {
                    "none".to_string()
                } else {
                    variables.join(", ")
                },
                declared.name
            );
            Ok(Admitted {
                identity: format!("{}~unapproved", declared.name),
                connector,
            })
        }
        None => {
            let how = format!(
                "Nothing of it runs until you review what it asks for: `trawl plugin install {}` \
                 copies it into the plugin folder and approves it, `trawl plugin approve {}` \
                 approves it where it is. (To run a build of your own without approving it, pass \
                 --allow-unapproved.)",
                path.display(),
                name_or_path
            );
            let reason = match state.approval(&name).map_err(Failure::run)? {
                Some(approval) => format!(
                    "{shown} is not the `{name}` connector that was approved: its sha256 is {}, \
                     the approved file's is {} (version {}, approved {}).\nRun `trawl plugin \
                     approve {name}` to review what it now asks for and accept it; until then it \
                     does not run.",
                    short(digest),
                    short(&approval.sha256),
                    approval.declared.version,
                    when(approval.approved_at_ms)
                ),
                None if state.has_earlier_approval(&name).map_err(Failure::run)? => format!(
                    "{shown} was approved by an earlier trawl, whose approvals did not record \
                     everything a connector declares (the environment variables it reads, the \
                     files it writes).\nRun `trawl plugin approve {name}` to review it and \
                     approve it again; until then it does not run."
                ),
                None => format!("{shown} is not an approved connector.\n{how}"),
            };
            Err(Failure::input(reason))
        }
    }
}

/// What `trawl inspect` shows of a connector file: its description, only if the file is an
/// approved one (nothing of any other file runs, this command included), then its digest and
/// where it stands. Does not create a state store that is not there yet.
pub(super) async fn inspect(
    cli: &Cli,
    runtime: &Runtime,
    path: &Path,
    describe: impl Fn(&Connector) -> String,
) -> Result<String, Failure> {
    let file = read(path)?;
    let digest = file.sha256();
    let name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let state = existing_state(cli);
    let lookup = |state: &StateStore| -> Result<_, crate::state::StateError> {
        Ok((state.approval_of_file(digest)?, state.approval(&name)?))
    };
    let (by_file, by_name) = match state.as_ref().map(lookup).transpose() {
        Ok(found) => found.unwrap_or((None, None)),
        Err(error) => return Err(Failure::run(error)),
    };
    let mut out = String::new();
    let status = match (by_file, by_name) {
        (Some(approval), _) => {
            let connector = runtime.load_file(&file).await.map_err(Failure::input)?;
            out.push_str(&describe(&connector));
            if approval.declared == declarations_of(connector.info()) {
                format!(
                    "yes, version {} on {} (as {})",
                    approval.declared.version,
                    when(approval.approved_at_ms),
                    approval.path.display()
                )
            } else {
                format!(
                    "no: it is the file approved as `{}`, but it now describes itself \
                     differently; `trawl run` refuses it until `trawl plugin approve {}`",
                    approval.connector(),
                    approval.connector()
                )
            }
        }
        (None, by_name) => {
            let _ = writeln!(
                out,
                "{}\n  is not an approved connector: nothing of it runs until it is approved, \
                 `trawl inspect` included. `trawl plugin install {}` or `trawl plugin approve \
                 {}` shows everything it asks for and asks you to approve it.",
                path.display(),
                path.display(),
                name
            );
            match by_name {
                Some(approval) => format!(
                    "no: the file changed since version {} was approved on {} (sha256 {}); \
                     `trawl run` refuses it until `trawl plugin approve {name}`",
                    approval.declared.version,
                    when(approval.approved_at_ms),
                    short(&approval.sha256)
                ),
                None => "no: `trawl run` refuses it until it is approved".to_string(),
            }
        }
    };
    let _ = writeln!(
        out,
        "\nIntegrity:\n  sha256    {digest}\n  approved  {status}"
    );
    Ok(out)
}
