//! Load test of the WebRTC bridge: N browser↔device calls of 20 ms PCMU for
//! D seconds on 127.0.0.1, then connected calls, packets each way and the
//! bridge process's CPU (per call).
//!
//!     cargo run --release --example webrtc_load -- [N=100] [D=20] [pcmu|opus]
//!
//! `opus`: the browsers offer Opus only and send real Opus frames of a tone,
//! the devices PCMU, so every bridge transcodes both ways.
//!
//! Two processes, so the CPU figure is the bridges' alone: this one plays N
//! browsers (full-ICE str0m peers doing DTLS-SRTP) and N plain RTP devices, a
//! child copy of itself (`--serve`) runs N bridges from `MediaEngine`. Both
//! share the machine's cores. Bounded: the run gives up D+120 s after start.

use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ha_pbx::media::webrtc::{G711, WebRtcBridge};
use ha_pbx::media::{MediaConfig, MediaEngine};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UdpSocket;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PTIME: Duration = Duration::from_millis(20);
const FIRST_PORT: u16 = 24000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return serve();
    }
    let calls: usize = args.first().map(|a| a.parse()).transpose().context("N")?.unwrap_or(100);
    let secs: u64 = args.get(1).map(|a| a.parse()).transpose().context("D")?.unwrap_or(20);
    let opus = match args.get(2).map(String::as_str) {
        None | Some("pcmu") => false,
        Some("opus") => true,
        Some(other) => bail!("codec must be pcmu or opus, not {other}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async { tokio::time::timeout(Duration::from_secs(secs + 120), drive(calls, secs, opus)).await.context("run took too long")? })
}

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    to_browser: AtomicU64,
    to_device: AtomicU64,
    sent_by_browser: AtomicU64,
    sent_by_device: AtomicU64,
}

/// One second of a 440 Hz tone as 20 ms Opus frames (8 kHz mono, like the
/// bridge's own encoder), which the browsers send in a loop.
fn opus_tone() -> anyhow::Result<Vec<Vec<u8>>> {
    use opusic_c::{Application, Channels, Encoder, SampleRate};
    let mut encoder = Encoder::new(Channels::Mono, SampleRate::Hz8000, Application::Voip).map_err(|e| anyhow::anyhow!(e.message()))?;
    let pcm: Vec<u16> = (0..8000).map(|n| (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * n as f64 / 8000.0).sin()) as i16 as u16).collect();
    let mut packet = vec![0u8; 1500];
    pcm.chunks(160)
        .map(|frame| encoder.encode_to_slice(frame, &mut packet).map(|n| packet[..n].to_vec()).map_err(|e| anyhow::anyhow!(e.message())))
        .collect()
}

