use std::process::ExitCode;

use clap::{Parser, Subcommand};

use frr_composer::cli;
use frr_composer::signals::Shutdown;

/// Share one FRR per node between many actors: merge FRRConfigurations (frrk8s.metallb.io/v1beta1)
/// into one frr.conf.
#[derive(Parser)]
#[command(name = "frr-composer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Merge FRRConfigurations from YAML files and print frr.conf (no cluster needed).
    Render(cli::render::RenderArgs),
    /// Merge, render and apply to the local FRR (only the difference), then verify.
    Apply(cli::apply::ApplyArgs),
    /// BGP sessions and BFD peers of the local FRR.
    Status(cli::apply::StatusArgs),
    /// The node agent (DaemonSet): keep the local FRR at the merged configuration.
    Controller(frr_composer::agent::ControllerArgs),
    /// Validating admission webhook for FRRConfiguration (HTTPS).
    Webhook(frr_composer::webhook::WebhookArgs),
    /// Print the CustomResourceDefinitions (YAML, one document each).
    Crds,
    /// Measure compose+render time and memory on generated input.
    BenchRender(cli::bench::BenchArgs),
    /// Try the configuration against real BGP peers on this machine (network namespaces).
    Lab(cli::lab::LabArgs),
    /// Every node's BGP sessions, with the FRRConfigurations that define each neighbor.
    Peers(cli::peers::PeersArgs),
    /// Every prefix the nodes advertise, to which peers, with its attributes, objects and Service.
    Routes(cli::routes::RoutesArgs),
    /// Why a node advertises a prefix to a peer, or the first link where it breaks.
    Why(cli::why::WhyArgs),
    /// What applying (or deleting) FRRConfigurations would do on every node, before it does it.
    Diff(cli::diff::DiffArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The long-running servers log from several threads: only the one-shot commands hold
    // stdout/stderr.
    match cli.command {
        Command::Controller(args) => {
            frr_composer::settings::init_logging(args.log_level.into());
            serve(|stop| frr_composer::agent::run(args, stop))
        }
        Command::Webhook(args) => {
            frr_composer::settings::init_logging(args.log_level.into());
            serve(|stop| frr_composer::webhook::run(args, stop))
        }
        // prints from its signal handler too: holds no lock on stdout/stderr
        Command::Lab(args) => ExitCode::from(cli::lab::main(&args) as u8),
        command => one_shot(command),
    }
}

/// glibc gives each thread that allocates its own malloc arena; for the agent with 1,000
/// FRRConfigurations that is 44 MiB resident instead of 31 MiB with one arena
/// (`cargo bench --bench agent`). The servers use one arena unless MALLOC_ARENA_MAX says
/// otherwise.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a malloc tunable; called before the runtime's threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

/// Runs a server on a two-thread runtime until it returns; SIGTERM and SIGINT ask it to stop
/// (also as PID 1). Errors are printed once, with their causes.
fn serve<F, Fut>(server: F) -> ExitCode
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    // the agent's working files (FRR syntax checks, batches) go when it returns
    let _cleanup = frr_composer::workdir::Cleanup;
    one_malloc_arena();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async { server(Shutdown::on_signals()?).await });
    // the watches, HTTP servers and pollers are dropped here; a vtysh read still running gets
    // one second
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn one_shot(command: Command) -> ExitCode {
    // working files (FRR syntax checks, batches) go with the process, also on SIGTERM/SIGINT
    let _cleanup = frr_composer::workdir::Cleanup;
    if matches!(command, Command::Render(_) | Command::Apply(_)) {
        if let Err(e) = frr_composer::signals::exit_on_signal(frr_composer::workdir::remove_all) {
            eprintln!("error: cannot handle signals: {e}");
            return ExitCode::from(1);
        }
    }
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let code = match command {
        Command::Render(args) => cli::render::run(&args, &mut out, &mut err),
        Command::Apply(args) => cli::apply::run(&args, &mut out, &mut err),
        Command::Status(args) => cli::apply::status(&args, &mut out, &mut err),
        Command::Controller(_) | Command::Webhook(_) | Command::Lab(_) => unreachable!("handled above"),
        Command::Crds => {
            use std::io::Write;
            let _ = out.write_all(cli::crds_yaml().as_bytes());
            0
        }
        Command::BenchRender(args) => cli::bench::run(&args, &mut out),
        Command::Peers(args) => cli::peers::run(&args, &mut out, &mut err),
        Command::Routes(args) => cli::routes::run(&args, &mut out, &mut err),
        Command::Why(args) => cli::why::run(&args, &mut out, &mut err),
        Command::Diff(args) => cli::diff::run(&args, &mut out, &mut err),
    };
    ExitCode::from(code as u8)
}
