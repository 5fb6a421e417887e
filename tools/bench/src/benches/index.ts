// Every benchmark of `npm run bench`, in the order they run.
import type { Benchmark } from '../harness';
import { backupBench } from './backup.bench';
import { changesBench } from './changes.bench';
import { consistencyBench } from './consistency.bench';
import { downloadBench } from './download.bench';
import { processBench } from './process.bench';
import { searchBench } from './search.bench';
import { similarBench } from './similar.bench';
import { ingestBench } from './ingest.bench';
import { readsBench } from './reads.bench';
import { upsertBench } from './upsert.bench';
import { webhooksBench } from './webhooks.bench';

export const BENCHMARKS: Benchmark[] = [upsertBench, ingestBench, readsBench, searchBench, downloadBench, processBench, consistencyBench, backupBench, changesBench, webhooksBench, similarBench];
