use clap::Parser;

// mimalloc: SIP parsing allocates many small strings per message; glibc's
// malloc spent a fifth of the CPU and fragmented memory under REGISTER load.
// Built with `no_thp`: otherwise mimalloc asks for transparent huge pages on
// its arenas and each one it touches costs 2 MiB of RSS (16 of an idle 33 MiB).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ha-pbx: SIP PBX for Home Assistant.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// YAML configuration file; without it the embedded default is used.
    #[arg(long, short)]
    config: Option<std::path::PathBuf>,
    /// Run as the Home Assistant add-on (/data/options.json, the Supervisor);
    /// also on when SUPERVISOR_TOKEN is set and no --config is given.
    #[arg(long)]
    addon: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if ha_pbx::addon::requested(cli.addon, cli.config.is_some()) {
        return ha_pbx::addon::main();
    }
    let config = match ha_pbx::config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ha-pbx: configuration error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    ha_pbx::app::init_tracing(config.log_level.as_deref());
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // An idle worker gives its freed pages back (see app::idle_collect).
    #[cfg(not(feature = "system-allocator"))]
    // SAFETY: mi_collect takes no pointer; it collects the calling thread's heap.
    builder.on_thread_park(|| ha_pbx::app::idle_collect::on_park(|| unsafe { libmimalloc_sys::mi_collect(false) }));
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ha-pbx: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(ha_pbx::app::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("fatal: {e:#}");
            eprintln!("ha-pbx: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
