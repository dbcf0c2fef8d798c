//! `slotmesh daemon`: flags to a [`NodeConfig`], a tokio runtime, signals to a clean leave,
//! and the node's end to an exit status.

use crate::cli::{default_phase_timeout_ms, strategy_choice, DaemonArgs};
use anyhow::{bail, Context, Result};
use slotmesh_node::{DataDir, Node, NodeConfig, NodeExit};

pub(crate) fn run(args: DaemonArgs) -> Result<()> {
    if args.burst == 0 {
        bail!("--burst must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.bias) {
        bail!("--bias must be in [0, 1], got {}", args.bias);
    }
    if args.absence_limit == 0 {
        bail!("--absence-limit must be at least 1 round");
    }
    if args.founders == 0 {
        bail!("--founders must be at least 1");
    }
    let phase_timeout_ms = args
        .phase_timeout_ms
        .unwrap_or_else(|| default_phase_timeout_ms(&args.strategy));
    let strategy = strategy_choice(&args.strategy, &args.llm, phase_timeout_ms)?;
    // The HTTP endpoint is bound before the node starts, so a port in use fails at once.
    let http_listener = match &args.http {
        Some(text) => {
            let address = slotmesh::http::parse_http_addr(text).map_err(anyhow::Error::msg)?;
            let listener = std::net::TcpListener::bind(address).with_context(|| {
                format!("cannot listen for HTTP on {address} (is the port in use?)")
            })?;
            listener.set_nonblocking(true)?;
            Some(listener)
        }
        None => None,
    };
    let http = match &http_listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let config = NodeConfig {
        name: args.name,
        burst: args.burst,
        personality: args.personality,
        bias: args.bias,
        seed: args.seed,
        swarm_name: args.swarm,
        listen: args.listen,
        peers: args.peer,
        mdns: !args.no_mdns,
        data_dir: args.data_dir,
        slot_ms: args.slot_ms,
        phase_timeout_ms,
        founders: args.founders,
        known_founders: args.founder_ids.into_iter().collect(),
        absence_limit: args.absence_limit,
        join: args.join,
        swarm_key: args.swarm_key,
        http,
        exec: args.exec,
        strategy,
        adversary: args.adversary,
    };
    let status_file = DataDir::status_path_of(&config.data_dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let exit = runtime.block_on(async {
        crate::cli::warn_if_llm_unusable(&config.strategy).await;
        let (node, handle) = Node::start(config)?;
        if let Some(listener) = http_listener {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            if let Ok(address) = listener.local_addr() {
                tracing::info!(%address, "HTTP status, metrics, events and dashboard");
                eprintln!("dashboard: http://{address}/");
            }
            let state = slotmesh::http::HttpState {
                node: handle.clone(),
                status_file,
            };
            tokio::spawn(slotmesh::http::serve(listener, state));
        }
        // Set by every SIGINT/SIGTERM: ends the linger below.
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            // Each SIGINT/SIGTERM asks the node to stop: the first leaves cleanly, the
            // second stops at once.
            #[cfg(unix)]
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch SIGTERM");
                        return;
                    }
                };
            loop {
                #[cfg(unix)]
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                #[cfg(not(unix))]
                let _ = tokio::signal::ctrl_c().await;
                stop.send_replace(true);
                handle.shutdown().await;
            }
        });
        let exit = node.run().await?;
        if let (Some(address), true) = (http, args.linger > 0) {
            if !*stopped.borrow() {
                eprintln!(
                    "done; the dashboard stays up at http://{address}/ for {} s (Ctrl-C ends it)",
                    args.linger
                );
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(args.linger)) => {}
                    _ = stopped.changed() => {}
                }
            }
        }
        Ok::<_, anyhow::Error>(exit)
    })?;
    match exit {
        NodeExit::Completed => {
            tracing::info!("job complete, leave final: exiting");
            Ok(())
        }
        NodeExit::Left => {
            tracing::info!("left the swarm: exiting");
            Ok(())
        }
        NodeExit::Interrupted => {
            bail!("stopped before the leave message became final")
        }
        NodeExit::Removed { round } => bail!(
            "the swarm removed this agent for good in round {round}: it stayed away longer than the swarm's absence limit; its job cannot finish in this swarm"
        ),
    }
}
