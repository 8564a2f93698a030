//! etcd-load: `redis-benchmark`'s closed loop, against etcd.
//!
//! `--clients C` connections, each with `--depth P` requests in flight (P = 1 without
//! pipelining; P > 1 is the equivalent of redis-benchmark's `-P`: the same number of requests
//! outstanding per connection, multiplexed by HTTP/2 instead of pipelined). Each request is a
//! put of a `--value-size`-byte value, or a linearizable range read of one key, on keys
//! chosen like redis-benchmark's default (one key). Prints one CSV line in redis-benchmark's
//! `--csv` shape: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
//! "p95_latency_ms","p99_latency_ms","max_latency_ms".

use clap::Parser;
use etcd_client::{Client, GetOptions};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Comma-separated etcd client URLs.
    #[arg(long)]
    endpoints: String,
    /// put or get.
    #[arg(long, default_value = "put")]
    op: String,
    #[arg(long, default_value_t = 1)]
    clients: usize,
    #[arg(long, default_value_t = 1)]
    depth: usize,
    #[arg(long, default_value_t = 10_000)]
    requests: u64,
    #[arg(long, default_value_t = 3)]
    value_size: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let endpoints: Vec<String> = args.endpoints.split(',').map(String::from).collect();
    let value = vec![b'x'; args.value_size];
    let mut seed = Client::connect(endpoints.clone(), None).await?;
    seed.put("key:__rand_int__", value.clone(), None).await?;
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let client = Client::connect(endpoints.clone(), None).await?;
        for _ in 0..args.depth {
            let (mut kv, issued, value, op) = (client.kv_client(), issued.clone(), value.clone(), args.op.clone());
            let total = args.requests;
            tasks.push(tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3).expect("histogram");
                let mut errors = 0u64;
                while issued.fetch_add(1, Ordering::Relaxed) < total {
                    let t = Instant::now();
                    loop {
                        let result = match op.as_str() {
                            "get" => kv.get("key:__rand_int__", Some(GetOptions::new())).await.map(|_| ()),
                            _ => kv.put("key:__rand_int__", value.clone(), None).await.map(|_| ()),
                        };
                        // A failed request (a leader change) is retried; its latency counts.
                        match result {
                            Ok(()) => break,
                            Err(_) => {
                                errors += 1;
                                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            }
                        }
                    }
                    histogram.record(t.elapsed().as_micros() as u64).expect("record");
                }
                (histogram, errors)
            }));
        }
    }
    let mut all = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for task in tasks {
        let (histogram, failed) = task.await?;
        all.add(histogram)?;
        errors += failed;
    }
    if errors > 0 {
        eprintln!("{errors} requests failed and were retried");
    }
    let seconds = started.elapsed().as_secs_f64();
    let ms = |v: u64| v as f64 / 1000.0;
    println!(
        "\"{}\",\"{:.2}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\"",
        args.op.to_uppercase(),
        all.len() as f64 / seconds,
        all.mean() / 1000.0,
        ms(all.min()),
        ms(all.value_at_quantile(0.50)),
        ms(all.value_at_quantile(0.95)),
        ms(all.value_at_quantile(0.99)),
        ms(all.max()),
    );
    Ok(())
}
