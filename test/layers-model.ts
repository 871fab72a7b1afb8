// Saves a tfjs layers model as tensorflowjs_converter lays it out on disk (model.json + one weight shard),
// for the tests that load encoder weights from a path, a web server or S3.
export { SHARD, writeLayersModelFiles as saveLayersModel } from '../trainer-image/model/weights-io.js';
