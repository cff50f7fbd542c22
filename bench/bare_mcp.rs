//! The floor for `bench/mcp.sh`: an rmcp stdio server with one tool that answers a
//! constant, built with the same SDK, features and runtime as `baton mcp`. What a tool
//! call costs beyond this is baton's.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Json;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, tool, tool_handler, tool_router};

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Constant {
    value: u32,
}

#[derive(Clone)]
struct Bare {
    tool_router: ToolRouter<Bare>,
}

#[tool_router]
impl Bare {
    #[tool(
        description = "Answers a constant",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn constant(&self) -> Json<Constant> {
        Json(Constant { value: 42 })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Bare {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("bare", "1"))
    }
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let bare = Bare {
            tool_router: Bare::tool_router(),
        };
        bare.serve(rmcp::transport::stdio())
            .await?
            .waiting()
            .await?;
        anyhow::Ok(())
    })
}
