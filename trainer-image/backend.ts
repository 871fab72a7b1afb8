// The one place the trainer picks its TensorFlow.js backend and the one module everyone imports `tf` from,
// so model code never depends on which backend is underneath. Order of preference: tfjs-node-gpu (CUDA),
// tfjs-node (native CPU), wasm (SIMD, single-threaded in Node), cpu (pure JS, slow). The native packages
// are optional peer dependencies: they are imported dynamically and skipped when absent.
import * as tf from '@tensorflow/tfjs';
import { BACKEND_ENV, GPU_BACKEND } from '../lib/api/schema.js';
import { InvalidInputError } from '../lib/errors.js';
import { logger as defaultLogger, type Logger } from '../lib/telemetry/logger.js';
import { importTfjsNode, importTfjsNodeGpu } from './native/tfjs-node.js';
import { routeTransposedMatMulsThroughXnnpack } from './wasm-matmul.js';

export { tf };

export const BACKENDS = [GPU_BACKEND, 'tensorflow', 'wasm', 'cpu'] as const;
// The env var that requests one backend (strictly) instead of the first that loads; lib defines it because
// the operator sets it on GPU pods.
export { BACKEND_ENV };
export type BackendName = (typeof BACKENDS)[number];

interface Candidate {
  name: BackendName;
  /** The tf backend name registered by the package (both native packages register "tensorflow"). */
  registered: string;
  load: () => Promise<unknown>;
}

// Module names held in variables so TypeScript does not try to resolve packages that are not installed.
const NODE_GPU = '@tensorflow/tfjs-node-gpu';
const NODE_CPU = '@tensorflow/tfjs-node';

const candidates: Candidate[] = [
  // Also a build CAPTIONRUN_TFJS_NODE_GPU_PATH names (the test cluster's simulated GPUs point it at the CPU build).
  { name: 'tensorflow-gpu', registered: 'tensorflow', load: () => importTfjsNodeGpu(NODE_GPU) },
  // Also the build native/setup-native.sh links into this checkout, or the one CAPTIONRUN_TFJS_NODE_PATH names.
  { name: 'tensorflow', registered: 'tensorflow', load: () => importTfjsNode(NODE_CPU) },
  {
    name: 'wasm',
    registered: 'wasm',
    load: async () => {
      await import('@tensorflow/tfjs-backend-wasm');
      routeTransposedMatMulsThroughXnnpack(tf);
    },
  },
  { name: 'cpu', registered: 'cpu', load: async () => undefined },
];

let chosen: BackendName | undefined;

/**
 * Selects and initialises a backend and logs the choice. With nothing requested it takes the first of
 * BACKENDS that loads. A request (`preferred`, else env CAPTIONRUN_BACKEND) is strict: a backend someone
 * asked for that cannot load is an error naming the reason, never a silent fall back to a slower one.
 * Idempotent: later calls return the first choice unless they request a different one.
 */
export async function initBackend(preferred?: BackendName, log: Logger = defaultLogger): Promise<BackendName> {
  const fromEnv = preferred === undefined ? process.env[BACKEND_ENV] || undefined : undefined;
  const want = preferred ?? (fromEnv as BackendName | undefined);
  const source = fromEnv === undefined ? 'backend' : BACKEND_ENV;
  if (want !== undefined && !BACKENDS.includes(want)) {
    throw new InvalidInputError(`${source}: unknown backend "${String(want)}"`, { hint: `expected one of ${BACKENDS.join(', ')}` });
  }
  if (chosen !== undefined && (want === undefined || want === chosen)) return chosen;
  const skipped: string[] = [];
  for (const c of want === undefined ? candidates : candidates.filter((x) => x.name === want)) {
    try {
      await c.load();
      if (!(await tf.setBackend(c.registered))) throw new Error('setBackend returned false');
      await tf.ready();
      chosen = c.name;
      log.info({ backend: c.name, skipped, tfjs: tf.version.tfjs }, `tensorflow.js backend: ${c.name}`);
      return c.name;
    } catch (err) {
      skipped.push(`${c.name}: ${(err as Error).message.split('\n')[0] ?? ''}`);
    }
  }
  // A requested backend that cannot load is a property of the image or the node, so a relaunch of the
  // same pod cannot fix it: exit 3 with the reason, which the operator turns into a Failed condition.
  if (want !== undefined) {
    const hint =
      want === GPU_BACKEND
        ? 'a pod that requested GPUs (spec.resources.gpusPerWorker > 0) never trains on the CPU instead: use a trainer image with @tensorflow/tfjs-node-gpu on a node whose NVIDIA driver supports CUDA 12.5 (trainer-image/Dockerfile), or set gpusPerWorker: 0'
        : want === 'tensorflow'
          ? 'install @tensorflow/tfjs-node, or build it for this checkout with npm run setup:native'
          : undefined;
    throw new InvalidInputError(`${source}: backend "${want}" was requested but could not be initialised: ${skipped.join('; ')}`, { hint });
  }
  throw new Error(`no TensorFlow.js backend could be initialised (${skipped.join('; ')})`);
}

/** The backend chosen by initBackend, or undefined before it ran. */
export function currentBackend(): BackendName | undefined {
  return chosen;
}
