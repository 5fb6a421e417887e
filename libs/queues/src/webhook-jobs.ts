// The webhook drain jobs, built and queued in one place. One job per subscription
// (`deliver-<subscriptionId>`), not one per delivery: the job sends whatever is due for its
// subscription, lanes side by side and each lane in order, so a burst of events costs one job,
// and a second drain of the same subscription can never overtake the first (docs/queues.md).
import { deliverJobId } from './job-ids';
import { type JobToAdd, type Producers, type QueueReport, queueJobsReport } from './producer';
import { JobName, QueueName } from './queue-names';

export type DeliverJob = JobToAdd<typeof QueueName.WebhookDelivery>;

export function deliverJob(subscriptionId: string): DeliverJob {
  return { name: JobName.Deliver, data: { subscriptionId }, jobId: deliverJobId(subscriptionId) };
}

/**
 * Queues the drain of each subscription. A drain already waiting or running is left (it reads
 * the rows, so it finds the new deliveries too); a finished one is replaced. Never throws on a
 * Redis outage: the rows stay pending and the dispatch loop or reconcile queues them again.
 */
export function queueWebhookDrains(producers: Producers, subscriptionIds: readonly string[], { deadlineMs }: { deadlineMs: number }): Promise<QueueReport> {
  return queueJobsReport(producers, QueueName.WebhookDelivery, subscriptionIds.map(deliverJob), { deadlineMs });
}