/// Parent: the browsers and the devices.
async fn drive(calls: usize, secs: u64, opus: bool) -> anyhow::Result<()> {
    let opus_frames = Arc::new(if opus { opus_tone()? } else { Vec::new() });
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut to_child = child.stdin.take().context("child stdin")?;
    let mut from_child = BufReader::new(child.stdout.take().context("child stdout")?).lines();

    let mut browsers = Vec::with_capacity(calls);
    let mut request = format!("{calls}\n");
    for _ in 0..calls {
        let socket = UdpSocket::bind((LOCAL, 0)).await?;
        let device = UdpSocket::bind((LOCAL, 0)).await?;
        let addr = socket.local_addr()?;
        let config = RtcConfig::new().clear_codecs();
        let config = if opus { config.enable_opus(true, false) } else { config.enable_pcmu(true, false) };
        let mut rtc = config.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp")?);
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().context("offer")?;
        request.push_str(&format!("{} {}\n", device.local_addr()?.port(), offer.to_sdp_string().replace("\r\n", "|")));
        browsers.push((rtc, socket, device, mid, pending));
    }
    let setup = Instant::now();
    to_child.write_all(request.as_bytes()).await?;
    let mut answers = Vec::with_capacity(calls);
    for _ in 0..calls {
        let line = from_child.next_line().await?.context("bridge process ended during setup")?;
        let (port, sdp) = line.split_once(' ').context("bad answer line")?;
        answers.push((SocketAddr::new(LOCAL, port.parse()?), sdp.replace('|', "\r\n")));
    }
    if from_child.next_line().await?.as_deref() != Some("ready") {
        bail!("bridge process did not get ready");
    }
    println!("setup: {calls} bridges negotiated in {:.2} s", setup.elapsed().as_secs_f64());

    let counters = Arc::new(Counters::default());
    let stop_at = tokio::time::Instant::now() + Duration::from_secs(secs);
    let child_pid = child.id().context("child pid")?;
    let cpu_start = process_cpu(child_pid)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for ((mut rtc, socket, device, mid, pending), (plain, answer)) in browsers.into_iter().zip(answers) {
        rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer)?)?;
        let c = Arc::clone(&counters);
        let opus_frames = Arc::clone(&opus_frames);
        tasks.push(tokio::spawn(async move {
            let addr = socket.local_addr().expect("bound");
            let (mut buf, mut dbuf) = (vec![0u8; 2048], vec![0u8; 2048]);
            let mut tick = tokio::time::interval(PTIME);
            let (mut connected, mut ts, mut seq) = (false, 0u32, 0u16);
            let mut packet = [0xffu8; 172];
            packet[12..].copy_from_slice(&ulaw_tone());
            packet[0] = 0x80; // RTP version 2
            packet[1] = 0; // no marker, PT 0 (PCMU)
            while tokio::time::Instant::now() < stop_at {
                let deadline = loop {
                    match rtc.poll_output() {
                        Ok(Output::Timeout(t)) => break t,
                        Ok(Output::Transmit(t)) => {
                            let _ = socket.try_send_to(&t.contents, t.destination);
                        }
                        Ok(Output::Event(Event::Connected)) => {
                            connected = true;
                            c.connected.fetch_add(1, Relaxed);
                        }
                        Ok(Output::Event(Event::MediaData(_))) => {
                            c.to_browser.fetch_add(1, Relaxed);
                        }
                        Ok(Output::Event(_)) => {}
                        Err(_) => return,
                    }
                };
                tokio::select! {
                    got = socket.recv_from(&mut buf) => {
                        let Ok((n, src)) = got else { return };
                        if let Ok(r) = Receive::new(Protocol::Udp, src, addr, &buf[..n]) {
                            let _ = rtc.handle_input(Input::Receive(Instant::now(), r));
                        }
                    }
                    got = device.recv_from(&mut dbuf) => {
                        if got.is_ok() {
                            c.to_device.fetch_add(1, Relaxed);
                        }
                    }
                    _ = tick.tick() => {
                        ts = ts.wrapping_add(160);
                        seq = seq.wrapping_add(1);
                        packet[2..4].copy_from_slice(&seq.to_be_bytes());
                        packet[4..8].copy_from_slice(&ts.to_be_bytes());
                        if device.try_send_to(&packet, plain).is_ok() {
                            c.sent_by_device.fetch_add(1, Relaxed);
                        }
                        if let Some(w) = rtc.writer(mid).filter(|_| connected) {
                            let (pt, time, payload) = if opus_frames.is_empty() {
                                (0.into(), MediaTime::new(ts as u64, Frequency::new(8000).expect("non-zero")), vec![0xffu8; 160])
                            } else {
                                let frame = opus_frames[(seq as usize) % opus_frames.len()].clone();
                                let pt = w.payload_params().find(|p| p.spec().codec == str0m::format::Codec::Opus).map(|p| p.pt()).unwrap_or(111.into());
                                (pt, MediaTime::new(ts as u64 * 6, Frequency::FORTY_EIGHT_KHZ), frame)
                            };
                            if w.write(pt, Instant::now(), time, payload).is_ok() {
                                c.sent_by_browser.fetch_add(1, Relaxed);
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(deadline.into()) => {
                        let _ = rtc.handle_input(Input::Timeout(Instant::now()));
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = (process_cpu(child_pid)? - cpu_start) / wall;
    to_child.write_all(b"stop\n").await?;
    let _ = child.wait().await;
    let get = |a: &AtomicU64| a.load(Relaxed);
    let codec = if opus { "Opus ⇄ PCMU transcoded" } else { "PCMU" };
    println!("calls:             {calls} (browser ⇄ bridge ⇄ device, 20 ms {codec}, {secs} s)");
    println!("connected:         {} (ICE + DTLS-SRTP)", get(&counters.connected));
    let loss = |got: u64, sent: u64| if sent == 0 { 0.0 } else { 100.0 * (sent.saturating_sub(got)) as f64 / sent as f64 };
    let (to_device, by_browser) = (get(&counters.to_device), get(&counters.sent_by_browser));
    let (to_browser, by_device) = (get(&counters.to_browser), get(&counters.sent_by_device));
    println!("browser → device:  {to_device} of {by_browser} packets ({:.2} % lost)", loss(to_device, by_browser));
    println!("device → browser:  {to_browser} of {by_device} packets ({:.2} % lost)", loss(to_browser, by_device));
    println!("bridge process CPU: {:.1} % of one core, {:.3} % per call", cpu * 100.0, cpu * 100.0 / calls as f64);
    Ok(())
}

/// Child: the bridges. Reads offers on stdin, answers with plain ports and SDP.
fn serve() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let calls: usize = lines.next().context("call count")??.trim().parse()?;
    let mut offers = Vec::with_capacity(calls);
    for _ in 0..calls {
        let line = lines.next().context("offer")??;
        let (port, sdp) = line.split_once(' ').context("bad offer line")?;
        offers.push((SocketAddr::new(LOCAL, port.parse()?), sdp.replace('|', "\r\n")));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let bridges: Vec<(WebRtcBridge, String)> = runtime.block_on(async {
        // Three RTP/RTCP pairs a bridge: browser, device audio, device video.
        let last = (FIRST_PORT as usize + 6 * calls + 400).min(65535) as u16;
        let engine = MediaEngine::new(MediaConfig { bind: LOCAL, advertise: LOCAL, port_range: (FIRST_PORT, last), timeout: Duration::from_secs(600) })?;
        let mut out = Vec::with_capacity(calls);
        for (device, offer) in &offers {
            let bridge = engine.create_webrtc_bridge().await?;
            bridge.set_device_peer(*device);
            let (answer, _) = bridge.answer_browser(offer, &[G711::Pcmu.into()], &[]).await?;
            out.push((bridge, answer));
        }
        anyhow::Ok(out)
    })?;
    let mut out = std::io::stdout().lock();
    for (bridge, answer) in &bridges {
        writeln!(out, "{} {}", bridge.device_port(), answer.replace("\r\n", "|"))?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    for line in lines {
        if line?.trim() == "stop" {
            break;
        }
    }
    Ok(())
}

/// CPU seconds (user + system) used so far by process `pid`, from /proc.
fn process_cpu(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("bad /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / 100.0)
}

/// 20 ms of a 1 kHz tone in μ-law (what a doorbell's microphone sends; an
/// encoder fed digital silence would do less work than on a real call).
fn ulaw_tone() -> [u8; 160] {
    let mut out = [0u8; 160];
    for (n, byte) in out.iter_mut().enumerate() {
        let sample = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 8000.0).sin()) as i32;
        let (sign, magnitude) = if sample < 0 { (0x80, -sample) } else { (0, sample) };
        let biased = magnitude.min(32635) + 0x84;
        let exponent = (0..8).rev().find(|e| biased & (0x80 << e) != 0).unwrap_or(0);
        let mantissa = (biased >> (exponent + 3)) & 0x0f;
        *byte = !(sign | (exponent << 4) | mantissa) as u8;
    }
    out
}
