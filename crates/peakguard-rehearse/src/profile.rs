//! The load profile: how many requests per second at each moment, as stages
//! (`ramp 0-2000 30s, hold 2m, ramp 2000-0 10s`), and the intended send times it implies.
//! Open model: the times come from the profile alone, never from how the server answers.

use std::time::Duration;

/// One stage: the rate goes linearly from `from` to `to` requests/s over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub from: f64,
    pub to: f64,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub stages: Vec<Stage>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "invalid profile {text:?}: {reason}. Write stages separated by commas, e.g. \"ramp 0-2000 30s, hold 2m, ramp 2000-0 10s\" (hold keeps the last rate; `hold 500 1m` sets it)"
)]
pub struct ProfileError {
    pub text: String,
    pub reason: String,
}

impl Profile {
    /// A constant rate for a duration.
    pub fn constant(rps: f64, duration: Duration) -> Self {
        Profile {
            stages: vec![Stage {
                from: rps,
                to: rps,
                duration,
            }],
        }
    }

    /// Parses `ramp A-B DUR`, `hold [RATE] DUR` and `drop [DUR]` stages, comma separated.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        let err = |reason: String| ProfileError {
            text: text.to_string(),
            reason,
        };
        let mut stages = Vec::new();
        let mut last = 0.0f64;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            // Filler words people write are accepted: "ramp 0→2000 rps in 30s", "hold 500 rps for 2m".
            let words: Vec<&str> = part
                .split_whitespace()
                .filter(|w| {
                    !matches!(
                        w.to_ascii_lowercase().as_str(),
                        "rps" | "req/s" | "in" | "for" | "over"
                    )
                })
                .collect();
            let dur = |w: &str| {
                humantime::parse_duration(w)
                    .map_err(|e| err(format!("{w:?} is not a duration ({e})")))
            };
            let rate = |w: &str| {
                w.parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r >= 0.0)
                    .ok_or_else(|| err(format!("{w:?} is not a rate")))
            };
            let stage = match words.as_slice() {
                ["ramp", range, d] => {
                    let (a, b) = range
                        .split_once(['-', '→'])
                        .ok_or_else(|| err(format!("ramp wants FROM-TO, got {range:?}")))?;
                    let (a, b) = (if a.is_empty() { last } else { rate(a)? }, rate(b)?);
                    Stage {
                        from: a,
                        to: b,
                        duration: dur(d)?,
                    }
                }
                ["hold", d] => Stage {
                    from: last,
                    to: last,
                    duration: dur(d)?,
                },
                ["hold", r, d] => {
                    let r = rate(r)?;
                    Stage {
                        from: r,
                        to: r,
                        duration: dur(d)?,
                    }
                }
                ["drop"] => Stage {
                    from: 0.0,
                    to: 0.0,
                    duration: Duration::ZERO,
                },
                ["drop", d] => Stage {
                    from: last,
                    to: 0.0,
                    duration: dur(d)?,
                },
                _ => return Err(err(format!("cannot read stage {part:?}"))),
            };
            last = stage.to;
            stages.push(stage);
        }
        if stages.is_empty() {
            return Err(err("no stage".into()));
        }
        Ok(Profile { stages })
    }

    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The rate at `t` from the start.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let mut start = Duration::ZERO;
        for s in &self.stages {
            if t < start + s.duration {
                let f = (t - start).as_secs_f64() / s.duration.as_secs_f64().max(f64::MIN_POSITIVE);
                return s.from + (s.to - s.from) * f;
            }
            start += s.duration;
        }
        0.0
    }

    /// Requests the profile asks for in total.
    pub fn expected_requests(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| (s.from + s.to) / 2.0 * s.duration.as_secs_f64())
            .sum()
    }

    pub fn peak_rate(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.from.max(s.to))
            .fold(0.0, f64::max)
    }

    /// Intended send times, as offsets from the start: the k-th request is due when the
    /// integral of the rate reaches k (so a constant 100/s gives 0, 10 ms, 20 ms, ...).
    pub fn schedule(&self) -> Schedule<'_> {
        Schedule {
            profile: self,
            stage: 0,
            stage_start: 0.0,
            done_before: 0.0,
            next: 0,
        }
    }
}

