//! The agent's backend work for one call, each piece a task that reports
//! to the call's runner: transcribe a turn, reply to it (brain → sentences
//! → TTS, streamed), or say a fixed text.
use super::backends::{Audio, Conversation, ToolHost};
use super::call_core::JobEvent;
use super::sentences::SentenceSplitter;
use super::service::Agent;
use super::session::Backend;
use super::speech;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

type Report = mpsc::UnboundedSender<JobEvent>;

pub(super) fn transcribe(agent: Arc<Agent>, audio: Audio, job: u64, report: Report) {
    tokio::spawn(async move {
        let started = Instant::now();
        let stt = agent.backends.stt.clone();
        let language = agent.config.language.clone();
        let result = tokio::time::timeout(agent.backend_timeout(), stt.transcribe(audio, &language)).await;
        let event = match result {
            Ok(Ok(text)) => JobEvent::Transcript { job, text, took: started.elapsed() },
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "agent: speech-to-text failed");
                JobEvent::Failed { job, backend: Backend::Stt }
            }
            Err(_) => {
                tracing::warn!("agent: speech-to-text timed out");
                JobEvent::Failed { job, backend: Backend::Stt }
            }
        };
        let _ = report.send(event);
    });
}

/// Speak `text` sentence by sentence (the first is heard while the rest is
/// synthesized); cancel the token to stop (barge-in).
pub(super) fn say(agent: Arc<Agent>, text: String, job: u64, report: Report) -> CancellationToken {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let tts = agent.backends.tts.clone();
        let mut splitter = SentenceSplitter::default();
        let mut sentences = splitter.push(&text);
        sentences.extend(splitter.finish());
        let mut event = JobEvent::Done { job };
        for sentence in sentences {
            let r = report.clone();
            let spoken = stop.run_until_cancelled(speech::speak(tts.as_ref(), &sentence, agent.backend_timeout(), |samples| {
                let _ = r.send(JobEvent::Audio { job, samples });
            }));
            match spoken.await {
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "agent: text-to-speech failed");
                    event = JobEvent::Failed { job, backend: Backend::Tts };
                    break;
                }
                None => break,
            }
        }
        let _ = report.send(event);
    });
    cancel
}

/// Ask the brain and speak its answer sentence by sentence as it streams.
/// A barge-in (the token) silences the rest, but the brain finishes its
/// turn so its tools complete and the conversation stays consistent.
pub(super) fn reply(agent: Arc<Agent>, said: String, conversation: Arc<Mutex<Conversation>>, tools: Arc<dyn ToolHost>, job: u64, report: Report) -> CancellationToken {
    let cancel = CancellationToken::new();
    let silenced = cancel.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let timeout = agent.backend_timeout();
        let (text_tx, mut text_rx) = mpsc::channel::<String>(64);
        let brain = agent.backends.brain.clone();
        let think = async {
            let mut conv = conversation.lock().await;
            match tokio::time::timeout(timeout, brain.reply(&said, &mut conv, tools.as_ref(), text_tx)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
            }
        };
        let tts = agent.backends.tts.clone();
        let speak = async {
            let mut splitter = SentenceSplitter::default();
            let mut timed = false;
            let mut spoke_anything = false;
            let mut failed = false;
            let say = async |sentence: String, timed: &mut bool| -> bool {
                if silenced.is_cancelled() {
                    return true;
                }
                let brain_took = started.elapsed();
                let sent = Instant::now();
                let r = report.clone();
                // Timing goes out with the reply's first audio, ahead of it.
                let mut first = !*timed;
                let spoken = silenced
                    .run_until_cancelled(speech::speak(tts.as_ref(), &sentence, timeout, |samples| {
                        if std::mem::take(&mut first) {
                            let _ = r.send(JobEvent::ReplyTiming { job, brain: brain_took, tts_first_audio: sent.elapsed() });
                        }
                        let _ = r.send(JobEvent::Audio { job, samples });
                    }))
                    .await;
                match spoken {
                    Some(Ok(audio)) => {
                        *timed |= audio.is_some();
                        true
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "agent: text-to-speech failed");
                        false
                    }
                    None => true,
                }
            };
            while let Some(piece) = text_rx.recv().await {
                for sentence in splitter.push(&piece) {
                    if !failed {
                        spoke_anything = true;
                        failed = !say(sentence, &mut timed).await;
                    }
                }
            }
            if let Some(rest) = splitter.finish()
                && !failed {
                    spoke_anything = true;
                    failed = !say(rest, &mut timed).await;
                }
            (spoke_anything, failed)
        };
        let (thought, (spoke, tts_failed)) = tokio::join!(think, speak);
        let event = match thought {
            Err(e) => {
                tracing::warn!(error = %e, "agent: the brain failed");
                JobEvent::Failed { job, backend: Backend::Brain }
            }
            Ok(()) if tts_failed => JobEvent::Failed { job, backend: Backend::Tts },
            Ok(()) => {
                if !spoke {
                    tracing::info!("agent: the brain answered with no words");
                }
                JobEvent::Done { job }
            }
        };
        let _ = report.send(event);
    });
    cancel
}
