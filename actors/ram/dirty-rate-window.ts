/**
 * The dirty-page rate query-migrate reports (ram.dirty-pages-rate), over at
 * least a second of guest time, as QEMU measures it (it updates the rate
 * only once a second or more has passed since the last update). A dirty
 * sync can come milliseconds after the one before (the switchover's sync
 * does, right after the pass that decided it), and a few pages over a few
 * milliseconds would read as millions of pages a second.
 *
 * Here a sync that closes a window of a second or more reports that
 * window's rate and starts the next; a sync within a shorter window
 * reports the rate over it and the window before it together. Before the
 * first second is over there is only the time since dirty logging began.
 */
export const DIRTY_RATE_WINDOW_MS = 1000;

interface Window {
  start: number;
  pages: number;
}

export class DirtyRateWindow {
  private current: Window;
  private previous: Window | null = null;

  constructor(now = performance.now()) {
    this.current = { start: now, pages: 0 };
  }

  /** Dirty logging starts (again): nothing before counts. */
  restart(now = performance.now()): void {
    this.current = { start: now, pages: 0 };
    this.previous = null;
  }

  /** A dirty sync at `now` found `pages` dirtied since the last one: the rate in pages per second. */
  sync(pages: number, now = performance.now()): number {
    this.current.pages += pages;
    const elapsed = now - this.current.start;
    if (elapsed >= DIRTY_RATE_WINDOW_MS) {
      const rate = (this.current.pages * 1000) / elapsed;
      this.previous = this.current;
      this.current = { start: now, pages: 0 };
      return rate;
    }
    const from = this.previous ?? this.current;
    return ((this.current.pages + (this.previous?.pages ?? 0)) * 1000) / Math.max(now - from.start, 1);
  }
}
