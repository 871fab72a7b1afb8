// Progress of a long command: a bar redrawn in place on a terminal (stderr), and where no one watches a
// terminal (pods, CI, pipes) a structured log line at most every few seconds and one at the end.
import type { Logger } from '../telemetry/logger.js';

export interface ProgressReporter<P> {
  update(p: P): void;
  finish(): void;
}

export interface ProgressOptions<P> {
  /** "extract-features", "caption-llm": starts every log message. */
  name: string;
  total: number;
  /** Counted in log messages: "images". */
  unit: string;
  done: (p: P) => number;
  /** What follows the bar on a terminal: rates, ETA, counters. */
  detail: (p: P) => string;
  /** The fields of a log line. */
  fields: (p: P) => Record<string, unknown>;
  log: Logger;
  everyMs?: number;
}

const BAR_WIDTH = 30;

export function progressReporter<P>(o: ProgressOptions<P>): ProgressReporter<P> {
  const tty = process.stderr.isTTY === true;
  const everyMs = o.everyMs ?? 10_000;
  let last: P | undefined;
  let lastLog = 0;
  const bar = (done: number): string => {
    const filled = o.total === 0 ? BAR_WIDTH : Math.round((done / o.total) * BAR_WIDTH);
    return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${o.total} ${o.unit}`;
  };
  return {
    update: (p) => {
      last = p;
      if (tty) process.stderr.write(`\r${bar(o.done(p))}  ${o.detail(p)}`);
      else if (Date.now() - lastLog >= everyMs) {
        lastLog = Date.now();
        o.log.info(o.fields(p), `${o.name}: ${o.done(p)}/${o.total} ${o.unit}`);
      }
    },
    finish: () => {
      if (tty) process.stderr.write('\n');
      else if (last !== undefined) o.log.info(o.fields(last), `${o.name}: ${o.done(last)}/${o.total} ${o.unit}, done`);
    },
  };
}
