// The TensorFlow.js backend the model and trainer tests run on: wasm, unless CAPTIONRUN_BACKEND names
// another. test/run.sh runs those tests a second time with CAPTIONRUN_BACKEND=tensorflow (the native
// build from setup-native.sh); the request is strict, so that run cannot quietly fall back to wasm.
import { BACKEND_ENV, initBackend, type BackendName } from '../trainer-image/backend.js';

export function backendUnderTest(): BackendName {
  return (process.env[BACKEND_ENV] || 'wasm') as BackendName;
}

export async function useBackendUnderTest(): Promise<BackendName> {
  return initBackend(backendUnderTest());
}
