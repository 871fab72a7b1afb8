// Shared by the train integration tests: a tiny synthetic spec and a runner for `captionrun train` that
// parses the JSON log lines of the supervisor and its trainer children as they arrive.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../bin/captionrun', import.meta.url));
export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface TinySpecOptions {
  name: string;
  checkpointDir: string;
  images?: number;
  epochs?: number;
  decoder?: 'gru' | 'lstm';
  attention?: 'bahdanau' | 'luong';
  extra?: string;
}

/** A run small enough for CI: 40 synthetic scenes, a 16-unit decoder, a few epochs of batch 8. */
export function tinySpec(o: TinySpecOptions): string {
  return `apiVersion: captionrun.dev/v1alpha1
kind: CaptionTrainingRun
metadata:
  name: ${o.name}
spec:
  dataset:
    format: synthetic
    synthetic: { images: ${o.images ?? 40}, seed: 5, imageSize: 64, maxObjects: 2 }
  model:
    decoder: ${o.decoder ?? 'gru'}
    attention: ${o.attention ?? 'bahdanau'}
    embeddingDim: 16
    hiddenDim: 16
    attentionDim: 16
    dropout: 0.2
  training:
    epochs: ${o.epochs ?? 3}
    batchSize: 8
    learningRate: 0.01
    teacherForcingRatio: 0.8
    gradientCheckpointing: { enabled: true, blockSteps: 4 }
    lrSchedule: { type: plateau, patience: 1 }
    seed: 3
  checkpoint:
    store:
      local:
        path: ${o.checkpointDir}
    everySteps: 2
    keepLast: 2
  restartPolicy:
    backoffLimit: 4
    backoffSeconds: 0
  evaluation:
    beamSize: 2
${o.extra ?? ''}`;
}

export interface LogLine {
  msg?: string;
  pid?: number;
  step?: number;
  component?: string;
  [key: string]: unknown;
}

export interface TrainRun {
  child: ChildProcess;
  lines: LogLine[];
  stdout: () => string;
  stderrText: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `captionrun ARGS`; `onLine` sees every JSON log line as it arrives. */
export function startCli(args: string[], env: NodeJS.ProcessEnv, onLine: (line: LogLine) => void = () => {}): TrainRun {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  let out = '';
  let err = '';
  let partial = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) {
      if (!text.startsWith('{')) continue;
      try {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        onLine(line);
      } catch {
        // Not a log line (a stack trace, a warning from a dependency).
      }
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, lines, stdout: () => out, stderrText: () => err, exit };
}
