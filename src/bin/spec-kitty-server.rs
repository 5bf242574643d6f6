//! `spec-kitty-server`: run the team sync server and administer its accounts.
//!
//! Parses arguments, calls `spec_kitty::server`, renders results (text or `--json`) and errors
//! (miette, with a help line naming the fix). Exit codes: 0 success, 1 failure, 2 usage error.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use miette::miette;

use spec_kitty::server::admin::{self, AdminError, DB_ENV};
use spec_kitty::server::database::{self, DbStatus};
use spec_kitty::server::store::{DATABASE_URL_ENV, Database};
use spec_kitty::server::{Server, ServerConfig, ServerError};

/// The longest token lifetime the flags accept: ten years, in seconds.
const MAX_LIFETIME: u64 = 10 * 365 * 24 * 3600;

/// The spec-kitty team sync server.
#[derive(Parser)]
#[command(name = "spec-kitty-server", version)]
struct Cli {
    /// The SQLite database [default: <data dir>/spec-kitty/server.db].
    #[arg(long, global = true, env = DB_ENV, value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server until SIGINT or SIGTERM.
    ///
    /// Besides the sync API it serves the team dashboard: open the server's URL in a browser
    /// and log in with a user's password (pages under /a/<team>/dashboards/; docs/how-to/use-dashboard.md).
    ///
    /// Connections are timed out and capped (--header-timeout, --idle-timeout,
    /// --max-connections, --max-connections-per-address); see docs/how-to/self-host-server.md.
    #[command(after_help = "Examples:\n  \
        spec-kitty-server serve --bind 127.0.0.1:8750\n  \
        spec-kitty-server serve --bind 0.0.0.0:443 --tls-cert cert.pem --tls-key key.pem\n  \
        DATABASE_URL=postgres://kitty@db.internal/spec_kitty spec-kitty-server serve")]
    Serve(ServeArgs),
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect teams.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Check or migrate the database (the SQLite file of --db, or PostgreSQL with --database).
    #[command(subcommand)]
    Db(DbCommand),
}

/// Which database an administration command works on, besides the global --db.
#[derive(clap::Args)]
struct DatabaseArg {
    /// A PostgreSQL database, postgres://USER:PASSWORD@HOST:PORT/DBNAME [default: the SQLite
    /// file of --db]. Prefer the environment variable: a password in argv is visible to every
    /// user of the machine in the process list.
    #[arg(long, env = DATABASE_URL_ENV, hide_env_values = true, value_name = "URL")]
    database: Option<String>,
}

impl DatabaseArg {
    fn choose(self, sqlite: PathBuf) -> miette::Result<Database> {
        Database::choose(self.database, sqlite).map_err(miette::Report::new)
    }
}

/// The arguments of `db check` and `db migrate`.
#[derive(clap::Args)]
struct DbArgs {
    #[command(flatten)]
    target: DatabaseArg,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Report whether the database is reachable and at this server's schema version; changes
    /// nothing. Exits 1 when it is unreachable, behind (run `db migrate`) or newer than this
    /// server.
    #[command(after_help = "Examples:\n  \
        spec-kitty-server db check --db /var/lib/spec-kitty/server.db\n  \
        DATABASE_URL=postgres://kitty@db.internal/spec_kitty spec-kitty-server db check --json")]
    Check(DbArgs),
    /// Apply the schema migrations the database lacks, then exit (a server also does this when
    /// it starts). On PostgreSQL under an advisory lock: any number of these and of starting
    /// replicas apply each migration exactly once.
    #[command(after_help = "Examples:\n  \
        DATABASE_URL=postgres://kitty@db.internal/spec_kitty spec-kitty-server db migrate")]
    Migrate(DbArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, default_value = "127.0.0.1:8750")]
    bind: SocketAddr,
    /// PEM certificate chain: serve HTTPS (requires --tls-key).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Seconds an access token is valid (0 to 10 years; 0 issues already-expired tokens,
    /// for tests).
    #[arg(long, default_value_t = 900, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(0..=MAX_LIFETIME))]
    access_lifetime: u64,
    /// Seconds a refresh token is valid (0 to 10 years; 0 as for --access-lifetime).
    #[arg(long, default_value_t = 604_800, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(0..=MAX_LIFETIME))]
    refresh_lifetime: u64,
    /// Milliseconds between WebSocket pings (10 to 3600000); two unanswered pings close the
    /// connection.
    #[arg(long, default_value_t = 15_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    ws_ping_interval_ms: u64,
    /// Largest batch once decompressed, in bytes (also the raw body limit; 1 KiB to 256 MiB).
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(1024..=(256 << 20)))]
    max_batch_bytes: u64,
    /// Failed logins per (username, client address) within 5 minutes before 429 (1 to
    /// 10000). Past as many failures for one username from anywhere, each further attempt
    /// waits 1 s, 2 s, 4 s ... up to 60 s; one address may fail ten times as often over all
    /// usernames. An address where the user logged in before keeps its own budget.
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    login_max_failures: u64,
    /// Seconds a connection gets to finish its TLS handshake and then to send each request
    /// head (1 to 3600); slow or silent connections are closed after it.
    #[arg(long, default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
    /// Seconds a keep-alive connection may wait for its next request (1 to 3600).
    #[arg(long, default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout: u64,
    /// Open connections in total, WebSockets included [default: 4096, or the open-files
    /// limit minus 64 when lower]. At the cap the oldest idle connection is closed to make
    /// room; when none is idle the new one is refused.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: Option<u64>,
    /// Open connections per client address (1 to 1000000), shed the same way.
    #[arg(long, default_value_t = 256, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections_per_address: u64,
    #[command(flatten)]
    target: DatabaseArg,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (and its team when new). Prompts for the password on the terminal.
    ///
    /// The name is stored normalised (NFC, lowercase; `Alice` and `alice` are one account).
    /// Names with invisible or bidirectional control characters, or mixing look-alike scripts
    /// (Latin with Cyrillic, Greek, ...), are refused.
    #[command(after_help = "Examples:\n  \
        spec-kitty-server user add alice --team acme\n  \
        printf %s \"$PW\" | spec-kitty-server user add alice --team acme --password-stdin")]
    Add {
        username: String,
        /// Team slug: lowercase letters, digits and dashes.
        #[arg(long)]
        team: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        target: DatabaseArg,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: DatabaseArg,
    },
    /// Disable a user: no more logins or refreshes; its sessions are revoked, and a running
    /// server closes its open WebSockets within a second.
    Disable {
        username: String,
        #[command(flatten)]
        target: DatabaseArg,
    },
}

