// Saves a tfjs layers model as tensorflowjs_converter lays it out on disk (model.json + one weight shard),
// for the tests that load encoder weights from a path, a web server or S3.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tf } from '../trainer-image/backend.js';

export const SHARD = 'group1-shard1of1.bin';

export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      await writeFile(join(dir, SHARD), new Uint8Array(a.weightData as ArrayBuffer));
      const manifest = [{ paths: [SHARD], weights: a.weightSpecs }];
      await writeFile(join(dir, 'model.json'), JSON.stringify({ modelTopology: a.modelTopology, format: 'layers-model', weightsManifest: manifest }));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}
