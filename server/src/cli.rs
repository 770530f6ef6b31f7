//! The `passhook` command line (CONTRACT §1).

use std::io::Read;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use domain::api_keys::{self, Scope};
use domain::db::Db;
use domain::users::{self, Role};
use domain::{tenants, Core};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{master_key, Config};
use crate::state::AppState;

#[derive(Parser, Debug)]
#[command(
    name = "passhook",
    version,
    about = "Keeps Apple and Google Wallet passes in step with Actito and SFMC."
)]
pub struct Cli {
    /// sqlite://<file> (created when missing) or postgres://…
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://passhook.db",
        global = true
    )]
    pub database_url: String,
    /// Address to listen on.
    #[arg(
        long,
        env = "PASSHOOK_ADDR",
        default_value = "127.0.0.1:3000",
        global = true
    )]
    pub addr: SocketAddr,
    /// Externally visible base URL, used in generated links. Default: http://<addr>.
    #[arg(long, env = "PASSHOOK_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run migrations, then serve the listeners, the console and the workers (default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage console accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Create (idempotently) a demo tenant with passes, logins and a key, and print them.
    Demo,
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant; ids match ^[a-z0-9][a-z0-9-]{1,62}$.
    Create {
        tenant_id: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a console account (or update its password and role in the tenant).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["admin", "marketer"])]
        role: String,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create a key; prints the key, and nothing else, on standard output.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
    },
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text).ok_or_else(|| {
        let all: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown scope {text:?}; one of {}", all.join(", "))
    })
}

/// Parses the command line and runs it; errors are one line on stderr.
pub async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let rendered = err.render().to_string();
            eprintln!(
                "passhook: {}",
                rendered
                    .lines()
                    .next()
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    init_tracing();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = format!("{err:#}").replace('\n', " ");
            eprintln!("passhook: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PASSHOOK_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into());
    // Colours only on a terminal: journald and container logs get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn open(url: &str) -> anyhow::Result<Db> {
    let db = Db::connect(url).await?;
    db.migrate()
        .await
        .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
    Ok(db)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // A malformed operator allow-list stops the command rather than opening less (or
    // more) than the operator meant.
    domain::outbound::PrivateHosts::from_env().map_err(anyhow::Error::msg)?;
    let config = Config::new(cli.database_url.clone(), cli.addr, cli.public_url.clone());
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            open(&config.database_url).await?.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Tenant(TenantCommand::Create { tenant_id, name }) => {
            let db = open(&config.database_url).await?;
            let name = name.unwrap_or_else(|| tenant_id.clone());
            let tenant = tenants::create(&db, &tenant_id, &name).await?;
            println!("created tenant {} ({})", tenant.id, tenant.name);
            Ok(())
        }
        Command::User(UserCommand::Create {
            tenant,
            email,
            role,
            ..
        }) => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let role = Role::parse(&role).expect("clap checked the role");
            let db = open(&config.database_url).await?;
            let user = users::upsert(&db, &tenant, &email, role, password).await?;
            println!("{} is {} of {tenant}", user.email, role.as_str());
            Ok(())
        }
        Command::ApiKey(ApiKeyCommand::Create {
            tenant,
            name,
            scopes,
        }) => {
            let db = open(&config.database_url).await?;
            let (_, key) = api_keys::create(&db, &tenant, &name, &scopes, Some("cli")).await?;
            println!("{key}");
            Ok(())
        }
        Command::Demo => demo(config).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let key = master_key(&config.database_url)?;
    let db = open(&config.database_url).await?;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.addr))?;
    tracing::info!(addr = %config.addr, public_url = %config.public_url, "passhook is serving");
    let state = AppState::new(Core::new(db.clone(), key), config);
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::shutdown_on_signals(shutdown.clone()));
    crate::serve(state, listener, shutdown).await?;
    db.close().await;
    Ok(())
}

async fn demo(config: Config) -> anyhow::Result<()> {
    let key = master_key(&config.database_url)?;
    let db = open(&config.database_url).await?;
    let core = Core::new(db.clone(), key);
    let password =
        std::env::var("PASSHOOK_DEMO_PASSWORD").unwrap_or_else(|_| "passhook-demo".to_string());
    let demo = domain::demo::seed(&core, &password).await?;
    db.close().await;
    println!("Passhook demo tenant is ready.");
    println!("  Console:   {}/login", config.public_url);
    println!("  Admin:     {} / {}", demo.admin_email, demo.password);
    println!("  Marketer:  {} / {}", demo.marketer_email, demo.password);
    println!("  Tenant:    {} ({} passes)", demo.tenant_id, demo.passes);
    println!("  API key:   {} (all scopes)", demo.api_key);
    println!("Start the server with: passhook serve");
    Ok(())
}