/// Iterator over intended send offsets.
pub struct Schedule<'a> {
    profile: &'a Profile,
    stage: usize,
    stage_start: f64,
    /// Requests due before the current stage began (fractional).
    done_before: f64,
    next: u64,
}

impl Iterator for Schedule<'_> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        loop {
            let s = self.profile.stages.get(self.stage)?;
            let d = s.duration.as_secs_f64();
            let in_stage = (s.from + s.to) / 2.0 * d;
            // Requests are due at integral = next + 0 (the first at t = 0 when the rate > 0).
            let k = self.next as f64 - self.done_before;
            if k < in_stage - 1e-9 {
                // Solve from*t + (to-from)/(2d) * t^2 = k for t in [0, d].
                let a = (s.to - s.from) / (2.0 * d);
                let t = if a.abs() < 1e-12 {
                    k / s.from
                } else {
                    let disc = (s.from * s.from + 4.0 * a * k).max(0.0);
                    (-s.from + disc.sqrt()) / (2.0 * a)
                };
                self.next += 1;
                return Some(Duration::from_secs_f64(self.stage_start + t.clamp(0.0, d)));
            }
            self.done_before += in_stage;
            self.stage_start += d;
            self.stage += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let p = Profile::constant(100.0, secs(1.0));
        let times: Vec<Duration> = p.schedule().collect();
        assert_eq!(times.len(), 100);
        assert_eq!(times[0], Duration::ZERO);
        assert!((times[1].as_secs_f64() - 0.01).abs() < 1e-9);
        assert!((times[99].as_secs_f64() - 0.99).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_sends_the_area_under_the_rate() {
        let p = Profile::parse("ramp 0-100 10s").unwrap();
        let times: Vec<Duration> = p.schedule().collect();
        assert_eq!(times.len(), 500, "0→100/s over 10 s is 500 requests");
        // Half the requests in the last ~29 % of the time (quadratic growth).
        let half = times[250].as_secs_f64();
        assert!((half - 7.07).abs() < 0.05, "{half}");
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn parse_stages_like_the_issue_writes_them() {
        let literal = Profile::parse("ramp 0→2000 rps in 30s, hold 2m, drop").unwrap();
        let p = Profile::parse("ramp 0→2000 30s, hold 2m, drop").unwrap();
        assert_eq!(literal, p, "the issue's own wording parses");
        assert_eq!(
            Profile::parse("hold 500 rps for 1m").unwrap().stages[0].from,
            500.0
        );
        assert_eq!(p.stages.len(), 3);
        assert_eq!(
            p.stages[1],
            Stage {
                from: 2000.0,
                to: 2000.0,
                duration: secs(120.0)
            }
        );
        assert_eq!(p.duration(), secs(150.0));
        assert_eq!(p.expected_requests(), 30_000.0 + 240_000.0);
        assert_eq!(p.peak_rate(), 2000.0);
        let p = Profile::parse("hold 50 10s, ramp -200 5s, drop 5s").unwrap();
        assert_eq!(p.stages[1].from, 50.0);
        assert_eq!(
            p.stages[2],
            Stage {
                from: 200.0,
                to: 0.0,
                duration: secs(5.0)
            }
        );
        assert!((p.rate_at(secs(12.5)) - 125.0).abs() < 1e-9);
    }

    #[test]
    fn bad_profiles_say_what_to_write() {
        let e = Profile::parse("ramp 0 to 5 10s").unwrap_err();
        assert!(e.to_string().contains("ramp 0-2000 30s"), "{e}");
        assert!(Profile::parse("hold 1 forever").is_err());
        assert!(Profile::parse("").is_err());
    }

    #[test]
    fn stages_chain_without_gaps() {
        let p = Profile::parse("hold 10 1s, hold 20 1s").unwrap();
        let times: Vec<Duration> = p.schedule().collect();
        assert_eq!(times.len(), 30);
        assert!(times[9] < secs(1.0) && times[10] >= secs(1.0));
        assert!((times[11].as_secs_f64() - 1.05).abs() < 1e-9);
    }
}
