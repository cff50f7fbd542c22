//! The client of `bench/mcp.sh`: rmcp's client over a child's stdio, timing tool calls.
//!
//!   mcp_rtt CALLS TOOL ARGS_JSON -- SERVER ARGV…      p50 and p99 of CALLS round trips
//!   mcp_rtt --notify CALLS PATH -- SERVER ARGV…       write_file PATH, then the wait for
//!                                                     the subscribed resource's update
//!
//! Prints one line: `p50_ms p99_ms`.

use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ServerNotification, SubscriptionFilter};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientServiceExt, ServiceExt};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args
        .iter()
        .position(|a| a == "--")
        .expect("-- SERVER ARGV…");
    let (ours, server) = (&args[..split], &args[split + 1..]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut times = runtime.block_on(async {
        let mut command = tokio::process::Command::new(&server[0]);
        command.args(&server[1..]);
        let transport = TokioChildProcess::new(command)?;
        if ours[0] == "--notify" {
            return notify(transport, ours[1].parse()?, &ours[2]).await;
        }
        let client = ().serve(transport).await?;
        let calls: usize = ours[0].parse()?;
        let arguments: serde_json::Value = serde_json::from_str(&ours[2])?;
        let params = CallToolRequestParams::new(ours[1].clone())
            .with_arguments(arguments.as_object().cloned().unwrap_or_default());
        let mut times = Vec::with_capacity(calls);
        for i in 0..calls + calls / 10 {
            let started = Instant::now();
            let result = client.call_tool(params.clone()).await?;
            anyhow::ensure!(result.is_error != Some(true), "{result:?}");
            if i >= calls / 10 {
                times.push(started.elapsed()); // the first tenth warms up
            }
        }
        client.cancel().await?;
        anyhow::Ok(times)
    })?;
    times.sort();
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    println!("{:.3} {:.3}", at(0.5), at(0.99));
    Ok(())
}

/// Writes `path` `calls` times over MCP while subscribed to it (2026-07-28), timing from
/// each call's start to the update notification: an upper bound on journal append →
/// notification, since the append happens inside the call.
async fn notify(
    transport: TokioChildProcess,
    calls: usize,
    path: &str,
) -> anyhow::Result<Vec<Duration>> {
    let client = rmcp::model::ClientConfig::default()
        .serve_with_lifecycle(
            transport,
            rmcp::ClientLifecycleMode::Discover {
                preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
            },
        )
        .await?;
    let uri = format!("baton://{path}");
    let filter = SubscriptionFilter::builder()
        .resource_subscription(&uri)
        .build();
    let mut sub = client.listen(filter).await?;
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let args = serde_json::json!({"path": path, "content": format!("version {i}\n")});
        let params = CallToolRequestParams::new("write_file")
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        let started = Instant::now();
        let result = client.call_tool(params).await?;
        anyhow::ensure!(result.is_error != Some(true), "{result:?}");
        loop {
            let n = tokio::time::timeout(Duration::from_secs(5), sub.next()).await??;
            if matches!(n, Some(ServerNotification::ResourceUpdatedNotification(_))) {
                break;
            }
        }
        times.push(started.elapsed());
    }
    let _ = sub.cancel().await;
    client.cancel().await?;
    Ok(times)
}
