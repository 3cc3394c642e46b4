//! One call with the agent, the async shell: the RTP socket, the 20 ms
//! clock, the backend jobs and the tools' requests, around the sans-IO
//! `CallCore` (call_core.rs), which makes every decision.
use super::backends::{Audio, Conversation};
use super::call_core::{CallCore, CallSetup, In, JobEvent, Metric, Out};
use super::jobs;
use super::service::{Agent, TakenMessage};
use super::session::{Limits, Mode};
use super::tools::{CallRequest, CallTools};
use super::turn::TurnConfig;
use crate::media::audio::g711::G711;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What the control plane does for the agent: no SIP types cross here.
pub trait CallActions: Send + Sync {
    /// End the call (BYE on our leg).
    fn hang_up(&self);
    /// Blind-transfer the caller to `extension`; the agent leaves.
    fn transfer(&self, extension: &str) -> Result<(), String>;
}

pub struct AgentCall {
    pub call_id: String,
    pub caller: String,
    /// Who the caller dialled (the agent, or the extension it stands in for).
    pub callee: String,
    pub mode: Mode,
    pub socket: UdpSocket,
    /// Where the far side said it listens; we answer to where packets come from.
    pub peer: SocketAddr,
    pub law: G711,
    pub event_pt: Option<u8>,
    pub control: Arc<dyn CallActions>,
    /// Cancelled when the call ends on the SIP side (BYE, CANCEL).
    pub ended: CancellationToken,
}

pub async fn run(agent: Arc<Agent>, call: AgentCall) {
    let span = tracing::info_span!("agent_call", call_id = %call.call_id);
    drive(agent, call).instrument(span).await
}

async fn drive(agent: Arc<Agent>, call: AgentCall) {
    let AgentCall { call_id, caller, callee, mode, socket, mut peer, law, event_pt, control, ended } = call;
    agent.metrics.call();
    let cfg = &agent.config;
    tracing::info!(%caller, %callee, ?mode, "agent answered");
    let setup = CallSetup {
        mode,
        limits: Limits { silence: Duration::from_secs(cfg.silence_secs), max_call: Duration::from_secs(cfg.max_call_secs), max_failures: 3 },
        turn: TurnConfig { end_ms: cfg.end_of_turn_ms, pause_ms: cfg.early_stt_ms, ..TurnConfig::default() },
        law,
        event_pt,
        greeting: cfg.greeting.clone(),
    };
    let mut core = CallCore::new(setup, agent.prompts.clone(), Instant::now());
    let (jobs_tx, mut jobs_rx) = mpsc::unbounded_channel::<JobEvent>();
    let (calls_tx, mut calls_rx) = mpsc::unbounded_channel::<CallRequest>();
    let tools = Arc::new(CallTools { ha: agent.backends.ha.clone(), allowed_entities: cfg.allowed_entities.clone(), call: calls_tx });
    let conversation = Arc::new(tokio::sync::Mutex::new(Conversation::default()));
    // The jobs whose audio is still wanted, to stop them on a barge-in.
    let mut speaking: HashMap<u64, CancellationToken> = HashMap::new();
    let mut recv = vec![0u8; 2048];
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);

    loop {
        // Carry out what the core asked for.
        while let Some(out) = core.poll() {
            match out {
                Out::Send(packet) => {
                    let _ = socket.send_to(&packet, peer).await;
                }
                Out::Say { job, text } => {
                    speaking.insert(job, jobs::say(agent.clone(), text, job, jobs_tx.clone()));
                }
                Out::Transcribe { job, audio } => jobs::transcribe(agent.clone(), Audio { rate: 16000, samples: audio }, job, jobs_tx.clone()),
                Out::Reply { job, text } => {
                    let cancel = jobs::reply(agent.clone(), text, conversation.clone(), tools.clone(), job, jobs_tx.clone());
                    speaking.insert(job, cancel);
                }
                Out::Cancel(job) => {
                    if let Some(cancel) = speaking.remove(&job) {
                        cancel.cancel();
                    }
                }
                Out::HangUp(reason) => {
                    tracing::info!(?reason, "agent hangs up");
                    control.hang_up();
                }
                Out::Metric(Metric::EarlyStt(used)) => agent.metrics.early_stt(used),
                Out::Metric(Metric::Failure(backend)) => agent.metrics.failure(backend as usize),
                Out::Metric(Metric::Turn(t)) => {
                    tracing::info!(v2v_ms = t.voice_to_voice.as_millis() as u64, stt_ms = t.stt.as_millis() as u64, stt_waited_ms = t.stt_waited.as_millis() as u64, brain_ms = t.brain.as_millis() as u64, tts_ms = t.tts_first_audio.as_millis() as u64, overhead_ms = t.overhead().as_millis() as u64, "agent turn");
                    agent.metrics.turn(t);
                }
            }
        }
        if core.is_ended() {
            break;
        }
        tokio::select! {
            _ = ended.cancelled() => {
                tracing::info!("agent call ended by the other side");
                break;
            }
            r = socket.recv_from(&mut recv) => {
                let Ok((n, from)) = r else { continue };
                peer = from;
                core.handle(Instant::now(), In::Packet(&recv[..n]));
            }
            _ = clock.tick() => core.handle(Instant::now(), In::Tick),
            Some(event) = jobs_rx.recv() => {
                if let JobEvent::Done { job } | JobEvent::Failed { job, .. } = &event {
                    speaking.remove(job);
                }
                core.handle(Instant::now(), In::Job(event));
            }
            Some(req) = calls_rx.recv() => match req {
                CallRequest::HangUp => core.handle(Instant::now(), In::HangUpAfterReply),
                CallRequest::Transfer { extension, done } => {
                    let _ = done.send(control.transfer(&extension));
                }
                CallRequest::SendDtmf(digits) => core.handle(Instant::now(), In::Press(digits)),
                CallRequest::TakeMessage(text) => core.handle(Instant::now(), In::TakeMessage(text)),
            },
        }
    }
    for (_, cancel) in speaking {
        cancel.cancel();
    }
    if let Some(transcript) = core.message() {
        agent.deliver_message(TakenMessage { call_id: call_id.clone(), caller, callee, transcript }).await;
    }
    tracing::info!("agent call finished");
}
