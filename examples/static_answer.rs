//! The load generator's ceiling for the list benchmark (`bench/speed.sh`): an HTTP server on the
//! same stack as the service (tokio, hyper through axum, the same allocator) that answers every
//! GET with one fixed body of the size of a real list page, reading nothing and checking
//! nothing. wrk against it shows how many requests per second this machine can carry at all
//! when wrk and a server share its cores.
//!
//! `static_answer --listen 127.0.0.1:0 --bytes 9000` prints `listening on ADDR` once bound.

use axum::http::header;
use axum::routing::get;
use axum::Router;
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "Answers every GET with a fixed JSON body")]
struct Args {
    /// Address to listen on (127.0.0.1 only is expected).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Size of the answer in bytes.
    #[arg(long, default_value_t = 9000)]
    bytes: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut body = String::with_capacity(args.bytes);
    body.push_str("{\"value\":\"");
    while body.len() + 2 < args.bytes {
        body.push('x');
    }
    body.push_str("\"}");
    let body: &'static str = Box::leak(body.into_boxed_str());
    let app = Router::new().fallback(get(move || async move {
        (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body,
        )
    }));
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
