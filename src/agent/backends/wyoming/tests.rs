//! The clients against a small Wyoming server in the test (real TCP).
use super::conn::pcm_bytes;
use super::frame::{encode, Decoder, Event};
use super::*;
use crate::agent::backends::{Audio, BackendError, SpeechToText, TextToSpeech};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

async fn read_until(s: &mut TcpStream, d: &mut Decoder, last: &str) -> Vec<Event> {
    let mut evs = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        while let Some(ev) = d.next_event().unwrap() {
            let done = ev.kind == last;
            evs.push(ev);
            if done {
                return evs;
            }
        }
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "client closed early");
        d.push(&buf[..n]);
    }
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port());
    (l, url)
}

#[tokio::test]
async fn stt_sends_16k_audio_and_returns_the_transcript() {
    let (l, url) = listener().await;
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let evs = read_until(&mut s, &mut Decoder::new(), "audio-stop").await;
        s.write_all(&encode(&Event::new("transcript", json!({"text": " Turn on the light. "})))).await.unwrap();
        evs
    });
    // 8 kHz in: the client resamples to 16 kHz
    let audio = Audio { rate: 8000, samples: vec![1000; 8000] };
    let text = WyomingStt::new(&url).unwrap().transcribe(audio, "en").await.unwrap();
    assert_eq!(text, "Turn on the light.");
    let evs = server.await.unwrap();
    assert_eq!(evs[0].kind, "transcribe");
    assert_eq!(evs[0].str("language"), Some("en"));
    assert_eq!(evs[1].u64("rate"), Some(16000));
    let bytes: usize = evs.iter().filter(|e| e.kind == "audio-chunk").map(|e| e.payload.len()).sum();
    assert_eq!(bytes, 16000 * 2);
}

#[tokio::test]
async fn tts_forwards_each_chunk_as_it_arrives() {
    let (l, url) = listener().await;
    let (got_first_tx, got_first) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let req = read_until(&mut s, &mut Decoder::new(), "synthesize").await;
        let fmt = json!({"rate": 22050, "width": 2, "channels": 1});
        s.write_all(&encode(&Event::new("audio-start", fmt.clone()))).await.unwrap();
        s.write_all(&encode(&Event::new("audio-chunk", fmt.clone()).with_payload(pcm_bytes(&[1, 2, 3])))).await.unwrap();
        // the second chunk only after the client has handed on the first
        got_first.await.unwrap();
        s.write_all(&encode(&Event::new("audio-chunk", fmt).with_payload(pcm_bytes(&[4, 5])))).await.unwrap();
        s.write_all(&encode(&Event::new("audio-stop", json!({})))).await.unwrap();
        req
    });
    let (tx, mut rx) = mpsc::channel(8);
    let tts = WyomingTts::new(&url, Some("en_US-joe-medium")).unwrap();
    let speak = tokio::spawn(async move { tts.speak("Someone is at the door.", tx).await });
    assert_eq!(rx.recv().await.unwrap(), Audio { rate: 22050, samples: vec![1, 2, 3] });
    got_first_tx.send(()).unwrap();
    assert_eq!(rx.recv().await.unwrap(), Audio { rate: 22050, samples: vec![4, 5] });
    speak.await.unwrap().unwrap();
    assert!(rx.recv().await.is_none());
    let req = server.await.unwrap();
    assert_eq!(serde_json::Value::Object(req[0].data.clone()), json!({"text": "Someone is at the door.", "voice": {"name": "en_US-joe-medium"}}));
}

#[tokio::test]
async fn errors_are_told_apart() {
    // nothing listening
    let (l, url) = listener().await;
    drop(l);
    let e = WyomingStt::new(&url).unwrap().transcribe(Audio { rate: 16000, samples: vec![0; 160] }, "en").await.unwrap_err();
    assert!(matches!(e, BackendError::Unreachable { .. }), "{e}");

    // a Wyoming error event
    let (l, url) = listener().await;
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        read_until(&mut s, &mut Decoder::new(), "synthesize").await;
        s.write_all(&encode(&Event::new("error", json!({"text": "voice not found"})))).await.unwrap();
    });
    let (tx, _rx) = mpsc::channel(8);
    let e = WyomingTts::new(&url, Some("nope")).unwrap().speak("hi", tx).await.unwrap_err();
    assert!(matches!(&e, BackendError::Protocol { detail, .. } if detail.contains("voice not found")), "{e}");

    // closed before the transcript
    let (l, url) = listener().await;
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        read_until(&mut s, &mut Decoder::new(), "audio-stop").await;
    });
    let e = WyomingStt::new(&url).unwrap().transcribe(Audio { rate: 16000, samples: vec![0; 160] }, "en").await.unwrap_err();
    assert!(matches!(&e, BackendError::Protocol { detail, .. } if detail.contains("without a transcript")), "{e}");

    // not Wyoming at all
    let (l, url) = listener().await;
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await.unwrap();
    });
    let (tx, _rx) = mpsc::channel(8);
    let e = WyomingTts::new(&url, None).unwrap().speak("hi", tx).await.unwrap_err();
    assert!(matches!(e, BackendError::Protocol { .. }), "{e}");
}
