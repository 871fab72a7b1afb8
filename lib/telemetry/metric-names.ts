// The Prometheus metrics captionrun exports: one list shared by the trainer (health monitor), the operator
// and the alert rules in manifests/monitoring, so a renamed metric cannot silently break an alert.
// Every per-run series carries the labels `namespace` and `run`; trainer series add `rank`, GPU series `gpu`.

export const TrainerMetrics = {
  /** GPU memory in use, per device (absent, not zero, on machines without GPUs). */
  gpuMemoryUsedBytes: 'captionrun_gpu_memory_used_bytes',
  gpuMemoryTotalBytes: 'captionrun_gpu_memory_total_bytes',
  /** GPU utilisation from 0 to 1, per device. */
  gpuUtilizationRatio: 'captionrun_gpu_utilization_ratio',
  /** Free and total bytes of the volumes the trainer writes to; label `volume` is "cache" or "checkpoint". */
  diskFreeBytes: 'captionrun_disk_free_bytes',
  diskTotalBytes: 'captionrun_disk_total_bytes',
  /** Unix time of the newest committed, verified checkpoint. */
  checkpointLastCommitTimestampSeconds: 'captionrun_checkpoint_last_commit_timestamp_seconds',
  trainStepsTotal: 'captionrun_train_steps_total',
  /** Training processes in the gang (WORLD_SIZE). */
  worldSize: 'captionrun_world_size',
  /**
   * Feature extraction before training, per rank, over its share of the images: how many are checked or
   * encoded (label `state`: "done", "total"), images per second since it started, and the seconds it still
   * expects to need (absent until the first batch; 0 once done). A COCO extraction takes hours.
   */
  featureExtractionImages: 'captionrun_feature_extraction_images',
  featureExtractionImagesPerSecond: 'captionrun_feature_extraction_images_per_second',
  featureExtractionEtaSeconds: 'captionrun_feature_extraction_eta_seconds',
  /** Time each step spent in the gradient all-reduce between ranks, and the bytes it sent. */
  allReduceDurationSeconds: 'captionrun_allreduce_duration_seconds',
  allReduceBytesTotal: 'captionrun_allreduce_bytes_total',
  /** Memory of the trainer process and of its host (or container limit), in bytes. */
  processResidentMemoryBytes: 'captionrun_process_resident_memory_bytes',
  hostMemoryAvailableBytes: 'captionrun_host_memory_available_bytes',
  hostMemoryTotalBytes: 'captionrun_host_memory_total_bytes',
  /** Protective actions the monitor took before a crash (label `action`, e.g. "recommend-smaller-batch"). */
  protectiveActionsTotal: 'captionrun_protective_actions_total',
  /** The run's spec.monitoring.thresholds, exported so that the alert rules compare against each run's own. */
  thresholdGpuMemoryPercent: 'captionrun_threshold_gpu_memory_percent',
  thresholdGpuIdlePercent: 'captionrun_threshold_gpu_idle_percent',
  thresholdDiskFreePercent: 'captionrun_threshold_disk_free_percent',
  thresholdCheckpointStaleSeconds: 'captionrun_threshold_checkpoint_stale_seconds',
} as const;

export const OperatorMetrics = {
  /** 1 for the run's current phase (label `phase`), one series per phase, kube-state-metrics style. */
  runPhase: 'captionrun_run_phase',
  /** Gang relaunches of a run. */
  runRestartsTotal: 'captionrun_run_restarts_total',
  reconcileDurationSeconds: 'captionrun_reconcile_duration_seconds',
  reconcileErrorsTotal: 'captionrun_reconcile_errors_total',
  workqueueDepth: 'captionrun_workqueue_depth',
  /** Requests to the Kubernetes API by verb (GET, POST, PUT, DELETE, WATCH) and HTTP code, like client-go's rest_client_requests_total. */
  apiRequestsTotal: 'captionrun_operator_api_requests_total',
} as const;

/** The scrape job name the operator's ServiceMonitor and the OperatorDown rule agree on. */
export const OPERATOR_JOB = 'captionrun-operator';
