//! Load test of the RTP relay: N calls of 20 ms G.711 through `MediaEngine`
//! on 127.0.0.1 for D seconds, then packets sent/received, loss and the relay
//! process's CPU.
//!
//!     cargo run --release --example relay_load -- [N=2000] [D=20]
//!
//! Two processes, so the CPU figure is the relay's alone: this one plays the
//! 2N devices, a child copy of itself (`--serve`) runs the N relays. Both
//! share the machine's cores, as they would not in production. Needs about
//! 4N+100 file descriptors in the child (`ulimit -n 65536` if refused).
//! Bounded: the run gives up D+120 s after start.

use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ha_pbx::media::{Leg, MediaConfig, MediaEngine, Relay, RelayStats};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use socket2::SockRef;
use tokio::net::UdpSocket;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PACKET_BYTES: usize = 172; // 12-byte RTP header + 160 bytes of G.711
const PTIME: Duration = Duration::from_millis(20);
/// Senders are spread over the 20 ms period in this many 1 ms slots, as
/// independent phones would be, instead of all firing at once.
const SLOTS: usize = 20;
/// After sending, wait until deliveries stop for this long (queues drained)...
const QUIET: Duration = Duration::from_millis(300);
/// ...but no longer than this: anything still missing then is lost.
const MAX_DRAIN: Duration = Duration::from_secs(5);
const FIRST_RELAY_PORT: u16 = 20000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return serve();
    }
    let calls: usize = args.first().map(|a| a.parse()).transpose().context("N")?.unwrap_or(2000);
    let secs: u64 = args.get(1).map(|a| a.parse()).transpose().context("D")?.unwrap_or(20);
    check_fd_limit(4 * calls + 100)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(secs + 120), drive(calls, secs)).await.context("run took too long")?
    })
}

