// `npm run bench -- native [--reps N] [--keras PYTHON]`: the native backend (tfjs-node on the TensorFlow that
// trainer-image/native/setup-native.sh pins) against wasm, side by side in one process, on a 1024^2
// matmul and an InceptionV3 forward pass (also with batch-norm folded into fused convs, as Keras's graph
// optimiser runs it); with --keras, also
// against Keras on the same TensorFlow (trainer-image/native/keras_baseline.py, run by that Python).
// Every contender runs once per repetition, in turn, so that load from other processes hits all alike.
// The decoder's training step on both backends and in Keras is bench/train.ts (`--keras PYTHON`).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { load } from 'nsfwjs';
import { initBackend, tf } from '../trainer-image/backend.js';
import { defaultTfjsNodePath, importTfjsNode, TFJS_NODE_PATH_ENV } from '../trainer-image/native/tfjs-node.js';
import { foldedConvNet, inceptionFeatureLayer, inceptionFeatures, inceptionInput, matmulInputs } from '../trainer-image/native/workloads.js';
import { figure, median, type Figure } from './results.js';

type Backend = 'tensorflow' | 'wasm';

interface Workload {
  /** Runs once, waits for the result on the host and returns the milliseconds it took. */
  run: () => Promise<number>;
  dispose: () => void;
}

/** One contender: a tfjs backend, or Keras in its own process. */
interface Contender {
  label: string;
  build: () => Promise<Workload>;
  /** Makes this contender's backend the active one before it builds, runs or disposes. */
  activate: () => Promise<void>;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function use(backend: Backend): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not initialise`);
}

async function timed(f: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await f();
  return performance.now() - start;
}

/** Median milliseconds per contender; each builds its own copy of the workload (tensors stay on its backend). */
async function measure(title: string, reps: number, contenders: Contender[]): Promise<Map<string, number>> {
  const workloads: Workload[] = [];
  for (const c of contenders) {
    await c.activate();
    const w = await c.build();
    await w.run(); // warm-up: kernel set-up, first allocations, tf.function tracing
    workloads.push(w);
  }
  const samples = contenders.map((): number[] => []);
  for (let r = 0; r < reps; r++) {
    for (const [i, c] of contenders.entries()) {
      await c.activate();
      samples[i]?.push(await (workloads[i] as Workload).run());
    }
  }
  for (const [i, c] of contenders.entries()) {
    await c.activate();
    workloads[i]?.dispose();
  }
  const line = contenders.map((c, i) => `${c.label} ${(samples[i] ?? []).map((x) => x.toFixed(0)).join(',')}`).join('; ');
  process.stderr.write(`${title} (ms): ${line}\n`);
  return new Map(contenders.map((c, i) => [c.label, median(samples[i] ?? [])]));
}

const matmul = async (): Promise<Workload> => {
  const { a, b } = matmulInputs(1024, 1);
  return {
    run: () =>
      timed(async () => {
        const c = tf.matMul(a, b);
        await c.data();
        c.dispose();
      }),
    dispose: () => tf.dispose([a, b]),
  };
};

/** InceptionV3 as the tfjs layers model runs it, or with batch-norm folded into fused convs (`fold`). */
const inception = (fold: boolean) => async (): Promise<Workload> => {
  const nsfw = (await load('InceptionV3', { size: 299 })) as unknown as { model: tf.LayersModel };
  const folded = fold ? foldedConvNet(nsfw.model, inceptionFeatureLayer(nsfw.model)) : undefined;
  const features = inceptionFeatures(nsfw.model);
  const image = inceptionInput(1, 5);
  return {
    run: () =>
      timed(async () => {
        const y = folded ? folded.predict(image) : (features.predict(image) as tf.Tensor);
        await y.data();
        y.dispose();
      }),
    dispose: () => {
      image.dispose();
      folded?.dispose();
      nsfw.model.dispose();
    },
  };
};

/** keras_baseline.py as a server: one workload name per line in, one `{"ms": ...}` line out. */
class Keras {
  readonly version: Promise<string>;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;

  constructor(python: string) {
    const script = fileURLToPath(new URL('../trainer-image/native/keras_baseline.py', import.meta.url));
    this.child = spawn(python, [script], { stdio: 'pipe' });
    this.child.stderr.resume(); // TensorFlow's start-up log: not ours to print, but must not block the pipe
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
    this.version = this.next().then((l) => (JSON.parse(l) as { tensorflow: string }).tensorflow);
  }

  private async next(): Promise<string> {
    const { value, done } = await this.lines.next();
    if (done === true) throw new Error(`keras_baseline.py exited (code ${String(this.child.exitCode)})`);
    return value;
  }

  contender(label: string, workload: string): Contender {
    return {
      label,
      activate: async () => undefined,
      build: async () => ({
        run: async () => {
          this.child.stdin.write(`${workload}\n`);
          return (JSON.parse(await this.next()) as { ms: number }).ms;
        },
        dispose: () => undefined,
      }),
    };
  }

  close(): void {
    this.child.stdin.end();
  }
}

export default async function native(args: string[]): Promise<Figure[]> {
  const reps = Number(option(args, '--reps') ?? 5);
  const python = option(args, '--keras');
  process.env[TFJS_NODE_PATH_ENV] ||= defaultTfjsNodePath();
  // Directly, so that a missing build stops the benchmark with setup-native.sh's name in the error.
  await importTfjsNode('@tensorflow/tfjs-node');
  await initBackend('wasm');
  await use('tensorflow');
  const tfVersion = (tf.backend() as unknown as { binding: { TF_Version: string } }).binding.TF_Version;
  const keras = python === undefined ? undefined : new Keras(python);
  const kerasVersion = await keras?.version;
  process.stderr.write(`tfjs ${tf.version.tfjs} native on TensorFlow ${tfVersion}; Keras on ${kerasVersion ?? '-'}; ${reps} reps\n`);

  const tfjs = (backend: Backend, build: () => Promise<Workload>): Contender => ({ label: backend, activate: () => use(backend), build });
  const workloads = [
    { title: 'matmul 1024x1024 (2.1 GFLOP)', build: matmul, keras: ['matmul'] },
    { title: 'InceptionV3 forward to 8x8x2048 (1 image, 299x299)', build: inception(false), keras: ['inception'], folded: inception(true) },
  ];
  const figures: Figure[] = [];
  try {
    for (const w of workloads) {
      const contenders = [tfjs('tensorflow', w.build), tfjs('wasm', w.build)];
      if (w.folded) contenders.push({ label: 'tensorflow-folded', activate: () => use('tensorflow'), build: w.folded });
      if (keras !== undefined) contenders.push(...w.keras.map((k) => keras.contender('keras', k)));
      const ms = await measure(w.title, reps, contenders);
      const native = ms.get('tensorflow') as number;
      figures.push(figure(`${w.title}: native vs wasm`, native, 'ms', ms.get('wasm') as number, 'native faster than wasm'));
      const graph = ms.get('keras');
      if (graph !== undefined) figures.push(figure(`${w.title}: native vs Keras (TF ${kerasVersion}, tf.function)`, native, 'ms', graph, '<= 1.5x Keras'));
      const folded = ms.get('tensorflow-folded');
      if (folded !== undefined && graph !== undefined) {
        figures.push(figure(`${w.title}, batch-norm folded into fused convs: native vs Keras (TF ${kerasVersion}, tf.function)`, folded, 'ms', graph, '<= 1.5x Keras'));
      }
    }
  } finally {
    keras?.close();
  }
  return figures;
}
