//! Scenario time and its mapping onto the tokio clock.
//!
//! All model decisions are made in *scenario time* (milliseconds since the scenario started). A run
//! maps scenario time onto the tokio clock divided by the time scale (`--time-scale 60`: one real
//! second is one scenario minute); `simulate` uses a paused tokio clock with scale 1, so virtual time
//! auto-advances. The mapping is the only place where real time enters the model.

use tokio::time::{Duration, Instant};

/// Maps scenario milliseconds to tokio instants and back.
#[derive(Debug, Clone, Copy)]
pub struct ScenarioClock {
    origin: Instant,
    scale: f64,
}

impl ScenarioClock {
    /// A clock whose scenario time 0 is now, running `scale` times faster than the tokio clock.
    ///
    /// `scale` must be finite and positive (callers validate user input before this).
    pub fn start(scale: f64) -> Self {
        Self::with_origin(Instant::now(), scale)
    }

    /// A clock with an explicit origin.
    pub fn with_origin(origin: Instant, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        ScenarioClock { origin, scale }
    }

    /// The time scale (scenario seconds per real second).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The tokio instant at which scenario time `ms` happens.
    pub fn instant_at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_secs_f64(ms as f64 / 1000.0 / self.scale)
    }

    /// Scenario time now, ms.
    pub fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    /// Scenario time at a tokio instant, ms (0 before the origin).
    pub fn ms_at(&self, at: Instant) -> u64 {
        let real = at.saturating_duration_since(self.origin).as_secs_f64();
        (real * self.scale * 1000.0).round() as u64
    }

    /// Scenario time now, µs.
    pub fn now_us(&self) -> u64 {
        let real = Instant::now()
            .saturating_duration_since(self.origin)
            .as_secs_f64();
        (real * self.scale * 1e6).round() as u64
    }

    /// The tokio instant at which scenario time `us` (µs) happens.
    pub fn instant_at_us(&self, us: u64) -> Instant {
        self.origin + Duration::from_secs_f64(us as f64 / 1e6 / self.scale)
    }

    /// A scenario duration expressed as real (tokio) time.
    pub fn real_duration(&self, scenario_ms: u64) -> Duration {
        Duration::from_secs_f64(scenario_ms as f64 / 1000.0 / self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn scaled_time_round_trips() {
        let c = ScenarioClock::start(60.0);
        assert_eq!(c.now_ms(), 0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(c.now_ms(), 60_000);
        assert_eq!(c.ms_at(c.instant_at(123_456)), 123_456);
    }
}
