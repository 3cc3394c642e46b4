//! Streaming sample-rate conversion of mono 16-bit PCM (rubato's sinc
//! resampler). Input may come in chunks of any size; the output is the same
//! whatever the chunking, aligned with the input (the filter delay is
//! trimmed), and after `flush` exactly `round(n_in * to / from)` long.
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Async, FixedAsync, Resampler as _, SincInterpolationParameters, SincInterpolationType, WindowFunction};

/// Input frames per rubato call: 16 ms at 16 kHz; keeps latency low.
const CHUNK: usize = 256;

pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    /// None when the rates are equal: samples pass through.
    inner: Option<Async<f32>>,
    pending: Vec<f32>,
    out: Vec<f32>,
    /// Output frames of filter delay still to drop.
    skip: usize,
    fed: u64,
    emitted: u64,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resampler({} Hz -> {} Hz)", self.from_hz, self.to_hz)
    }
}

impl Resampler {
    /// Errors only for a rate of 0 or a ratio beyond 1:16.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Resampler, String> {
        if from_hz == 0 || to_hz == 0 {
            return Err(format!("cannot resample {from_hz} Hz to {to_hz} Hz"));
        }
        let ratio = to_hz as f64 / from_hz as f64;
        if !(1.0 / 16.0..=16.0).contains(&ratio) {
            return Err(format!("cannot resample {from_hz} Hz to {to_hz} Hz: ratio too large"));
        }
        let (inner, out, skip) = if from_hz == to_hz {
            (None, Vec::new(), 0)
        } else {
            // speech: a 128-tap filter is plenty and keeps the per-call CPU low
            let params = SincInterpolationParameters::new(128, WindowFunction::BlackmanHarris2)
                .oversampling_factor(128)
                .interpolation(SincInterpolationType::Linear);
            let r = Async::<f32>::new_sinc(ratio, 1.0, &params, CHUNK, 1, FixedAsync::Input)
                .map_err(|e| format!("resampler {from_hz} -> {to_hz} Hz: {e}"))?;
            let out = vec![0.0; r.output_frames_max()];
            let skip = r.output_delay();
            (Some(r), out, skip)
        };
        Ok(Resampler { from_hz, to_hz, inner, pending: Vec::with_capacity(CHUNK * 2), out, skip, fed: 0, emitted: 0 })
    }

    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Resample what is available; some input is held back until a whole
    /// rubato chunk is there (at most CHUNK - 1 samples).
    pub fn process(&mut self, input: &[i16]) -> Vec<i16> {
        self.fed += input.len() as u64;
        if self.inner.is_none() {
            self.emitted += input.len() as u64;
            return input.to_vec();
        }
        self.pending.extend(input.iter().map(|&s| s as f32 / 32768.0));
        let mut result = Vec::with_capacity(input.len() * self.to_hz as usize / self.from_hz as usize + 16);
        self.run(&mut result);
        result
    }

    /// The rest: held-back input and the filter's tail, padded with silence.
    /// The resampler is then ready for a new stream.
    pub fn flush(&mut self) -> Vec<i16> {
        let want = (self.fed as f64 * self.to_hz as f64 / self.from_hz as f64).round() as u64;
        let mut result = Vec::new();
        if self.inner.is_some() {
            // each round feeds one chunk of silence; the delay is a few chunks at most
            for _ in 0..64 {
                if self.emitted >= want {
                    break;
                }
                self.pending.resize(self.pending.len().div_ceil(CHUNK).max(1) * CHUNK, 0.0);
                self.run(&mut result);
            }
        }
        let extra = (self.emitted.saturating_sub(want)) as usize;
        result.truncate(result.len().saturating_sub(extra));
        self.reset();
        result
    }

    fn reset(&mut self) {
        self.pending.clear();
        self.fed = 0;
        self.emitted = 0;
        if let Some(r) = self.inner.as_mut() {
            r.reset();
            self.skip = r.output_delay();
        }
    }

    fn run(&mut self, result: &mut Vec<i16>) {
        let Some(r) = self.inner.as_mut() else { return };
        let mut start = 0;
        loop {
            let need = r.input_frames_next();
            if self.pending.len() - start < need {
                break;
            }
            let inp = &self.pending[start..start + need];
            let out_len = self.out.len();
            let (Ok(i), Ok(mut o)) = (InterleavedSlice::new(inp, 1, need), InterleavedSlice::new_mut(&mut self.out, 1, out_len)) else {
                break;
            };
            let Ok((used, made)) = r.process_into_buffer(&i, &mut o, None) else {
                // cannot happen with buffers sized by the resampler itself; drop the chunk
                start += need;
                continue;
            };
            start += used;
            let dropped = self.skip.min(made);
            self.skip -= dropped;
            result.extend(self.out[dropped..made].iter().map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16));
            self.emitted += (made - dropped) as u64;
        }
        self.pending.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, amp: f64, n: usize) -> Vec<i16> {
        (0..n).map(|i| (amp * (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin()).round() as i16).collect()
    }

    /// Power of `hz` in `x` (Goertzel), as an amplitude.
    fn amplitude_at(x: &[i16], rate: u32, hz: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / rate as f64;
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in x.iter().enumerate() {
            re += s as f64 * (w * i as f64).cos();
            im += s as f64 * (w * i as f64).sin();
        }
        2.0 * (re * re + im * im).sqrt() / x.len() as f64
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Feeds `input` in awkward chunk sizes, then flushes.
    fn run_chunked(r: &mut Resampler, input: &[i16]) -> Vec<i16> {
        let sizes = [1usize, 7, 333, 160, 2, 1024, 45];
        let (mut out, mut at, mut k) = (Vec::new(), 0, 0);
        while at < input.len() {
            let n = sizes[k % sizes.len()].min(input.len() - at);
            out.extend(r.process(&input[at..at + n]));
            at += n;
            k += 1;
        }
        out.extend(r.flush());
        out
    }

    #[test]
    fn tone_keeps_frequency_level_and_length() {
        for (from, to) in [(22050, 16000), (24000, 16000), (8000, 16000), (16000, 8000), (48000, 8000)] {
            let n = from as usize; // one second
            let input = tone(from, 1000.0, 12000.0, n);
            let mut r = Resampler::new(from, to).unwrap();
            let out = run_chunked(&mut r, &input);
            assert_eq!(out.len(), to as usize, "{from}->{to}");
            // skip the edges where the filter sees the step in/out of the tone
            let mid = &out[out.len() / 10..out.len() * 9 / 10];
            let at_1k = amplitude_at(mid, to, 1000.0);
            assert!((at_1k - 12000.0).abs() < 12000.0 * 0.03, "{from}->{to}: 1 kHz amplitude {at_1k}");
            assert!(amplitude_at(mid, to, 1300.0) < 200.0, "{from}->{to}: energy off the tone");
            let level = rms(mid);
            assert!((level - 12000.0 / 2f64.sqrt()).abs() < 300.0, "{from}->{to}: rms {level}");
            // aligned: the tone starts at once, not after a delay
            assert!(rms(&out[..to as usize / 50]) > 4000.0, "{from}->{to}: leading silence");
        }
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let input = tone(22050, 440.0, 8000.0, 9000);
        let mut a = Resampler::new(22050, 16000).unwrap();
        let mut whole = a.process(&input);
        whole.extend(a.flush());
        let mut b = Resampler::new(22050, 16000).unwrap();
        assert_eq!(run_chunked(&mut b, &input), whole);
        // and after flush it starts over cleanly
        assert_eq!(run_chunked(&mut b, &input), whole);
    }

    #[test]
    fn above_the_new_nyquist_is_filtered_out() {
        // 6 kHz cannot exist at 8 kHz; it must not alias to 2 kHz
        let input = tone(16000, 6000.0, 12000.0, 16000);
        let mut r = Resampler::new(16000, 8000).unwrap();
        let out = run_chunked(&mut r, &input);
        let mid = &out[800..7200];
        assert!(rms(mid) < 200.0, "rms {}", rms(mid));
        assert!(amplitude_at(mid, 8000, 2000.0) < 100.0);
    }

    #[test]
    fn equal_rates_pass_through_and_bad_rates_are_refused() {
        let mut r = Resampler::new(16000, 16000).unwrap();
        assert_eq!(r.process(&[1, 2, 3]), vec![1, 2, 3]);
        assert!(r.flush().is_empty());
        assert!(Resampler::new(0, 16000).is_err());
        assert!(Resampler::new(16000, 0).is_err());
        assert!(Resampler::new(1000, 48000).is_err());
        // short input: nothing until flush, then all of it
        let mut r = Resampler::new(24000, 16000).unwrap();
        assert!(r.process(&[100; 30]).is_empty());
        assert_eq!(r.flush().len(), 20);
    }
}