/// The deployment files (`deploy/`) name only sub-commands and environment variables
/// that exist, so a rename here cannot silently break a unit file or an image.
#[cfg(test)]
mod deploy_files {
    use super::*;

    const UNIT: &str = include_str!("../../deploy/passhook.service");
    const ENV_FILE: &str = include_str!("../../deploy/passhook.env");
    const CONTAINERFILE: &str = include_str!("../../deploy/Containerfile");
    const SETUP: &str = include_str!("../../scripts/setup.sh");

    /// Every `"NAME"` string literal in the server's and the domain's sources that
    /// looks like an environment variable, plus the CLI's `env = …` names.
    fn known_variables() -> Vec<String> {
        use clap::CommandFactory;
        let mut names: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut dirs = vec![root.join("server/src"), root.join("domain/src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for literal in text.split('"').skip(1).step_by(2) {
                        let looks_like_env = literal.len() > 3
                            && literal.contains('_')
                            && literal
                                .bytes()
                                .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit());
                        if looks_like_env {
                            names.push(literal.to_string());
                        }
                    }
                }
            }
        }
        names
    }

    fn assert_known(names: &[String], source: &str) {
        let known = known_variables();
        assert!(!names.is_empty(), "{source}: no variables found");
        for name in names {
            assert!(
                known.contains(name),
                "{source} sets {name}, which the server never reads"
            );
        }
    }

    #[test]
    fn the_unit_runs_a_real_sub_command_with_real_variables() {
        let exec = UNIT
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart");
        let args: Vec<&str> = exec.split_whitespace().collect();
        assert!(args[0].ends_with("/passhook"), "{exec}");
        let cli = Cli::try_parse_from(&args).expect("ExecStart parses");
        assert!(matches!(cli.command, Some(Command::Serve)), "{exec}");
        let names: Vec<String> = UNIT
            .lines()
            .filter_map(|l| l.strip_prefix("Environment="))
            .map(|assignment| assignment.split('=').next().unwrap().to_string())
            .collect();
        assert_known(&names, "passhook.service");
        assert!(UNIT.contains("EnvironmentFile=/etc/passhook/env"));
    }

    #[test]
    fn the_environment_file_names_real_variables() {
        let names: Vec<String> = ENV_FILE
            .lines()
            .map(|l| l.trim_start_matches('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(name, _)| name.to_string())
            .filter(|name| !name.is_empty() && !name.contains(' '))
            .collect();
        assert_known(&names, "passhook.env");
    }

    #[test]
    fn the_image_runs_a_real_sub_command_with_real_variables() {
        // The ENV instruction, continued over several lines.
        let mut env_block = String::new();
        for line in CONTAINERFILE.lines().skip_while(|l| !l.starts_with("ENV ")) {
            env_block.push_str(line.trim_end_matches('\\'));
            env_block.push(' ');
            if !line.ends_with('\\') {
                break;
            }
        }
        let names: Vec<String> = env_block
            .split_whitespace()
            .filter_map(|token| token.split_once('='))
            .map(|(name, _)| name.to_string())
            .collect();
        assert_known(&names, "Containerfile");
        let cmd = CONTAINERFILE
            .lines()
            .find_map(|l| l.strip_prefix("CMD "))
            .expect("CMD");
        let sub: Vec<String> = serde_json::from_str(cmd).expect("CMD in exec form");
        let mut args = vec!["passhook".to_string()];
        args.extend(sub);
        let cli = Cli::try_parse_from(&args).expect("CMD parses");
        assert!(matches!(cli.command, Some(Command::Serve)));
    }

    #[test]
    fn the_image_builds_with_the_tools_of_setup_sh() {
        for pin in [
            "cargo install cargo-leptos@",
            "cargo install wasm-opt --locked",
        ] {
            let line = |text: &str| {
                text.lines()
                    .find(|l| l.contains(pin))
                    .map(|l| l.trim().trim_start_matches("RUN ").to_string())
            };
            assert_eq!(
                line(CONTAINERFILE),
                line(SETUP),
                "the Containerfile and scripts/setup.sh install {pin}… differently"
            );
        }
    }
}
