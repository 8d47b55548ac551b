// The rate of a counter sampled over time (bytes sent, page requests), each
// rate measured over at least a span: samples 50 ms apart would saw between
// a burst and a pause (max-bandwidth lets bytes out in bursts).

export class CounterRate {
  /** @param {number} spanMs  the shortest span a rate is measured over */
  constructor(spanMs) {
    this.spanMs = spanMs;
    this.samples = [];
  }

  /** The counter read `value` at `at`: its rate per second up to then, or null before a second sample. */
  add(at, value) {
    let base = this.samples[0] ?? null;
    for (const s of this.samples) if (s.at <= at - this.spanMs) base = s;
    this.samples.push({ at, value });
    // Keep the samples of the last span and the one just before them.
    while (this.samples.length > 2 && this.samples[1].at <= at - this.spanMs) this.samples.shift();
    return base === null ? null : ((value - base.value) * 1000) / Math.max(1, at - base.at);
  }

  /** The counter stops counting (the migration is over): the next rate starts afresh. */
  reset() {
    this.samples = [];
  }
}