/// Parent: the fake devices.
async fn drive(calls: usize, secs: u64) -> anyhow::Result<()> {
    // Device 2i is call i's A side, 2i+1 its B side.
    let mut devices = Vec::with_capacity(2 * calls);
    for _ in 0..2 * calls {
        devices.push(Arc::new(device_socket().context("binding a device socket")?));
    }
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut to_child = child.stdin.take().context("child stdin")?;
    let mut from_child = BufReader::new(child.stdout.take().context("child stdout")?).lines();

    let setup = Instant::now();
    let mut request = format!("{calls}\n");
    for pair in devices.chunks(2) {
        request.push_str(&format!("{} {}\n", pair[0].local_addr()?.port(), pair[1].local_addr()?.port()));
    }
    to_child.write_all(request.as_bytes()).await?;
    // Where each device sends: its own leg's relay port.
    let mut targets = Vec::with_capacity(2 * calls);
    for _ in 0..calls {
        let line = from_child.next_line().await?.context("relay process ended during setup")?;
        let (a, b) = line.split_once(' ').context("bad port line")?;
        targets.push(SocketAddr::new(LOCAL, a.parse()?));
        targets.push(SocketAddr::new(LOCAL, b.parse()?));
    }
    if from_child.next_line().await?.as_deref() != Some("ready") {
        bail!("relay process did not get ready");
    }
    println!("setup: {calls} relays in {:.2} s", setup.elapsed().as_secs_f64());

    let received: Arc<Vec<AtomicU64>> = Arc::new((0..2 * calls).map(|_| AtomicU64::new(0)).collect());
    let corrupt = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::with_capacity(2 * calls);
    for (id, socket) in devices.iter().enumerate() {
        let (socket, received, corrupt) = (Arc::clone(socket), Arc::clone(&received), Arc::clone(&corrupt));
        // A packet here came from the other side of the same call.
        let partner_ssrc = (id ^ 1) as u32;
        receivers.push(tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok(n) = socket.recv(&mut buf).await {
                if n == PACKET_BYTES && buf[8..12] == partner_ssrc.to_be_bytes() {
                    received[id].fetch_add(1, Relaxed);
                } else {
                    corrupt.fetch_add(1, Relaxed);
                }
            }
        }));
    }

    let child_pid = child.id().context("child pid")?;
    let cpu_start = (process_cpu(child_pid)?, process_cpu_self()?, machine_busy()?);
    let started = Instant::now();
    let ticks = secs * 1000 / PTIME.as_millis() as u64;
    let mut senders = Vec::with_capacity(SLOTS);
    for slot in 0..SLOTS {
        let mine: Vec<(u32, Arc<UdpSocket>, SocketAddr)> =
            (slot..2 * calls).step_by(SLOTS).map(|id| (id as u32, Arc::clone(&devices[id]), targets[id])).collect();
        let first = tokio::time::Instant::now() + Duration::from_millis(slot as u64);
        senders.push(tokio::spawn(async move {
            let mut interval = tokio::time::interval_at(first, PTIME);
            let mut sent = 0u64;
            let mut packet = [0xffu8; PACKET_BYTES]; // 0xff: PCMU silence
            packet[0] = 0x80; // RTP version 2, PT 0 (PCMU)
            packet[1] = 0;
            for tick in 0..ticks {
                interval.tick().await;
                let seq = tick as u16;
                let timestamp = (tick as u32).wrapping_mul(160);
                for (ssrc, socket, target) in &mine {
                    packet[2..4].copy_from_slice(&seq.to_be_bytes());
                    packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
                    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
                    // A direct non-blocking send: awaiting per packet would
                    // make this task yield and fall behind the 20 ms clock.
                    if SockRef::from(&**socket).send_to(&packet, &(*target).into()).is_ok() {
                        sent += 1;
                    }
                }
            }
            sent
        }));
    }
    let mut sent = 0;
    for sender in senders {
        sent += sender.await?;
    }
    let send_time = started.elapsed();
    // A saturated machine delivers late, not never: wait for the queues to
    // empty. CPU is measured up to the last delivery, so idle waiting does
    // not dilute it.
    let count = || received.iter().map(|r| r.load(Relaxed)).sum::<u64>();
    let mut last = (count(), started.elapsed(), (process_cpu(child_pid)?, process_cpu_self()?, machine_busy()?));
    while started.elapsed() < send_time + MAX_DRAIN && started.elapsed() < last.1 + QUIET {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = count();
        if now != last.0 {
            last = (now, started.elapsed(), (process_cpu(child_pid)?, process_cpu_self()?, machine_busy()?));
        }
    }
    let (received, wall, cpu_end) = last;
    let drain = wall.saturating_sub(send_time);
    // Read while every socket is still open: where did lost packets die?
    let device_ports: Vec<u16> = devices.iter().map(|d| d.local_addr().map(|a| a.port())).collect::<Result<_, _>>()?;
    let relay_ports: Vec<u16> = targets.iter().flat_map(|t| [t.port(), t.port() + 1]).collect();
    let (device_drops, relay_drops) = (socket_drops(&device_ports)?, socket_drops(&relay_ports)?);
    for receiver in receivers {
        receiver.abort();
    }

    to_child.write_all(b"stop\n").await?;
    let relay_report = from_child.next_line().await?.unwrap_or_default();
    let _ = child.wait().await;

    let relay_cpu = (cpu_end.0 - cpu_start.0) / wall.as_secs_f64();
    let driver_cpu = (cpu_end.1 - cpu_start.1) / wall.as_secs_f64();
    let other_cpu = ((cpu_end.2 - cpu_start.2) / wall.as_secs_f64() - relay_cpu - driver_cpu).max(0.0);
    let lost = sent.saturating_sub(received);
    println!("streams:           {} ({calls} calls x 2 directions, 20 ms G.711, {PACKET_BYTES}-byte packets)", 2 * calls);
    println!(
        "duration:          {secs} s of sending (took {:.2} s); last packet arrived {} ms after the last send",
        send_time.as_secs_f64(),
        drain.as_millis()
    );
    println!("offered rate:      {:.0} packets/s (nominal {})", sent as f64 / send_time.as_secs_f64(), 2 * calls * 50);
    println!("packets sent:      {sent}");
    println!("packets received:  {received}");
    println!("loss:              {:.4} % ({lost} packets)", 100.0 * lost as f64 / sent.max(1) as f64);
    println!("wrong packets:     {}", corrupt.load(Relaxed));
    println!("kernel drops:      {relay_drops} in relay sockets, {device_drops} in device sockets (full receive buffers)");
    println!("relay process CPU: {:.1} % of one core ({:.2} of {} cores)", relay_cpu * 100.0, relay_cpu, cores());
    println!("load generator CPU: {:.1} % of one core (same machine)", driver_cpu * 100.0);
    println!("other CPU load:    {:.1} % of one core (anything else running meanwhile)", other_cpu * 100.0);
    println!("relay counters:    {relay_report}");
    Ok(())
}