#[derive(Subcommand)]
enum TeamCommand {
    /// List teams with their user and event counts.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: DatabaseArg,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> miette::Result<()> {
    let db = match cli.db {
        Some(db) => db,
        None => admin::default_db_path().map_err(render_admin)?,
    };
    match cli.command {
        Command::Serve(args) => serve(db, args),
        Command::User(UserCommand::Add {
            username,
            team,
            password_stdin,
            target,
        }) => {
            let db = target.choose(db)?;
            let password = read_password(password_stdin)?;
            let stored = admin::add_user(&db, &username, &team, &password).map_err(render_admin)?;
            spec_kitty::outln!("added user {stored} to team {team}");
            Ok(())
        }
        Command::User(UserCommand::List { json, target }) => {
            let db = target.choose(db)?;
            let users = admin::list_users(&db).map_err(render_admin)?;
            if json {
                print_json(&users)
            } else {
                for u in &users {
                    let state = if u.disabled { "disabled" } else { "active" };
                    spec_kitty::outln!("{}\t{}\t{state}", u.username, u.team_slug);
                }
                Ok(())
            }
        }
        Command::User(UserCommand::Disable { username, target }) => {
            let db = target.choose(db)?;
            admin::disable_user(&db, &username).map_err(render_admin)?;
            spec_kitty::outln!("disabled user {username}; its sessions are revoked");
            Ok(())
        }
        Command::Db(DbCommand::Check(args)) => {
            let target = args.target.choose(db)?;
            let status = database::check(&target).map_err(render_admin)?;
            if args.json {
                print_json(&status)?;
            } else {
                print_status(&status);
            }
            schema_current(&status)
        }
        Command::Db(DbCommand::Migrate(args)) => {
            let target = args.target.choose(db)?;
            let migrated = database::migrate(&target).map_err(render_admin)?;
            if args.json {
                return print_json(&migrated);
            }
            match migrated.applied.as_slice() {
                [] => spec_kitty::outln!("{}: already current", migrated.status.shown()),
                [one] => spec_kitty::outln!("{}: applied migration {one}", migrated.status.shown()),
                [first, .., last] => spec_kitty::outln!(
                    "{}: applied migrations {first} to {last}",
                    migrated.status.shown()
                ),
            }
            print_status(&migrated.status);
            Ok(())
        }
        Command::Team(TeamCommand::List { json, target }) => {
            let db = target.choose(db)?;
            let teams = admin::list_teams(&db).map_err(render_admin)?;
            if json {
                print_json(&teams)
            } else {
                for t in &teams {
                    spec_kitty::outln!(
                        "{}\t{} {}\t{} events",
                        t.slug,
                        t.users,
                        if t.users == 1 { "user" } else { "users" },
                        t.events
                    );
                }
                Ok(())
            }
        }
    }
}

