// Queue and job names: the contract that producers (Node or Python) and consumers share, so a
// name here is never changed without both sides.

export const QueueName = {
  ProductIngest: 'product-ingest',
  ImageDownload: 'image-download',
  ImageProcess: 'image-process',
  Maintenance: 'maintenance',
  WebhookDelivery: 'webhook-delivery',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];
export const QUEUE_NAMES = Object.values(QueueName);

export const JobName = {
  UpsertProducts: 'upsert-products',
  UpsertSuppliers: 'upsert-suppliers',
  Download: 'download',
  Process: 'process',
  /** Fan-out after a settings change: marks processed images of another settings version for processing again. */
  Reprocess: 'reprocess',
  ConsistencyCheck: 'consistency-check',
  Reconcile: 'reconcile',
  Backup: 'backup',
  PruneBackups: 'prune-backups',
  VacuumAnalyze: 'vacuum-analyze',
  PurgeDeleted: 'purge-deleted',
  /** Monthly partitions of events, history and deliveries: months ahead created, months past retention dropped. */
  MaintainPartitions: 'maintain-partitions',
  /** 同款: clusters products whose main images are near duplicates into stored groups. */
  GroupSimilar: 'group-similar',
  /** Fingerprints (phash, thumbhash, dominant colour) for images processed before they existed, from stored originals. */
  FingerprintBackfill: 'fingerprint-backfill',
  /** Drains one webhook subscription's due deliveries (one job per subscription, not per delivery). */
  Deliver: 'deliver',
} as const;
export type JobName = (typeof JobName)[keyof typeof JobName];

/** Which job names each queue carries. */
export const QUEUE_JOBS = {
  'product-ingest': [JobName.UpsertProducts, JobName.UpsertSuppliers],
  'image-download': [JobName.Download],
  'image-process': [JobName.Process, JobName.Reprocess],
  maintenance: [
    JobName.ConsistencyCheck,
    JobName.Reconcile,
    JobName.Backup,
    JobName.PruneBackups,
    JobName.VacuumAnalyze,
    JobName.PurgeDeleted,
    JobName.MaintainPartitions,
    JobName.GroupSimilar,
    JobName.FingerprintBackfill,
  ],
  'webhook-delivery': [JobName.Deliver],
} as const satisfies Record<QueueName, readonly JobName[]>;

export type JobNameOf<Q extends QueueName> = (typeof QUEUE_JOBS)[Q][number];

export function isQueueName(value: string): value is QueueName {
  return (QUEUE_NAMES as string[]).includes(value);
}