/// Child: the relays. Reads device ports on stdin, answers relay ports.
fn serve() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let calls: usize = lines.next().context("call count")??.trim().parse()?;
    let mut peers = Vec::with_capacity(calls);
    for _ in 0..calls {
        let line = lines.next().context("device ports")??;
        let (a, b) = line.split_once(' ').context("bad device line")?;
        peers.push((SocketAddr::new(LOCAL, a.parse()?), SocketAddr::new(LOCAL, b.parse()?)));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let relays: Vec<Relay> = runtime.block_on(async {
        let last = FIRST_RELAY_PORT as usize + 4 * calls + 400;
        let engine = MediaEngine::new(MediaConfig {
            bind: LOCAL,
            advertise: LOCAL,
            port_range: (FIRST_RELAY_PORT, last.min(65535) as u16),
            timeout: Duration::from_secs(600),
        })?;
        let mut relays = Vec::with_capacity(calls);
        for (a, b) in &peers {
            let relay = engine.create_relay().await?;
            relay.set_peer(Leg::A, *a, None);
            relay.set_peer(Leg::B, *b, None);
            relays.push(relay);
        }
        anyhow::Ok(relays)
    })?;
    let mut out = std::io::stdout().lock();
    for relay in &relays {
        writeln!(out, "{} {}", relay.local_port(Leg::A), relay.local_port(Leg::B))?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    // Relaying goes on in the runtime's worker threads meanwhile.
    for line in lines {
        if line?.trim() == "stop" {
            break;
        }
    }
    let total = relays.iter().map(Relay::stats).fold(RelayStats::default(), add);
    writeln!(
        out,
        "forwarded={} dropped: no_peer={} untrusted={} no_destination={} send_failed={}",
        total.a_to_b.packets + total.b_to_a.packets,
        total.dropped_no_peer,
        total.dropped_untrusted,
        total.dropped_no_destination,
        total.dropped_send_failed
    )?;
    out.flush()?;
    Ok(())
}

fn add(mut sum: RelayStats, s: RelayStats) -> RelayStats {
    sum.a_to_b.packets += s.a_to_b.packets;
    sum.b_to_a.packets += s.b_to_a.packets;
    sum.dropped_no_peer += s.dropped_no_peer;
    sum.dropped_untrusted += s.dropped_untrusted;
    sum.dropped_no_destination += s.dropped_no_destination;
    sum.dropped_send_failed += s.dropped_send_failed;
    sum
}

/// A fake phone's socket. Its large receive buffer lets a load generator
/// starved of CPU by the relay (they share the machine) fall behind without
/// dropping packets, which real phones, having their own CPU, would not.
fn device_socket() -> anyhow::Result<UdpSocket> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    socket.set_recv_buffer_size(2 * 1024 * 1024)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(LOCAL, 0).into())?;
    Ok(UdpSocket::from_std(socket.into())?)
}

/// CPU seconds (user + system) used so far by process `pid`, from /proc.
fn process_cpu(pid: u32) -> anyhow::Result<f64> {
    cpu_from_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

fn process_cpu_self() -> anyhow::Result<f64> {
    cpu_from_stat(&std::fs::read_to_string("/proc/self/stat")?)
}

fn cpu_from_stat(stat: &str) -> anyhow::Result<f64> {
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in USER_HZ (100 on Linux).
    let rest = stat.rsplit_once(')').context("bad /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / 100.0)
}

/// CPU seconds all cores spent busy so far, from /proc/stat.
fn machine_busy() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .context("empty /proc/stat")?
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().unwrap_or(0.0))
        .collect();
    let (idle, iowait) = (ticks.get(3).copied().unwrap_or(0.0), ticks.get(4).copied().unwrap_or(0.0));
    // The first eight fields; guest time is already inside user time.
    Ok((ticks.iter().take(8).sum::<f64>() - idle - iowait) / 100.0)
}

/// Datagrams the kernel dropped on full receive buffers of sockets bound to
/// `ports` on 127.0.0.1 (the `drops` column of /proc/net/udp).
fn socket_drops(ports: &[u16]) -> anyhow::Result<u64> {
    let ports: std::collections::HashSet<u16> = ports.iter().copied().collect();
    let table = std::fs::read_to_string("/proc/net/udp")?;
    let mut drops = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = fields.get(1).and_then(|a| a.split_once(':')).and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        if port.is_some_and(|p| ports.contains(&p)) {
            drops += fields.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Ok(drops)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The child needs ~4 sockets per call; fail early with advice, not midway.
fn check_fd_limit(needed: usize) -> anyhow::Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|s| s.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < needed => bail!("need {needed} open files, limit is {soft}: run `ulimit -n 65536` first"),
        _ => Ok(()),
    }
}