fn print_status(status: &DbStatus) {
    let (found, supported) = status.versions();
    let backend = match status {
        DbStatus::Sqlite { .. } => "SQLite".to_owned(),
        DbStatus::Postgres(pg) => format!("PostgreSQL {}", pg.server_version),
    };
    spec_kitty::outln!("database {}", status.shown());
    spec_kitty::outln!("backend  {backend}");
    spec_kitty::outln!("schema   version {found} (this server writes {supported})");
    for m in status.migrations() {
        let when = chrono::DateTime::from_timestamp(m.applied_at, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        spec_kitty::outln!(
            "  migration {} applied {when} by {}",
            m.version,
            m.applied_by
        );
    }
}

/// `db check`'s verdict: the schema must be the one this server writes.
fn schema_current(status: &DbStatus) -> miette::Result<()> {
    let (found, supported) = status.versions();
    if found < supported {
        return Err(miette!(
            code = "spec_kitty_server::db::behind",
            help = "run `spec-kitty-server db migrate` (with the same --db or --database), or start the server, which migrates",
            "the database {} has schema version {found}; this server needs {supported}",
            status.shown()
        ));
    }
    if found > supported {
        return Err(miette!(
            code = "spec_kitty_server::db::too_new",
            help =
                "upgrade spec-kitty-server to the release that wrote this database, or a newer one",
            "the database {} has schema version {found}, newer than this server's {supported}",
            status.shown()
        ));
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(value: &T) -> miette::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| miette!("{e}"))?;
    spec_kitty::outln!("{text}");
    Ok(())
}

fn serve(db: PathBuf, mut args: ServeArgs) -> miette::Result<()> {
    init_logging();
    let target = DatabaseArg {
        database: args.target.database.take(),
    };
    let database = target.choose(db)?;
    let mut config = ServerConfig::new(database);
    config.bind = args.bind;
    config.tls = args.tls_cert.zip(args.tls_key);
    // The ranges are enforced by the flags' parsers, so these conversions cannot truncate.
    config.access_lifetime = args.access_lifetime;
    config.refresh_lifetime = args.refresh_lifetime;
    config.ws_ping_interval = Duration::from_millis(args.ws_ping_interval_ms);
    config.test_ingest_delay = std::env::var(spec_kitty::server::TEST_INGEST_DELAY_ENV)
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms.min(60_000)));
    config.max_decompressed_bytes = args.max_batch_bytes as usize;
    config.max_body_bytes = args.max_batch_bytes as usize;
    config.login_max_failures = args.login_max_failures as usize;
    config.connections.header_timeout = Duration::from_secs(args.header_timeout);
    config.connections.idle_timeout = Duration::from_secs(args.idle_timeout);
    if let Some(n) = args.max_connections {
        config.connections.max_connections = n as usize;
    }
    config.connections.max_per_address = args.max_connections_per_address as usize;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| miette!("cannot start tokio: {e}"))?;
    runtime.block_on(async move {
        let server = Server::bind(config).await.map_err(render_server)?;
        // Tests and scripts wait for these two lines.
        spec_kitty::outln!("database {}", server.database());
        spec_kitty::outln!("listening on {}", server.url());
        if server.url().starts_with("http:") && !server.local_addr().ip().is_loopback() {
            tracing::warn!(
                "serving plain HTTP on a non-loopback address; use --tls-cert/--tls-key"
            );
        }
        server.run(shutdown_signal()).await.map_err(render_server)
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Logs to stderr; `SPEC_KITTY_SERVER_LOG` takes an env-filter directive (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPEC_KITTY_SERVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The password from stdin's first line, or from a prompt on the terminal with echo off.
fn read_password(from_stdin: bool) -> miette::Result<String> {
    let stdin = std::io::stdin();
    if !from_stdin && !stdin.is_terminal() {
        return Err(miette!(
            help = "pipe the password with --password-stdin, e.g. `printf %s \"$PW\" | spec-kitty-server user add NAME --team T --password-stdin`",
            "no terminal to prompt for the password on"
        ));
    }
    if !from_stdin {
        eprint!("password: ");
        let _ = std::io::stderr().flush();
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if !from_stdin {
        set_echo(true);
        eprintln!();
    }
    read.map_err(|e| miette!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Turns terminal echo off or on with `stty`, so that no terminal library is needed.
fn set_echo(on: bool) {
    let tty = Path::new("/dev/tty");
    if let Ok(tty) = std::fs::File::open(tty) {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(tty)
            .status();
    }
}

/// Each error carries its own help line (its `Diagnostic`); the binary only renders it.
fn render_admin(e: AdminError) -> miette::Report {
    miette::Report::new(e)
}

fn render_server(e: ServerError) -> miette::Report {
    miette::Report::new(e)
}
