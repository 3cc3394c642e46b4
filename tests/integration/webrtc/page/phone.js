// Test phone: registers with JsSIP, places/answers one call, records the
// remote audio for the driver. Events go to window.phone.events (polled by
// the driver) and to the console with a "[phone]" prefix.
'use strict';
(function () {
  const phone = { events: [], ua: null, session: null, remoteStream: null };
  window.phone = phone;
  const note = (name, detail) => {
    phone.events.push(name);
    console.log('[phone] ' + JSON.stringify({ event: name, detail: detail || null }));
  };
  const media = {
    audio: { echoCancellation: false, autoGainControl: false, noiseSuppression: false },
    video: false,
  };
  const callOptions = { mediaConstraints: media, pcConfig: { iceServers: [] } };

  function watch(session) {
    phone.session = session;
    session.on('progress', () => note('progress'));
    session.on('accepted', () => note('accepted'));
    session.on('confirmed', () => note('confirmed'));
    session.on('ended', e => { note('ended', e.cause); phone.session = null; });
    session.on('failed', e => { note('failed', e.cause); phone.session = null; });
    session.on('peerconnection', e => attach(e.peerconnection));
    // Like the card when it stops gathering early: SDP with no candidates at
    // all, so the PBX learns the browser's address from its ICE checks.
    session.on('sdp', e => {
      if (phone.options.stripCandidates && e.originator === 'local') {
        e.sdp = e.sdp.replace(/^a=(candidate:|end-of-candidates).*\r\n/gm, '');
      }
      // A browser without G.711 (to make the PBX transcode): the SDP sent
      // lists Opus alone. Only offers: a munged answer would not match what
      // the browser itself then sends.
      if (phone.options.opusOnly && e.originator === 'local' && e.type === 'offer') e.sdp = opusOnly(e.sdp);
      if (e.originator === 'local') phone.sentSdp = e.sdp;
    });
    session.on('hold', e => note('hold-' + e.originator));
    session.on('unhold', e => note('unhold-' + e.originator));
    session.on('newDTMF', e => { if (e.originator === 'remote') note('dtmf', e.dtmf.tone); });
    if (session.connection) attach(session.connection);
  }

  function opusOnly(sdp) {
    const opus = (sdp.match(/^a=rtpmap:(\d+) opus\/48000/mi) || [])[1];
    if (!opus) return sdp;
    const drop = new Set();
    const lines = sdp.split('\r\n').map(l => {
      const m = l.match(/^m=audio (\d+) (\S+) (.*)$/);
      if (!m) return l;
      m[3].split(' ').filter(pt => pt !== opus).forEach(pt => drop.add(pt));
      return `m=audio ${m[1]} ${m[2]} ${opus}`;
    });
    return lines.filter(l => {
      const m = l.match(/^a=(rtpmap|fmtp|rtcp-fb):(\d+)[ \r]?/);
      return !(m && drop.has(m[2]));
    }).join('\r\n');
  }

  // With tapReceived the page keeps the RTP payloads it receives, before its
  // jitter buffer and playout (encoded insertable streams), so speech quality
  // can be scored on what the PBX delivered. That API wants every sender and
  // receiver of the connection piped, so the others pass frames through.
  const passThrough = s => s.readable.pipeTo(s.writable).catch(() => {});
  function tapReceiver(receiver) {
    const s = receiver.createEncodedStreams();
    s.readable.pipeThrough(new TransformStream({
      transform(frame, out) {
        if (phone.tapped) {
          const m = frame.getMetadata();
          phone.tapped.push([m.rtpTimestamp, m.payloadType, btoa(String.fromCharCode(...new Uint8Array(frame.data)))]);
        }
        out.enqueue(frame);
      },
    })).pipeTo(s.writable).catch(() => {});
  }

  function attach(pc) {
    if (phone.options.tapReceived) {
      const addTrack = pc.addTrack.bind(pc);
      pc.addTrack = (...a) => { const sender = addTrack(...a); passThrough(sender.createEncodedStreams()); return sender; };
    }
    pc.addEventListener('track', e => {
      if (phone.options.tapReceived) {
        if (e.track.kind === 'audio') tapReceiver(e.receiver); else passThrough(e.receiver.createEncodedStreams());
      }
      // Video is read through getStats only; the recorder needs the audio.
      if (e.track.kind === 'video') { note('track-video'); return; }
      phone.remoteStream = e.streams[0] || new MediaStream([e.track]);
      document.getElementById('remote').srcObject = phone.remoteStream;
      note('track');
    });
    pc.addEventListener('iceconnectionstatechange', () => note('ice-' + pc.iceConnectionState));
  }

  phone.options = {};
  phone.start = function (o) {
    phone.options = o;
    // A video call: Chromium's fake camera sends, and the remote picture is decoded.
    media.video = !!o.video;
    callOptions.pcConfig = { iceServers: [], encodedInsertableStreams: !!o.tapReceived };
    const socket = new JsSIP.WebSocketInterface(o.wsUrl);
    // JsSIP's defaults otherwise, as the card leaves them (session timers on).
    phone.ua = new JsSIP.UA({ sockets: [socket], uri: o.uri, password: o.password, register: true });
    phone.ua.on('registered', () => note('registered'));
    phone.ua.on('registrationFailed', e => note('registrationFailed', e.cause));
    phone.ua.on('disconnected', () => note('disconnected'));
    phone.ua.on('newRTCSession', e => {
      if (e.originator !== 'remote') return;
      if (phone.session) { e.session.terminate({ status_code: 486 }); return; }
      watch(e.session);
      note('incoming', e.request.from.uri.user);
    });
    phone.ua.start();
  };

  phone.call = function (target) {
    const session = phone.ua.call(target, callOptions);
    watch(session);
  };

  phone.answer = function () { phone.session.answer(callOptions); };
  // As the SIP Core card does: SIP INFO, application/dtmf-relay.
  phone.dtmf = function (tones) { phone.session.sendDTMF(tones, { transportType: 'INFO', duration: 160, interToneGap: 300 }); };
  // A re-INVITE with a new offer, as a session refresh or the card's hold does.
  phone.renegotiate = function (useUpdate) {
    return new Promise(resolve => {
      const started = phone.session.renegotiate({ useUpdate: !!useUpdate }, () => resolve(true));
      if (!started) resolve(false);
    });
  };
  // The card's hold button: a re-INVITE with every stream sendonly.
  phone.hold = function (on) {
    return new Promise(resolve => {
      const started = on ? phone.session.hold({}, () => resolve(true)) : phone.session.unhold({}, () => resolve(true));
      if (!started) resolve(false);
    });
  };
  phone.hangup = function () { if (phone.session) phone.session.terminate(); };

  // Records `ms` of the remote stream; resolves to base64 16-bit mono WAV.
  // An AudioWorklet copies samples on the audio thread, so a busy page
  // thread cannot drop any (a ScriptProcessor would, under load).
  const recorderModule = URL.createObjectURL(new Blob([`
    registerProcessor('tap', class extends AudioWorkletProcessor {
      process(inputs) { if (inputs[0][0]) this.port.postMessage(inputs[0][0].slice()); return true; }
    });`], { type: 'application/javascript' }));
  phone.recordRemote = async function (ms) {
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule(recorderModule);
    await ctx.resume();
    const src = ctx.createMediaStreamSource(phone.remoteStream);
    const tap = new AudioWorkletNode(ctx, 'tap', { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: 'explicit' });
    const chunks = [];
    tap.port.onmessage = e => chunks.push(e.data);
    src.connect(tap);
    await new Promise(r => setTimeout(r, ms));
    src.disconnect();
    await new Promise(r => setTimeout(r, 50));
    const rate = ctx.sampleRate;
    await ctx.close();
    const n = chunks.reduce((a, c) => a + c.length, 0);
    const buf = new ArrayBuffer(44 + 2 * n);
    const v = new DataView(buf);
    const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
    str(0, 'RIFF'); v.setUint32(4, 36 + 2 * n, true); str(8, 'WAVE'); str(12, 'fmt ');
    v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
    v.setUint32(24, rate, true); v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true);
    v.setUint16(34, 16, true); str(36, 'data'); v.setUint32(40, 2 * n, true);
    let o = 44;
    for (const c of chunks) for (const s of c) { v.setInt16(o, Math.max(-1, Math.min(1, s)) * 32767, true); o += 2; }
    let bin = '';
    const bytes = new Uint8Array(buf);
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  };

  // The audio payloads received between tapStart and tapTake:
  // [rtpTimestamp, payloadType, base64]. A recording can run meanwhile.
  phone.tapStart = function () { phone.tapped = []; };
  phone.tapTake = function () { const got = phone.tapped || []; phone.tapped = null; return got; };

  // The receiving side's view (getStats inbound-rtp): loss, concealment, jitter buffer.
  phone.inboundStats = async function () {
    const pc = phone.session && phone.session.connection;
    if (!pc) return null;
    const out = {};
    const all = await pc.getStats();
    all.forEach(r => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') {
        const codec = r.codecId && all.get(r.codecId);
        out.codec = codec ? codec.mimeType : null;
        for (const k of ['packetsReceived', 'packetsLost', 'jitter', 'concealedSamples', 'totalSamplesReceived',
          'insertedSamplesForDeceleration', 'removedSamplesForAcceleration', 'jitterBufferDelay', 'jitterBufferEmittedCount']) out[k] = r[k];
      }
    });
    return out;
  };

  // The remote video as the browser decoded it (inbound-rtp, kind video).
  phone.videoStats = async function () {
    const pc = phone.session && phone.session.connection;
    if (!pc) return null;
    let out = null;
    const all = await pc.getStats();
    all.forEach(r => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        const codec = r.codecId && all.get(r.codecId);
        out = { codec: codec ? codec.mimeType : null };
        for (const k of ['packetsReceived', 'framesReceived', 'framesDecoded', 'keyFramesDecoded', 'frameWidth',
          'frameHeight', 'pliCount', 'firCount', 'nackCount']) out[k] = r[k];
      }
    });
    return out;
  };

  phone.sdp = function () {
    const pc = phone.session && phone.session.connection;
    return pc ? { local: pc.localDescription && pc.localDescription.sdp, sent: phone.sentSdp || null,
      remote: pc.remoteDescription && pc.remoteDescription.sdp } : null;
  };
})();
