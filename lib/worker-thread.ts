// Starting a worker thread from a module next to the caller. Under tsx (tests, `bin/captionrun` without a
// build) the worker is a .ts file and needs tsx registered in that thread too; from dist/ it is plain JS.
import { Worker } from 'node:worker_threads';

/** Starts `name` (without extension), resolved next to `caller` (the caller's import.meta.url). */
export function startModuleWorker(caller: string, name: string, workerData: unknown): Worker {
  if (caller.endsWith('.ts')) {
    const url = new URL(`./${name}.ts`, caller).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url)}); });`;
    return new Worker(boot, { eval: true, workerData });
  }
  return new Worker(new URL(`./${name}.js`, caller), { workerData });
}
